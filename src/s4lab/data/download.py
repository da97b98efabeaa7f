"""Resumable, verified downloads and selective archive extraction for `scripts/prepare_data.py`.

`fetch` streams a URL to `<dest>.part` with a progress bar, resumes a partial file with an HTTP
`Range: bytes=<size>-` request (a server answering 200 instead of 206 restarts from zero), checks
md5/sha256 when the published checksum is known, and renames the file into place only then.
`extract` copies the members below a named archive folder into a destination folder.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or extraction failed; the message names the URL or file and what to do."""


class ChecksumError(DownloadError):
    """A downloaded or copied file does not have its published checksum."""


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes (`algorithm`: md5 or sha256)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise ChecksumError naming `path` if a given checksum differs."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and (got := file_digest(path, algorithm)) != expected:
            raise ChecksumError(f"{path}: {algorithm} is {got}, expected {expected}")


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` (resuming `<dest>.part`) and verify it; skip if already there."""
    dest = Path(dest)
    if dest.exists():
        try:
            verify(dest, md5, sha256)
        except ChecksumError as e:
            raise ChecksumError(f"{e}\nDelete {dest} and re-run to download it again.") from e
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:  # the server ignored Range: start over
                offset = 0
            total = response.length + offset if response.length is not None else None
            with open(part, "ab" if offset else "wb") as out:
                _copy(response, out, offset, total, dest.name, progress)
    except urllib.error.HTTPError as e:
        if e.code != 416:  # 416: nothing left to send, the .part file is complete
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        kept = part.exists() and part.stat().st_size > 0
        raise DownloadError(
            f"could not download {url}: {reason}\n"
            f"No network? Fetch the file elsewhere and put it at {dest},\n"
            "then re-run this command: it verifies and uses the file."
            + (f"\nThe partial download {part} is resumed next time." if kept else "")
        ) from e
    try:
        verify(part, md5, sha256)
    except ChecksumError as e:
        bad = dest.with_name(dest.name + ".bad")
        part.replace(bad)
        raise ChecksumError(
            f"{e}\nThe download of {url} is corrupt; it was moved to {bad}."
            " Re-run to fetch it again."
        ) from e
    part.replace(dest)
    return dest


def _copy(src: IO[bytes], out: IO[bytes], done: int, total: int | None, name: str, show: bool):
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not show) as bar:
        task = bar.add_task(name, total=total, completed=done)
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            bar.advance(task, len(block))


def _members(archive: Path) -> Iterator[tuple[PurePosixPath, IO[bytes] | None]]:
    """(member path, file object or None for a directory) of a .tar[.gz] or .zip archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                with z.open(info) if not info.is_dir() else _Nothing() as f:
                    yield PurePosixPath(info.filename), f
        return
    with tarfile.open(archive, mode="r|*") as tar:  # stream: one forward pass over a .gz
        for member in tar:
            if member.isfile():
                with tar.extractfile(member) as f:
                    yield PurePosixPath(member.name), f
            elif member.isdir():
                yield PurePosixPath(member.name), None


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


def extract(archive: Path, folders: dict[str, Path]) -> dict[str, int]:
    """Copy every member below an archive folder named `key` (at any depth) into `folders[key]`.

    Key "" takes the whole archive. Returns the number of files written per key; members that
    would land outside their destination (absolute paths, `..`) are refused.
    """
    written = dict.fromkeys(folders, 0)
    try:
        for name, f in _members(archive):
            parts = name.parts
            for key, root in folders.items():
                if key == "":
                    rel = parts
                elif key in parts[:-1] or (f is None and key in parts):
                    rel = parts[parts.index(key) + 1 :]
                else:
                    continue
                if not rel:
                    continue
                if ".." in rel or name.is_absolute():
                    raise DownloadError(f"{archive}: refusing unsafe member path {name}")
                target = Path(root, *rel)
                if f is None:
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        shutil.copyfileobj(f, out, CHUNK)
                    written[key] += 1
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise DownloadError(
            f"{archive}: truncated or corrupt archive ({e})."
            " Delete it and re-run to download it again."
        ) from e
    return written

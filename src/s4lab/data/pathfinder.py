"""LRA Pathfinder (32×32, L = 1024) and Path-X (128×128, L = 16384): are the two markers connected?

Layout (LRA release, or `prepare_data.py pathfinder|pathx --generate`), R = resolution:
`<data_dir>/pathfinder<R>/<difficulty>/metadata/<k>.npy` and `imgs/<k>/sample_<i>.png`
(8-bit grayscale). A metadata row is `imgs/<k> sample_<i>.png <i> <label> ...` (11 fields; the
loaders use fields 0, 1 and 3), stored as plain text in the LRA release despite the .npy name, or as
a real .npy string array by the upstream generator; both are read. Zero-byte PNGs are skipped (the
release has one).
Order and split as the official S4 loader: metadata files by int(k), rows in file order, then
`random_split` 80/10/10 with a generator seeded 42 (200k -> 160k/20k/20k).
x = pixel / 255 in [0, 1] (the S4 config, `center: false`), 2·x − 1 in [−1, 1] with `center`
(ToTensor + Normalize(0.5, 0.5)), or pixel ids 0..255 with `tokenize`; row-major flattening to
(L = R², 1) floats or (L,) ids. Label 1 = connected.
data_dir is the `pathfinder/` folder (both resolutions live in it). All images are decoded once
(Pillow), in `prepare_data()`, into a uint8 (N, R, R) tensor cached under `<data_dir>/cache/`,
keyed by the metadata checksums and every image's size and mtime.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, random_split

from s4lab.data.base import MissingDataError, SequenceDataModule, require, usable_cpus
from s4lab.data.cache import cached, prepare_cache

SPLIT_SEED = 42  # the official loader's split seed, independent of the run's seed
NPY_MAGIC = b"\x93NUMPY"
DIFFICULTIES = ("curv_baseline", "curv_contour_length_9", "curv_contour_length_14")


def prepare_command(resolution: int) -> str:
    name = "pathx" if resolution == 128 else "pathfinder"
    return (
        f"python scripts/prepare_data.py {name} --generate --resolution {resolution}"
        "  (or without --generate to download the LRA release)"
    )


def read_metadata(path: Path) -> list[tuple[str, str, int]]:
    """(image folder, file name, label) rows of one metadata file, text or binary .npy."""
    raw = path.read_bytes()
    if raw.startswith(NPY_MAGIC):
        try:
            table = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: corrupt .npy metadata ({e})") from e
        if table.ndim != 2 or table.dtype.kind != "U" or table.shape[1] < 4:
            raise ValueError(
                f"{path}: expected a (n, 11) string array of metadata rows, got dtype "
                f"{table.dtype} and shape {table.shape}"
            )
        rows = table.tolist()
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}: expected plain-text metadata lines or a .npy string array, got neither"
            ) from e
        rows = [line.split() for line in text.splitlines() if line.strip()]
    out = []
    for n, fields in enumerate(rows, start=1):
        if len(fields) < 4 or fields[3] not in ("0", "1"):
            raise ValueError(
                f"{path}: row {n}: expected 'imgs/<k> sample_<i>.png <i> <label 0|1> ...' "
                f"(11 fields), got {' '.join(fields)[:80]!r}"
            )
        out.append((fields[0], fields[1], int(fields[3])))
    return out


def metadata_files(root: Path, prepare: str) -> list[Path]:
    """`root/metadata/<k>.npy` sorted by the integer k; errors name the folder and the fix."""
    folder = require(root / "metadata", prepare=prepare)
    files = list(folder.glob("*.npy"))
    if not files:
        raise MissingDataError(f"No metadata/<k>.npy files in {folder}\nPrepare it with: {prepare}")
    bad = [f.name for f in files if not f.stem.isdigit()]
    if bad:
        raise ValueError(
            f"{folder}: expected metadata files named <k>.npy with integer k, got {bad}"
        )
    return sorted(files, key=lambda f: int(f.stem))


def decode_png(path: Path, resolution: int) -> np.ndarray:
    """uint8 (R, R) pixels of one PNG; a corrupt file or a wrong size names the file."""
    try:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: corrupt or truncated PNG ({e})") from e
    if pixels.shape != (resolution, resolution):
        raise ValueError(
            f"{path}: expected a {resolution}x{resolution} image, got {pixels.shape[1]}x"
            f"{pixels.shape[0]} (is the resolution setting right?)"
        )
    return pixels


class PathfinderImages(Dataset):
    """(x, y) pairs from a uint8 image tensor: x (L, 1) float32, or (L,) int64 with tokenize."""

    def __init__(self, images: Tensor, labels: Tensor, center: bool, tokenize: bool) -> None:
        self.images, self.labels = images, labels  # (N, R, R) uint8, (N,) int64
        self.center, self.tokenize = center, tokenize

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        pixels = self.images[i].reshape(-1)  # (L,) row-major, as ToTensor + flatten
        if self.tokenize:
            return pixels.long(), self.labels[i]
        x = pixels.float() / 255.0
        if self.center:
            x = 2.0 * x - 1.0  # Normalize(mean 0.5, std 0.5)
        return x[:, None], self.labels[i]  # (L, 1)


class Pathfinder(SequenceDataModule):
    """Pathfinder (resolution 32) and Path-X (resolution 128) datamodule; d_output = 2.

    difficulty: curv_baseline, curv_contour_length_9 or curv_contour_length_14 (S4 and LRA "hard").
    center: x in [−1, 1] instead of [0, 1]. tokenize: pixel ids (vocab 256) instead of floats.
    val_split, test_split: fractions of the whole set, split as the official loader.
    """

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        resolution: int = 32,
        difficulty: str = "curv_contour_length_14",
        center: bool = False,
        tokenize: bool = False,
        val_split: float = 0.1,
        test_split: float = 0.1,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
        if center and tokenize:
            raise ValueError("center and tokenize exclude each other: ids are raw pixels 0..255")
        if min(val_split, test_split) < 0.0 or val_split + test_split >= 1.0:
            raise ValueError(
                f"need val_split, test_split >= 0 with sum < 1; got {val_split}, {test_split}"
            )
        self.resolution, self.difficulty = resolution, difficulty
        self.center, self.tokenize = center, tokenize
        self.val_split, self.test_split = val_split, test_split
        self.root = self.data_dir / f"pathfinder{resolution}" / difficulty
        self.d_input = 256 if tokenize else 1
        self.vocab_size = 256 if tokenize else None
        self.d_output = 2
        self.l_max = resolution**2

    def samples(self) -> list[tuple[Path, int]]:
        """(png path, label) in the official order, without zero-byte files."""
        return [(path, label) for path, label, _ in self._listing()]

    def _listing(self) -> list[tuple[Path, int, os.stat_result]]:
        prepare = prepare_command(self.resolution)
        out = []
        for meta in metadata_files(self.root, prepare):
            for folder, name, label in read_metadata(meta):
                path = self.root / folder / name
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    require(path, prepare=prepare)  # raises MissingDataError naming the file
                    raise
                if stat.st_size > 0:
                    out.append((path, label, stat))
        return out

    def _cache_args(self) -> dict:
        """Arguments of `cached` / `prepare_cache`: all listed images, decoded by <= 8 threads."""
        listing = self._listing()
        fingerprint = hashlib.sha256()  # a changed, added or removed image rebuilds the cache
        for path, label, stat in listing:
            key = f"{path.relative_to(self.root)}:{stat.st_size}:{stat.st_mtime_ns}:{label}"
            fingerprint.update(key.encode())

        def build() -> dict[str, Tensor]:
            images = np.empty((len(listing), self.resolution, self.resolution), np.uint8)

            def decode(n: int) -> None:
                images[n] = decode_png(listing[n][0], self.resolution)

            with ThreadPoolExecutor(min(8, usable_cpus())) as pool:  # decoding frees the GIL
                list(pool.map(decode, range(len(listing))))
            return {
                "images": torch.from_numpy(images),  # (N, R, R) uint8
                "labels": torch.tensor([label for _, label, _ in listing], dtype=torch.int64),
            }

        return {
            "build": build,
            "cache_dir": self.data_dir / "cache",
            "name": f"pathfinder{self.resolution}-{self.difficulty}",
            "config": {"resolution": self.resolution, "images": fingerprint.hexdigest()},
            "sources": metadata_files(self.root, prepare_command(self.resolution)),
        }

    def prepare_data(self) -> None:
        prepare_cache(**self._cache_args())

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        data = cached(**self._cache_args())
        full = PathfinderImages(data["images"], data["labels"], self.center, self.tokenize)
        n_val, n_test = int(self.val_split * len(full)), int(self.test_split * len(full))
        self.data_train, self.data_val, self.data_test = random_split(
            full,
            [len(full) - n_val - n_test, n_val, n_test],
            generator=torch.Generator().manual_seed(SPLIT_SEED),
        )

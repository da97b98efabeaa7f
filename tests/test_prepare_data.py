"""prepare_data.py and s4lab.data.download against a local HTTP server on 127.0.0.1 (no network).

The server answers `Range: bytes=N-` with 206 like the real hosts (or ignores it on request), so
resume, restart, checksum and extraction paths all run on tiny archives.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import socket
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from test_data_lra_text import write_aan, write_listops  # tests/ is on sys.path (rootdir import)

from s4lab.data.aan import AAN
from s4lab.data.download import ChecksumError, DownloadError, extract, fetch
from s4lab.data.listops import ListOps

SCRIPT = Path(__file__).parents[1] / "scripts" / "prepare_data.py"
spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
prepare_data = importlib.util.module_from_spec(spec)
sys.modules["prepare_data"] = prepare_data  # dataclasses look their module up there
spec.loader.exec_module(prepare_data)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` (name -> bytes); honours `Range: bytes=N-` unless told to ignore it."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not server.ignore_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        server.sent += len(body) - start  # counted first: the client may finish before this
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        """Keep the test output free of the server's access log."""


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.requests, httpd.sent, httpd.ignore_range = {}, [], 0, False
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def lra_release(tmp_path: Path) -> bytes:
    """A tiny `lra_release.gz` with the release's nesting: lra_release/{listops-1000,tsv_data}/."""
    src = tmp_path / "src"
    files = {}
    for folder, inner in ((write_listops(src), "listops-1000"), (write_aan(src), "tsv_data")):
        for f in folder.iterdir():
            files[f"lra_release/lra_release/{inner}/{f.name}"] = f.read_bytes()
    for r in (32, 128):
        pf = f"lra_release/lra_release/pathfinder{r}/curv_contour_length_14"
        files[f"{pf}/metadata/0.npy"] = b"imgs/0 sample_0.png 0 1 1.0 14 4 2 0.5 1 1\n"
        files[f"{pf}/imgs/0/sample_0.png"] = f"png {r}".encode()
    return tarball(files)


PAYLOAD = bytes(range(256)) * 1200  # 300 KiB


def test_fetch_resumes_a_partial_file_with_range(server, tmp_path):
    server.files["blob.bin"] = PAYLOAD
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:100_000])
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    fetch(f"{server.url}/blob.bin", dest, md5=md5, progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "blob.bin.part").exists()
    assert server.requests == [("/blob.bin", "bytes=100000-")]
    assert server.sent == len(PAYLOAD) - 100_000  # only the missing tail was transferred
    fetch(f"{server.url}/blob.bin", dest, md5=md5, progress=False)  # present + verified: no request
    assert len(server.requests) == 1


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    server.files["blob.bin"], server.ignore_range = PAYLOAD, True
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes from another file")
    dest = fetch(f"{server.url}/blob.bin", tmp_path / "blob.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_fetch_checksum_mismatch_names_the_file_and_keeps_it_aside(server, tmp_path):
    server.files["blob.bin"] = PAYLOAD
    dest = tmp_path / "blob.bin"
    with pytest.raises(ChecksumError, match=r"blob\.bin\.part: md5 is \w+, expected 0{32}"):
        fetch(f"{server.url}/blob.bin", dest, md5="0" * 32, progress=False)
    assert not dest.exists() and (tmp_path / "blob.bin.bad").read_bytes() == PAYLOAD


def test_fetch_without_network_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"could not download[\s\S]*No network\?[\s\S]*x\.tar"):
        fetch(f"http://127.0.0.1:{port}/x.tar", tmp_path / "x.tar", progress=False)


def test_fetch_http_error_names_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing\.tar: HTTP 404"):
        fetch(f"{server.url}/missing.tar", tmp_path / "missing.tar", progress=False)


def test_extract_refuses_unsafe_paths_and_reports_corrupt_archives(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tarball({"data/../../escape.txt": b"x"}))
    with pytest.raises(DownloadError, match="unsafe member"):
        extract(evil, {"data": tmp_path / "out"})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tarball({"data/a.txt": bytes(range(256)) * 400})[:300])
    with pytest.raises(DownloadError, match=r"cut\.tar\.gz: truncated or corrupt archive"):
        extract(cut, {"data": tmp_path / "out"})


def test_extract_zip_folder_and_whole_tarball(tmp_path):
    archive = tmp_path / "wikitext-103-v1.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("wikitext-103/", "")
        z.writestr("wikitext-103/wiki.train.tokens", " = Title = \n")
        z.writestr("other/readme.txt", "not extracted")
    assert extract(archive, {"wikitext-103": tmp_path / "wt103"}) == {"wikitext-103": 1}
    assert (tmp_path / "wt103/wiki.train.tokens").read_text() == " = Title = \n"
    flat = tmp_path / "sc.tar.gz"  # Speech Commands: word folders at the top of the tarball
    flat.write_bytes(tarball({"yes/a_nohash_0.wav": b"RIFF", "testing_list.txt": b"yes/a"}))
    assert extract(flat, {"": tmp_path / "SpeechCommands"}) == {"": 2}
    assert (tmp_path / "SpeechCommands/yes/a_nohash_0.wav").read_bytes() == b"RIFF"


def test_script_lra_listops_then_aan_from_one_download(server, tmp_path):
    server.files["lra_release.gz"] = lra_release(tmp_path)
    root = tmp_path / "data"
    args = ["--data-dir", str(root), "--mirror", server.url, "--quiet"]
    assert prepare_data.main(["listops", *args]) == 0
    assert prepare_data.main(["aan", *args]) == 0
    assert len(server.requests) == 1  # the archive in data/downloads/ is reused
    ListOps(str(root / "listops")).setup("fit")
    dm = AAN(str(root / "aan"))
    dm.setup("fit")
    assert len(dm.data_train) == 3


def test_script_pathfinder_and_pathx_take_their_resolution(server, tmp_path):
    server.files["lra_release.gz"] = lra_release(tmp_path)
    root = tmp_path / "data"
    args = ["--data-dir", str(root), "--mirror", server.url, "--quiet"]
    assert prepare_data.main(["pathfinder", *args]) == 0
    assert prepare_data.main(["pathx", *args]) == 0
    for r in (32, 128):
        hard = root / f"pathfinder/pathfinder{r}/curv_contour_length_14"
        assert (hard / "imgs/0/sample_0.png").read_bytes() == f"png {r}".encode()
        assert (hard / "metadata/0.npy").read_text().split()[3] == "1"


def test_script_checksum_mismatch_fails_with_message(server, tmp_path, capsys):
    server.files["aclImdb_v1.tar.gz"] = tarball({"aclImdb/train/pos/0_9.txt": b"not the real"})
    argv = ["imdb", "--data-dir", str(tmp_path), "--mirror", server.url, "--quiet"]
    assert prepare_data.main(argv) == 1
    err = capsys.readouterr().err
    assert "aclImdb_v1.tar.gz" in err and "expected 7c2ac02c03563afcf9b574c7e56c153a" in err


def test_script_truncated_archive_names_it(server, tmp_path, capsys):
    server.files["lra_release.gz"] = lra_release(tmp_path)[:200]
    argv = ["listops", "--data-dir", str(tmp_path / "data"), "--mirror", server.url, "--quiet"]
    assert prepare_data.main(argv) == 1
    assert "lra_release.gz: truncated or corrupt archive" in capsys.readouterr().err


def test_script_copies_local_files_and_verifies_them(tmp_path, capsys):
    src = tmp_path / "ETT-small"
    src.mkdir()
    (src / "ETTm1.csv").write_text("date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n")  # no known md5
    root = tmp_path / "data"
    assert prepare_data.main(["ett", "--data-dir", str(root), "--from", str(src)]) == 0
    assert (root / "informer/ettm/ETTm1.csv").is_file()
    (src / "ETTh1.csv").write_text("not the published file\n")
    assert prepare_data.main(["ett", "--data-dir", str(root), "--from", str(src)]) == 1
    assert "ETTh1.csv: md5 is" in capsys.readouterr().err


def test_script_generates_listops_in_the_published_layout(tmp_path):
    root = tmp_path / "data"
    small = ["--max-depth", "6", "--max-args", "5", "--min-length", "30", "--max-length", "150"]
    argv = ["listops", "--generate", "--n", "100", "--workers", "1", "--data-dir", str(root)]
    assert prepare_data.main(argv + small) == 0
    dm = ListOps(str(root / "listops"))
    dm.setup("fit")
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (96, 2, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["imdb", "--generate"], "--generate works for listops, pathfinder, pathx, not imdb"),
        (["listops", "--resolution", "32"], "--resolution goes with pathfinder or pathx"),
    ],
)
def test_script_rejects_options_that_do_not_apply(argv, message, capsys):
    with pytest.raises(SystemExit):
        prepare_data.parse_args(argv)
    assert message in capsys.readouterr().err


def test_script_kjv_from_a_verse_file_splits_by_position(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    verses = [f"In the beginning God created verse{i % 3}." for i in range(100)]
    (source / "kjv.txt").write_text("\n".join(verses) + "\n", encoding="utf-8")
    root = tmp_path / "data"
    assert prepare_data.main(["kjv", "--data-dir", str(root), "--from", str(source)]) == 0
    lines = {
        split: (root / "kjv" / f"wiki.{split}.tokens").read_text(encoding="utf-8").splitlines()
        for split in ("train", "valid", "test")
    }
    assert [len(lines[s]) for s in ("train", "valid", "test")] == [96, 2, 2]  # 48, 49 of 50
    assert all(line.split()[:4] == ["In", "the", "beginning", "God"] for line in lines["train"])
    (source / "kjv.txt").write_text("\n", encoding="utf-8")
    assert prepare_data.main(["kjv", "--data-dir", str(root), "--from", str(source)]) == 1
    assert "no verse found" in capsys.readouterr().err

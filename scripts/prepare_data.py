"""Put a dataset where its datamodule looks: download + verify + extract, or generate it offline.

    python scripts/prepare_data.py NAME [--data-dir DIR] [--from DIR | --mirror URL]
    python scripts/prepare_data.py listops --generate [--n 100000] [--seed 0] [--workers 16]
    python scripts/prepare_data.py pathfinder --generate [--resolution 32|64|128|256] ...

NAME: listops, imdb, aan, pathfinder, pathx, cifar, mnist, fashion-mnist, speech-commands, wt103,
ett, weather, ecl, kjv. The data root is --data-dir, else $DATA_DIR, else <repo>/data (the default
paths.data_dir).
Archives are kept under <root>/downloads/ (the LRA tarball serves listops, aan, pathfinder and
pathx) and resumed there after an interruption. --from DIR takes the same files from a local
folder instead of the network (fashion-mnist does so from the Debian package when installed).
weather and ecl come only in informer.zip behind a Google Drive page (no direct URL): without
--from DIR (holding informer.zip or the csv) or --mirror URL (serving informer.zip) the script
says where to put the file and exits with status 1.
kjv (the King James Bible, public domain) is read from the Debian packages bible-kjv-text and
bible-kjv (`apt-get install bible-kjv`), or from --from DIR holding kjv.txt (one verse a line), and
written in WikiText's layout (kjv/wiki.{train,valid,test}.tokens, words and punctuation separated
by spaces, one verse a line, words seen once in train as <unk>); every 50 verses, the 49th goes
to valid and the 50th to test.
See data/README.md for sources, licences and the resulting tree.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from s4lab.data.download import DownloadError, extract, fetch, verify

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Remote:
    """One published file: its official URL and checksum where published or measured."""

    url: str
    md5: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


LRA = Remote("https://storage.googleapis.com/long-range-arena/lra_release.gz")  # no checksum
IMDB = Remote(
    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    md5="7c2ac02c03563afcf9b574c7e56c153a",
)
CIFAR = Remote(
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
MNIST = [
    Remote(f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}", md5=md5)
    for name, md5 in [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
]
FASHION_MNIST = [
    Remote(f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}", md5=md5)
    for name, md5 in [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
]
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # apt: dataset-fashion-mnist
SPEECH_COMMANDS = Remote(
    "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    md5="6b74f3901214cb2c2934e98196829835",
)
WT103 = Remote(
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
    md5="9ddaacaf6af0710eda8c456decff7832",
)
ETT_URL = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small"
ETT = {  # file -> folder under <root>/informer/, as the official S4 layout
    Remote(f"{ETT_URL}/ETTh1.csv", md5="8381763947c85f4be6ac456c508460d6"): "etth",
    Remote(f"{ETT_URL}/ETTh2.csv", md5="51a229a3fc13579dd939364fefe9c7ab"): "etth",
    Remote(f"{ETT_URL}/ETTm1.csv"): "ettm",  # md5 not published or measured
}
# Weather and ECL: NAME -> the csv in informer.zip's NAME/ folder, as the official S4 layout.
INFORMER = {"weather": "WTH.csv", "ecl": "ECL.csv"}
INFORMER_ZIP = "informer.zip"
INFORMER_PAGE = "https://drive.google.com/file/d/1XqpxE6cthIxKYviSmR703yU45vdQ1oHT/view?usp=sharing"
LRA_FOLDERS = {"listops": "listops-1000", "aan": "tsv_data"}  # NAME -> folder in lra_release.gz
DEFAULT_RESOLUTION = {"pathfinder": 32, "pathx": 128}
GENERATED = {"listops", "pathfinder", "pathx"}
NAMES = ["listops", "imdb", "aan", "pathfinder", "pathx", "cifar", "mnist", "fashion-mnist"]
NAMES += ["speech-commands", "wt103", "ett", "weather", "ecl", "kjv"]
KJV_COMMAND = ["bible", "-f", "gen1:1-rev22:21"]  # Debian bible-kjv: every verse, one a line
KJV_VERSE = re.compile(r"^[1-3]?[A-Za-z]+\d+:\d+ (.*)$")  # "Ge1:1 In the beginning ..."
KJV_EVERY = 50  # of every 50 verses, one goes to valid and one to test
KJV_MIN_COUNT = 2  # rarer train words become <unk>


def obtain(remote: Remote, dest: Path, args: argparse.Namespace, check: bool = True) -> Path:
    """`remote` at `dest`: copied from --from DIR, or downloaded (from --mirror if given)."""
    md5 = remote.md5 if check else None
    if args.source_dir is None:
        url = f"{args.mirror.rstrip('/')}/{remote.filename}" if args.mirror else remote.url
        return fetch(url, dest, md5=md5, progress=not args.quiet)
    src = Path(args.source_dir) / remote.filename
    if not src.is_file():
        raise DownloadError(f"{src} not found (--from {args.source_dir}); expected the file there")
    verify(src, md5=md5)
    if src.resolve() != dest.resolve():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return dest


def unpack(archive: Path, folder: str, dest: Path) -> None:
    """Extract `folder` of `archive` into `dest`; fail if the archive has no such folder."""
    if extract(archive, {folder: dest})[folder] == 0:
        where = f"a folder named {folder!r}" if folder else "any file"
        raise DownloadError(f"{archive}: no {where} inside; is it the right archive?")
    print(f"extracted {archive.name}:{folder or '/'} -> {dest}", file=sys.stderr)


def prepare_informer(name: str, root: Path, args: argparse.Namespace) -> Path:
    """Weather or ECL into <root>/informer/NAME/: the csv copied from --from DIR, or its folder
    extracted from informer.zip (in --from DIR or at --mirror URL); else say where to put it."""
    filename, dest = INFORMER[name], root / "informer" / name
    if args.source_dir is None and args.mirror is None:
        raise DownloadError(
            f"{name}: {INFORMER_ZIP} is published only as a Google Drive page ({INFORMER_PAGE}, "
            "linked from the S4 src/dataloaders/README.md), with no stable direct URL. Download it "
            f"by hand, then run: python scripts/prepare_data.py {name} --from DIR (DIR holding "
            f"{INFORMER_ZIP} or {filename}); or unzip it so that {dest / filename} exists"
        )
    if args.source_dir is not None:
        src = Path(args.source_dir)
        if (src / filename).is_file():  # the csv itself, as in an unzipped informer/NAME/
            dest.mkdir(parents=True, exist_ok=True)
            if (src / filename).resolve() != (dest / filename).resolve():
                shutil.copyfile(src / filename, dest / filename)
            print(f"copied {src / filename} -> {dest / filename}", file=sys.stderr)
            return dest
        archive = src / INFORMER_ZIP
        if not archive.is_file():
            raise DownloadError(f"neither {filename} nor {INFORMER_ZIP} found in {src} (--from)")
    else:  # no checksum is published for informer.zip
        url = f"{args.mirror.rstrip('/')}/{INFORMER_ZIP}"
        archive = fetch(url, root / "downloads" / INFORMER_ZIP, progress=not args.quiet)
    unpack(archive, name, dest)
    if not (dest / filename).is_file():
        raise DownloadError(f"{archive}: its {name}/ folder holds no {filename}")
    return dest


def tokenize_verse(text: str) -> str:
    """Words and punctuation separated by single spaces (WikiText's form)."""
    return " ".join(re.findall(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']", text))


def kjv_splits(verses: list[str]) -> dict[str, list[str]]:
    """Tokenized verses split by position (verse i: valid at i % 50 == 48, test at 49); words
    seen fewer than twice in train become <unk>, as WikiText's closed vocabulary needs."""
    splits: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    for i, verse in enumerate(verses):
        split = {KJV_EVERY - 2: "valid", KJV_EVERY - 1: "test"}.get(i % KJV_EVERY, "train")
        splits[split].append(tokenize_verse(verse).split())
    counts = Counter(w for words in splits["train"] for w in words)
    return {
        split: [" ".join(w if counts[w] >= KJV_MIN_COUNT else "<unk>" for w in v) for v in lines]
        for split, lines in splits.items()
    }


def prepare_kjv(root: Path, args: argparse.Namespace) -> Path:
    """kjv/wiki.{train,valid,test}.tokens from the Debian bible-kjv packages (or --from DIR)."""
    if args.source_dir is not None:
        text = (Path(args.source_dir) / "kjv.txt").read_text(encoding="utf-8")
        verses = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        if shutil.which(KJV_COMMAND[0]) is None:
            raise DownloadError("kjv needs the Debian packages: apt-get install bible-kjv")
        listing = subprocess.run(KJV_COMMAND, capture_output=True, text=True, check=True).stdout
        verses = [m.group(1) for m in map(KJV_VERSE.match, listing.splitlines()) if m]
    if not verses:
        raise DownloadError(
            f"kjv: no verse found in the output of `{' '.join(KJV_COMMAND)}` (or kjv.txt); "
            "is bible-kjv installed and its text the `Book c:v text` listing?"
        )
    dest = root / "kjv"
    dest.mkdir(parents=True, exist_ok=True)
    for split, lines in kjv_splits(verses).items():
        (dest / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def generate(name: str, root: Path, args: argparse.Namespace) -> Path:
    """Run our generator for listops or pathfinder/pathx into the published layout."""
    if name == "listops":
        from s4lab.data.generators.listops import generate as generate_listops

        paths = generate_listops(
            root / "listops",
            n=args.n or 100_000,
            seed=args.seed,
            max_depth=args.max_depth,
            max_args=args.max_args,
            min_length=args.min_length,
            max_length=args.max_length,
            workers=args.workers,
        )
        return paths["train"].parent
    from s4lab.data.generators.pathfinder import generate as generate_pathfinder

    resolution = args.resolution or DEFAULT_RESOLUTION[name]
    return generate_pathfinder(
        out_dir=root / "pathfinder",
        resolution=resolution,
        n=args.n or 200_000,
        seed=args.seed,
        workers=args.workers,
    )


def prepare(name: str, root: Path, args: argparse.Namespace) -> Path:
    """Download/copy, verify and extract dataset `name` under `root`; return its folder."""
    downloads = root / "downloads"
    if name in LRA_FOLDERS:
        unpack(obtain(LRA, downloads / LRA.filename, args), LRA_FOLDERS[name], root / name)
        return root / name
    if name in DEFAULT_RESOLUTION:  # all three difficulties of pathfinder<R>/
        folder = f"pathfinder{args.resolution or DEFAULT_RESOLUTION[name]}"
        unpack(obtain(LRA, downloads / LRA.filename, args), folder, root / "pathfinder" / folder)
        return root / "pathfinder" / folder
    if name == "imdb":
        unpack(obtain(IMDB, downloads / IMDB.filename, args), "aclImdb", root / "imdb/aclImdb")
        return root / "imdb/aclImdb"
    if name == "cifar":
        dest = root / "cifar/cifar-10-batches-py"
        unpack(obtain(CIFAR, downloads / CIFAR.filename, args), "cifar-10-batches-py", dest)
        return dest
    if name == "speech-commands":
        archive = obtain(SPEECH_COMMANDS, downloads / SPEECH_COMMANDS.filename, args)
        unpack(archive, "", root / "SpeechCommands")  # the tarball has no top folder
        return root / "SpeechCommands"
    if name == "wt103":
        unpack(obtain(WT103, downloads / WT103.filename, args), "wikitext-103", root / "wt103")
        return root / "wt103"
    if name in ("mnist", "fashion-mnist"):
        remotes = MNIST if name == "mnist" else FASHION_MNIST
        check = True
        local = args.source_dir is None and args.mirror is None and FASHION_MNIST_DEBIAN.is_dir()
        if name == "fashion-mnist" and local:
            print(f"using the Debian copy in {FASHION_MNIST_DEBIAN}", file=sys.stderr)
            args.source_dir = str(FASHION_MNIST_DEBIAN)
            check = False  # Debian re-compressed the .gz (other md5); the loader checks IDX sizes
        for remote in remotes:
            obtain(remote, root / name / remote.filename, args, check=check)
        return root / name
    if name == "ett":
        remotes = ETT
        if args.source_dir is not None:  # a local copy may hold only some of the files
            remotes = {
                r: f for r, f in ETT.items() if (Path(args.source_dir) / r.filename).exists()
            }
            if not remotes:
                names = ", ".join(r.filename for r in ETT)
                raise DownloadError(f"none of {names} found in {args.source_dir}")
        for remote, folder in remotes.items():
            obtain(remote, root / "informer" / folder / remote.filename, args)
        return root / "informer"
    if name in INFORMER:
        return prepare_informer(name, root, args)
    if name == "kjv":
        return prepare_kjv(root, args)
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(NAMES)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("name", choices=NAMES)
    p.add_argument("--data-dir", help="data root (default: $DATA_DIR or <repo>/data)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from", dest="source_dir", help="take the published files from DIR")
    source.add_argument("--mirror", help="download the same file names from this base URL")
    source.add_argument("--generate", action="store_true", help="listops, pathfinder, pathx")
    p.add_argument(
        "--resolution",
        type=int,
        choices=[32, 64, 128, 256],
        help="image size: pathfinder defaults to 32, pathx to 128",
    )
    p.add_argument("--n", type=int, help="examples (listops 100000, pathfinder 200000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    listops = p.add_argument_group("listops --generate (LRA defaults)")
    listops.add_argument("--max-depth", type=int, default=10)
    listops.add_argument("--max-args", type=int, default=10)
    listops.add_argument("--min-length", type=int, default=500)
    listops.add_argument("--max-length", type=int, default=2000)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.generate and args.name not in GENERATED:
        p.error(f"--generate works for {', '.join(sorted(GENERATED))}, not {args.name}")
    if args.resolution and args.name not in DEFAULT_RESOLUTION:
        p.error("--resolution goes with pathfinder or pathx")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(args.data_dir or os.environ.get("DATA_DIR") or REPO / "data")
    try:
        folder = (
            generate(args.name, root, args) if args.generate else prepare(args.name, root, args)
        )
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.name}: ready in {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sequential and permuted MNIST (and Fashion-MNIST) from the published IDX files, L = 784.

IDX (big-endian): images = int32 magic 0x00000803, n, 28, 28, then n·784 uint8 pixels;
labels = int32 magic 0x00000801, n, then n uint8 labels. Files may be gzipped (`.gz`).
Looked up in `data_dir/` and, for the official repo's torchvision download, `data_dir/<MNIST|
FashionMNIST>/raw/`, uncompressed name first, then `.gz`.
As the official repo: x = pixel / 255 (no normalization), read row-major into (784, 1);
sMNIST keeps that order, pMNIST reorders the time axis by the bit-reversal permutation:
    perm = [bitreverse_10(i) for i in 0..1023 if bitreverse_10(i) < 784],   x_perm[t] = x[perm[t]]
Split: train_len = int(60000 · (1 − val_split)) by `torch.utils.data.random_split` seeded 42
(54k/6k for val_split 0.1), test = the t10k files.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, random_split

from s4lab.data.base import MissingDataError, SequenceDataModule, require

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
SPLIT_SEED = 42  # the official loaders' split seed, independent of the run's seed


def bitreversal_permutation(n: int) -> Tensor:
    """Indices 0..n-1 in bit-reversed order over the next power of two, keeping those < n."""
    bits = max(1, (n - 1).bit_length())
    rev = [int(f"{i:0{bits}b}"[::-1], 2) for i in range(1 << bits)]
    return torch.tensor([r for r in rev if r < n], dtype=torch.int64)


def read_idx(path: Path, magic: int) -> Tensor:
    """An IDX file (raw or gzipped) -> uint8 tensor (n, 28, 28) for images or (n,) for labels."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: corrupt or truncated file ({e})") from e
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if found != magic:
        found = "missing" if found is None else f"{found:#010x}"
        raise ValueError(
            f"{path}: IDX magic {found}, expected {magic:#010x} "
            f"({'images, n x 28 x 28' if magic == IMAGES_MAGIC else 'labels, n'})"
        )
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = list(struct.unpack(f">{ndim}I", raw[4:header]))
    if magic == IMAGES_MAGIC and dims[1:] != [28, 28]:
        raise ValueError(f"{path}: images must be 28 x 28; header says {dims[1]} x {dims[2]}")
    size = 1
    for d in dims:
        size *= d
    if len(raw) - header != size:
        raise ValueError(
            f"{path}: truncated or oversized IDX data: header promises {size} bytes, "
            f"file holds {len(raw) - header}"
        )
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).view(*dims)


class ImageSequences(Dataset):
    """item i -> (x (784, 1) float32 in [0, 1], y int64), time axis optionally permuted."""

    def __init__(self, images: Tensor, labels: Tensor, perm: Tensor | None) -> None:
        self.images, self.labels, self.perm = images, labels, perm  # (n, 28, 28) uint8, (n,)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = self.images[i].flatten().float() / 255  # (784,) row-major
        if self.perm is not None:
            x = x[self.perm]
        return x[:, None], self.labels[i].long()  # (784, 1)


class MNIST(SequenceDataModule):
    """sMNIST (permute=False) or pMNIST (permute=True, bit reversal) from IDX files in `data_dir`.

    val_split: fraction of the 60k training images held out (seeded 42) for validation.
    """

    d_input = 1
    d_output = 10
    l_max = 784
    prepare_name = "mnist"
    torchvision_folder = "MNIST"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 50,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        permute: bool = False,
        val_split: float = 0.1,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        if not 0.0 < val_split < 1.0:
            raise ValueError(f"val_split must lie in (0, 1); got {val_split}")
        self.permute, self.val_split = permute, val_split

    def _find(self, stem: str) -> Path:
        """The first existing of stem, stem.gz, in data_dir then in the torchvision raw folder."""
        folders = [self.data_dir, self.data_dir / self.torchvision_folder / "raw"]
        for folder in folders:
            for name in (stem, f"{stem}.gz"):
                if (folder / name).is_file():
                    return folder / name
        try:
            return require(
                self.data_dir / f"{stem}.gz", f"python scripts/prepare_data.py {self.prepare_name}"
            )
        except MissingDataError as e:
            raise MissingDataError(
                f"{e}\n(also looked for {stem} and {folders[1]}/{stem}[.gz])"
            ) from None

    def _read(self, prefix: str) -> tuple[Tensor, Tensor]:
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"), IMAGES_MAGIC)
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"), LABELS_MAGIC)
        if len(images) != len(labels):
            raise ValueError(
                f"{self.data_dir}: {prefix} has {len(images)} images but {len(labels)} labels"
            )
        if len(labels) and int(labels.max()) > 9:
            raise ValueError(f"{self.data_dir}: {prefix} labels must lie in 0..9")
        return images, labels

    def prepare_data(self) -> None:
        for prefix in ("train", "t10k"):
            self._find(f"{prefix}-images-idx3-ubyte")
            self._find(f"{prefix}-labels-idx1-ubyte")

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        perm = bitreversal_permutation(self.l_max) if self.permute else None
        images, labels = self._read("train")
        n_train = int(len(labels) * (1.0 - self.val_split))
        g = torch.Generator().manual_seed(SPLIT_SEED)
        train_idx, val_idx = random_split(range(len(labels)), [n_train, len(labels) - n_train], g)
        train_idx, val_idx = list(train_idx), list(val_idx)
        self.data_train = ImageSequences(images[train_idx], labels[train_idx], perm)
        self.data_val = ImageSequences(images[val_idx], labels[val_idx], perm)
        self.data_test = ImageSequences(*self._read("t10k"), perm)


class FashionMNIST(MNIST):
    """Fashion-MNIST: same IDX layout and protocol (Debian: /usr/share/datasets/fashion-mnist)."""

    prepare_name = "fashion-mnist"
    torchvision_folder = "FashionMNIST"

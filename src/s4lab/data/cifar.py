"""CIFAR-10 as a sequence: LRA Image (grayscale, L = 1024, d_input 1) and sequential CIFAR (color).

Source: the python pickles `cifar-10-batches-py/{data_batch_1..5, test_batch}`, read here
(torchvision's reader checks the md5 of every batch). Each batch is a dict with b"data", uint8
(n, 3072) channel-planar (1024 R, 1024 G, 1024 B, each row-major), and b"labels", n ints.
Pixel (h, w) of image i: R, G, B = data[i, c·1024 + 32h + w] for c = 0, 1, 2.

Grayscale (LRA Image, as the official repo's torchvision Grayscale = PIL "L"):
    gray = (19595 R + 38470 G + 7471 B + 2^15) >> 16        (≈ 0.299 R + 0.587 G + 0.114 B, rounded)
    x = (gray / 255 − 122.6/255) / (61.0/255)
Color (sequential CIFAR): x_c = (v_c / 255 − mean_c) / std_c with the official per-channel
constants below. Sequences are read in (h, w) order: x (1024, d_input).
Split: train_len = int(50000 · (1 − val_split)) by `torch.utils.data.random_split` with a
generator seeded 42 (45k/5k for val_split 0.1, as the official loader), test = test_batch.
Augmentation (optional, train split only; the official repo also augments its validation subset):
random 32×32 crop of the image padded by 4 with symmetric (edge-repeating) padding, then a
horizontal flip with probability 1/2.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, random_split

from s4lab.data.base import SequenceDataModule, require

PREPARE = "python scripts/prepare_data.py cifar"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
GRAY_MEAN, GRAY_STD = 122.6 / 255, 61.0 / 255
RGB_MEAN = (0.4914, 0.4822, 0.4465)
RGB_STD = (0.247, 0.243, 0.261)
SPLIT_SEED = 42  # the official loaders' split seed, independent of the run's seed
PAD = 4


def read_batch(path: Path) -> tuple[Tensor, Tensor]:
    """One pickled batch -> images (n, 3, 32, 32) uint8, labels (n,) int64."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: corrupt or truncated CIFAR-10 pickle ({e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"{path}: expected a CIFAR-10 python batch, a dict with b'data' (n, 3072) uint8 "
            f"and b'labels'; got {keys}"
        )
    data = torch.as_tensor(batch[b"data"])
    labels = torch.as_tensor(batch[b"labels"], dtype=torch.int64)
    if data.dtype != torch.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"{path}: b'data' must be uint8 of shape (n, 3072); "
            f"got {data.dtype} {tuple(data.shape)}"
        )
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and not (int(labels.min()) >= 0 and int(labels.max()) <= 9):
        raise ValueError(f"{path}: labels must lie in 0..9")
    return data.view(-1, 3, 32, 32), labels


def to_grayscale(images: Tensor) -> Tensor:
    """PIL's integer luma (ITU-R 601-2): (..., 3, H, W) uint8 -> (..., H, W) uint8."""
    R, G, B = images.to(torch.int32).unbind(-3)
    return ((R * 19595 + G * 38470 + B * 7471 + (1 << 15)) >> 16).to(torch.uint8)


def random_crop_flip(image: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Pad (C, H, W) by 4 with symmetric padding, crop back to (H, W) at random, flip with p 1/2."""
    _, H, W = image.shape
    rows = torch.cat(
        [torch.arange(PAD - 1, -1, -1), torch.arange(H), torch.arange(H - 1, H - 1 - PAD, -1)]
    )
    cols = torch.cat(
        [torch.arange(PAD - 1, -1, -1), torch.arange(W), torch.arange(W - 1, W - 1 - PAD, -1)]
    )
    top, left = torch.randint(0, 2 * PAD + 1, (2,), generator=generator).tolist()
    out = image[:, rows[top : top + H]][:, :, cols[left : left + W]]
    if torch.rand((), generator=generator) < 0.5:
        out = out.flip(-1)
    return out


class CIFARSequences(Dataset):
    """Images as normalized sequences: item i -> (x (1024, 1 or 3) float32, y int64)."""

    def __init__(self, images: Tensor, labels: Tensor, grayscale: bool, augment: bool) -> None:
        self.images, self.labels = images, labels  # (n, 3, 32, 32) uint8, (n,)
        self.grayscale, self.augment = grayscale, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image = self.images[i]  # (3, 32, 32)
        if self.grayscale:
            x = (to_grayscale(image)[None].float() / 255 - GRAY_MEAN) / GRAY_STD  # (1, 32, 32)
        else:
            mean = torch.tensor(RGB_MEAN)[:, None, None]
            std = torch.tensor(RGB_STD)[:, None, None]
            x = (image.float() / 255 - mean) / std  # (3, 32, 32)
        if self.augment:
            x = random_crop_flip(x)
        return x.flatten(1).T.contiguous(), self.labels[i]  # (1024, C) in (h, w) order


class CIFAR10(SequenceDataModule):
    """CIFAR-10 from the python pickles under `data_dir/cifar-10-batches-py/`.

    grayscale: LRA Image (d_input 1, the official 122.6/61.0 normalization), else color (d_input 3).
    augment: random crop (pad 4, symmetric) + horizontal flip on the training split.
    val_split: fraction of the 50k training images held out (seeded 42) for validation.
    """

    d_output = 10
    l_max = 1024

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 50,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        grayscale: bool = False,
        augment: bool = False,
        val_split: float = 0.1,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        if not 0.0 < val_split < 1.0:
            raise ValueError(f"val_split must lie in (0, 1); got {val_split}")
        self.grayscale, self.augment, self.val_split = grayscale, augment, val_split
        self.d_input = 1 if grayscale else 3

    def _read(self, names: list[str]) -> tuple[Tensor, Tensor]:
        folder = self.data_dir / FOLDER
        parts = [read_batch(require(folder / name, prepare=PREPARE)) for name in names]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def prepare_data(self) -> None:
        for name in TRAIN_BATCHES + TEST_BATCHES:
            require(self.data_dir / FOLDER / name, prepare=PREPARE)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        images, labels = self._read(TRAIN_BATCHES)
        n_train = int(len(labels) * (1.0 - self.val_split))
        g = torch.Generator().manual_seed(SPLIT_SEED)
        train_idx, val_idx = random_split(range(len(labels)), [n_train, len(labels) - n_train], g)
        train_idx, val_idx = list(train_idx), list(val_idx)
        self.data_train = CIFARSequences(
            images[train_idx], labels[train_idx], self.grayscale, self.augment
        )
        self.data_val = CIFARSequences(images[val_idx], labels[val_idx], self.grayscale, False)
        test_images, test_labels = self._read(TEST_BATCHES)
        self.data_test = CIFARSequences(test_images, test_labels, self.grayscale, False)

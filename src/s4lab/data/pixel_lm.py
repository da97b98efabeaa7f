"""Images as pixel-token sequences for autoregressive modeling (sequential MNIST, Fashion-MNIST).

    tokens: the 784 pixels (0..255) row-major;  x = [start, p_0, …, p_782],  y = [p_0, …, p_783]
    start = 256: the first pixel is predicted from nothing (inputs 257 ids, outputs 256 classes)
Images, files and the seeded train/val split are those of s4lab.data.mnist (same IDX files).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from s4lab.data.base import SequenceDataModule
from s4lab.data.mnist import MNIST, FashionMNIST

IMAGES = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
START = 256


class PixelTokens(Dataset):
    """item i -> x (784,) = [start, pixels[:-1]], y (784,) = pixels, both int64."""

    def __init__(self, images: Tensor) -> None:
        self.images = images  # (n, 28, 28) uint8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        y = self.images[i].flatten().long()  # (784,) row-major
        return torch.cat([y.new_tensor([START]), y[:-1]]), y


class PixelLM(SequenceDataModule):
    """MNIST or Fashion-MNIST images as next-pixel prediction; batches (x, y) (B, 784) int64."""

    d_input = vocab_size = START + 1
    d_output = 256
    l_max = 784
    image_shape = (28, 28)
    start_token = START

    def __init__(
        self,
        data_dir: str,
        dataset: Literal["mnist", "fashion-mnist"] = "fashion-mnist",
        batch_size: int = 50,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        val_split: float = 0.1,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        if dataset not in IMAGES:
            raise ValueError(f"unknown dataset {dataset!r}; accepted: {', '.join(IMAGES)}")
        self.source = IMAGES[dataset](data_dir, val_split=val_split)

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        self.source.setup(stage)
        split = (self.source.data_train, self.source.data_val, self.source.data_test)
        self.data_train, self.data_val, self.data_test = (PixelTokens(s.images) for s in split)

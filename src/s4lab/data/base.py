"""What every datamodule shares: sizes for the model, seeded loaders, and the missing-data error.

A datamodule fills `data_train`, `data_val`, `data_test` in `setup()` and sets the sizes the model
is built from (`d_input`, `d_output`, `l_max`, `vocab_size`); `train(cfg)` calls `prepare_data()`
and `setup("fit")` before it builds the model, so the sizes never appear in YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler


class MissingDataError(FileNotFoundError):
    """A dataset file is absent: the message names the path and the command that makes it."""


def require(path: str | Path, prepare: str) -> Path:
    """Return `path` if it exists; else raise MissingDataError naming it and the prepare command."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(
            f"Dataset file not found: {path.resolve()}\n"
            f"Prepare it with: {prepare}\n"
            "(or point paths.data_dir / the DATA_DIR environment variable at an existing copy)"
        )
    return path


class EpochSeededSampler(Sampler[int]):
    """Random permutation fixed by (seed, epoch), so a resumed run sees the same data order.

    Lightning calls `set_epoch` at the start of every epoch (also after restoring a checkpoint).
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SequenceDataModule(LightningDataModule):
    """Base datamodule: subclasses set the datasets and sizes in `setup()`.

    Sizes: `d_input` (features per step; for token inputs, the vocabulary size), `d_output`
    (classes, or output features), `l_max` (longest sequence), `vocab_size` (None for
    continuous inputs; the backbone then uses a linear encoder instead of an embedding).
    """

    d_input: int
    d_output: int
    l_max: int
    vocab_size: int | None = None

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int = 0,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.batch_size_eval = batch_size_eval or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.data_train: Dataset | None = None
        self.data_val: Dataset | None = None
        self.data_test: Dataset | None = None

    collate_fn: Callable | None = None

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not built this split yet")
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.batch_size_eval,
            sampler=EpochSeededSampler(len(dataset), self.seed) if train else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)

"""What every datamodule shares: its sizes for the model, seeded loaders, the missing-data error.

Lightning's data lifecycle: `prepare_data()` runs once per node (local rank 0, then a barrier)
and builds what goes to disk (caches, generated data); `setup(stage)` runs on every rank and
loads the splits. After `setup()` of any stage, `sizes` gives the model's sizes (`DataSizes`),
so they never appear in YAML. `train(cfg)` passes the datamodule to `trainer.fit` / `test`.

Loaders: `num_workers=None` picks the worker count from the machine (`default_num_workers`);
memory is pinned and workers persist between epochs on CUDA. With `track_test`,
`val_dataloader()` returns [val, test], so the test split is evaluated every epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

MAX_WORKERS = 8  # in-memory tensors: more workers only cost memory


@dataclass(frozen=True)
class DataSizes:
    """What the model is built from. d_input: features per step (for token inputs, the
    vocabulary size); d_output: classes or output features; l_max: longest sequence (None:
    unbounded); vocab_size: None for continuous inputs (linear encoder, not an embedding)."""

    d_input: int
    d_output: int
    l_max: int | None
    vocab_size: int | None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which respects taskset and cgroups)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_num_workers(on_cuda: bool, processes_per_node: int = 1) -> int:
    """Loader workers per process: 0 off CUDA, else min(8, CPUs per process - 1).

    Off CUDA the model computes on the same cores the workers would load on, and every dataset
    here indexes in-memory tensors, so loading in the main process is fastest. On CUDA each
    training process keeps one core for itself and gives the rest of its share to workers.
    """
    if not on_cuda:
        return 0
    return max(0, min(MAX_WORKERS, usable_cpus() // max(1, processes_per_node) - 1))


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
    """Base datamodule: subclasses fill the datasets and the sizes in `setup()`.

    Size attributes (see DataSizes): `d_input`, `d_output`, `l_max`, `vocab_size`; `sizes`
    bundles them once `setup()` has run.
    data_dir: the dataset's own folder (`<paths.data_dir>/<name>`); caches go to data_dir/cache.
    num_workers: loader workers; None: `default_num_workers` for this machine.
    track_test: `val_dataloader()` also returns the test loader (logged as test/*).
    """

    d_input: int
    d_output: int
    l_max: int | None
    vocab_size: int | None = None
    collate_fn: Callable | None = None

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__()
        if num_workers is not None and num_workers < 0:
            raise ValueError(f"num_workers={num_workers}; use 0 (main process), more, or null")
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.batch_size_eval = batch_size_eval or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.track_test = track_test
        self.data_train: Dataset | None = None
        self.data_val: Dataset | None = None
        self.data_test: Dataset | None = None

    @property
    def sizes(self) -> DataSizes:
        """The model's sizes; available once `setup()` (of any stage) has run."""
        missing = [k for k in ("d_input", "d_output") if getattr(self, k, None) is None]
        if missing:
            raise RuntimeError(
                f"{type(self).__name__}.sizes: {', '.join(missing)} unknown before setup(); "
                "call prepare_data() and setup() first (Lightning does both in fit/test)"
            )
        return DataSizes(
            d_input=int(self.d_input),
            d_output=int(self.d_output),
            l_max=None if getattr(self, "l_max", None) is None else int(self.l_max),
            vocab_size=None if self.vocab_size is None else int(self.vocab_size),
        )

    @property
    def on_cuda(self) -> bool:
        """Whether batches go to a CUDA device: the trainer's, else whether CUDA is present."""
        if self.trainer is not None:
            return self.trainer.strategy.root_device.type == "cuda"
        return torch.cuda.is_available()

    @property
    def workers(self) -> int:
        """Loader workers: `num_workers`, or the machine's default (`default_num_workers`)."""
        if self.num_workers is not None:
            return self.num_workers
        processes = self.trainer.num_devices if self.trainer is not None else 1
        return default_num_workers(self.on_cuda, processes)

    def loader_options(self) -> dict:
        """Worker, pinning and persistence options shared by every loader."""
        workers = self.workers
        return {
            "num_workers": workers,
            "persistent_workers": workers > 0,  # no re-spawn (and dataset copy) every epoch
            "pin_memory": self.on_cuda,  # page-locked batches: asynchronous host-to-GPU copies
        }

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not built this split yet")
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.batch_size_eval,
            sampler=EpochSeededSampler(len(dataset), self.seed) if train else None,
            collate_fn=self.collate_fn,
            **self.loader_options(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The val loader, then the test loader when tracking test (not twice the same split)."""
        val = self._loader(self.data_val, train=False)
        if not self.track_test or self.data_test is self.data_val:
            return val
        return [val, self._loader(self.data_test, train=False)]

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)

"""WikiText-103, word level, with the ordered language-modeling iterator of Transformer-XL.

Files: `data_dir/wiki.{train,valid,test}.tokens` (the published zip's names) or Transformer-XL's
renamed `data_dir/{train,valid,test}.txt`. UTF-8, already tokenized, space separated, OOV words
already `<unk>`.
Vocabulary (as the official repo): symbols = ["<eos>"] + words of the train file by descending
count, ties in order of first occurrence (`Counter.most_common`); `<unk>` is an ordinary word.
Encoding: each line -> line.split() + ["<eos>"] (a blank line is just <eos>), the lines of a file
concatenated into one stream. A valid/test word absent from train maps to `<unk>` when train has
it (never on the real data, a closed vocabulary), else it is an error naming the file.
Ordered iterator (B = batch size, W = world size, r = rank, L = l_max):
    S = stream[: ⌊N / (W B)⌋ · W B].view(W B, −1)[r B : (r + 1) B]       (B, T), rows contiguous
    window k: x = S[:, kL : kL + L], y = S[:, kL + 1 : kL + L + 1]       the last one shorter
Windows do not overlap and come in order, so row b of consecutive batches continues one text.
Unlike the official iterator, rows are not rotated by a per-epoch random shift (its `roll_seed`):
every epoch sees the same windows.
The rank is the attached trainer's; without one, torch.distributed's once initialized, else 0 of 1.
The encoded splits are cached under `data_dir/cache/` by `prepare_data()`, keyed by the files'
checksums.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from s4lab.data.base import SequenceDataModule, require
from s4lab.data.cache import cached, prepare_cache

PREPARE = "python scripts/prepare_data.py wt103"
EOS, UNK = "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")


def read_lines(path: Path) -> list[str]:
    """A UTF-8 text file's lines, split on newlines only (as `for line in file`)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text as WikiText expects ({e})") from e


def build_vocab(train_lines: list[str]) -> list[str]:
    """["<eos>"] + train words by descending count, ties by first occurrence."""
    counts = Counter()
    for line in train_lines:
        counts.update(line.split())
    counts.pop(EOS, None)
    return [EOS] + [w for w, _ in counts.most_common()]


def encode(lines: list[str], index: dict[str, int], path: Path) -> Tensor:
    """Lines -> one int64 stream (N,), `<eos>` after every line."""
    eos, unk = index[EOS], index.get(UNK)
    ids = array("q")
    for line in lines:
        words = line.split()
        try:
            ids.extend([index[w] for w in words])
        except KeyError as e:
            if unk is None:
                raise ValueError(
                    f"{path}: word {e.args[0]!r} is not in the train vocabulary and train has no "
                    f"{UNK}; WikiText valid/test words must all occur in the train file"
                ) from None
            ids.extend([index.get(w, unk) for w in words])
        ids.append(eos)
    return (
        torch.frombuffer(ids, dtype=torch.int64).clone()
        if ids
        else torch.zeros(0, dtype=torch.int64)
    )


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of the initialized default process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class LMOrderedIterator(IterableDataset):
    """Non-overlapping (x, y) windows (B, ≤ L) of this rank's rows of the batch-major stream.

    rank/world_size None: read from torch.distributed when first needed (Lightning initializes
    the process group inside `fit`, after the loaders are built), so DDP runs shard correctly
    even when the loader was made before the trainer launched its processes.
    """

    def __init__(
        self,
        tokens: Tensor,
        batch_size: int,
        l_max: int,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.tokens, self.batch_size, self.l_max = tokens, batch_size, l_max
        self.rank, self.world_size = rank, world_size
        self._data: Tensor | None = None
        if rank is not None:
            self.data  # noqa: B018  (validate sizes now when the rank is known)

    @property
    def data(self) -> Tensor:
        """This rank's rows (B, T) of the stream reshaped to (W B, T)."""
        if self._data is None:
            if self.rank is None:
                self.rank, self.world_size = distributed_rank()
            rows = self.batch_size * self.world_size
            T = len(self.tokens) // rows
            if T < 2:
                raise ValueError(
                    f"{len(self.tokens)} tokens cannot fill {rows} rows (batch_size x world_size) "
                    "with at least 2 tokens each; lower the batch size"
                )
            grid = self.tokens[: T * rows].view(rows, T)  # (W B, T)
            self._data = grid[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return self._data

    def __len__(self) -> int:
        return math.ceil((self.data.shape[1] - 1) / self.l_max)

    def __iter__(self):
        data = self.data  # (B, T)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        T = data.shape[1]
        for k, start in enumerate(range(0, T - 1, self.l_max)):
            if k % workers != worker:  # the loader interleaves workers in order
                continue
            end = min(start + self.l_max, T - 1)
            yield data[:, start:end], data[:, start + 1 : end + 1]  # (B, l), (B, l)


class WikiText103(SequenceDataModule):
    """Word-level WikiText-103; batches (x, y) int64 (B, ≤ l_max), y = x shifted by one."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 8,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
        l_max: int = 1024,
    ) -> None:
        super().__init__(data_dir, batch_size, batch_size_eval, num_workers, seed, track_test)
        self.l_max = l_max
        self.vocab: list[str] | None = None

    def path(self, split: str) -> Path:
        """wiki.<split>.tokens, or Transformer-XL's <split>.txt when only that exists."""
        published = self.data_dir / f"wiki.{split}.tokens"
        renamed = self.data_dir / f"{split}.txt"
        return (
            renamed if not published.exists() and renamed.exists() else require(published, PREPARE)
        )

    def _build(self, paths: list[Path]) -> dict:
        train_lines = read_lines(paths[0])
        vocab = build_vocab(train_lines)
        index = {w: i for i, w in enumerate(vocab)}
        out = {"vocab": vocab, "train": encode(train_lines, index, paths[0])}
        del train_lines
        for split, path in zip(SPLITS[1:], paths[1:], strict=True):
            out[split] = encode(read_lines(path), index, path)
        return out

    def _cache_args(self) -> dict:
        """Arguments of `cached` / `prepare_cache`; finding the files checks they exist."""
        paths = [self.path(split) for split in SPLITS]
        return {
            "build": lambda: self._build(paths),
            "cache_dir": self.data_dir / "cache",
            "name": "wt103",
            "config": {"version": 1},  # bump when the vocabulary or encoding rules change
            "sources": paths,
        }

    def prepare_data(self) -> None:
        prepare_cache(**self._cache_args())

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        data = cached(**self._cache_args())
        self.vocab = data["vocab"]
        self.data_train, self.data_val, self.data_test = (data[s] for s in SPLITS)
        self.vocab_size = self.d_input = self.d_output = len(self.vocab)

    def _rank(self) -> tuple[int | None, int | None]:
        """(global rank, world size) of the attached trainer, else None: decided at first use."""
        if self.trainer is None:
            return None, None
        return self.trainer.global_rank, self.trainer.world_size

    def _loader(self, tokens: Tensor | None, train: bool) -> DataLoader:
        if tokens is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not built this split yet")
        rank, world_size = self._rank()
        batch_size = self.batch_size if train else self.batch_size_eval
        iterator = LMOrderedIterator(tokens, batch_size, self.l_max, rank, world_size)
        return DataLoader(iterator, batch_size=None, **self.loader_options())  # whole batches

"""Generated datasets: example i of a split comes from its own seeded generator.

    example(split, i) = generate(1, Generator(s)),  s = SeedSequence([seed, k, i]) → 32 bits
with k = 0, 1, 2 for train, val, test (torch's CPU generator keeps only 32 bits of a seed, so
the triple is hashed by numpy's SeedSequence rather than packed into one integer). The same seed
gives the same data whatever the batch size, number of workers or split sizes, and nothing is
stored, so L = 16K sequences cost no memory.
Batch convention of the token tasks (per-position targets):
    (x, y), both (B, L) int64; y[b, t] is the target for the output at position t (after reading
    x[b, :t+1]) and IGNORE_INDEX = -100 where there is none (`F.cross_entropy(ignore_index=-100)`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from s4lab.data.base import SequenceDataModule

IGNORE_INDEX = -100


class GeneratedSplit(Dataset):
    """n examples; example i = make(1, Generator(hash(seed, split, i))), batch axis removed."""

    def __init__(
        self,
        make: Callable[[int, torch.Generator], tuple[Tensor, ...]],
        n: int,
        seed: int,
        split: int,
    ) -> None:
        self.make, self.n, self.seed, self.split = make, n, seed, split

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor, ...]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        entropy = np.random.SeedSequence([self.seed, self.split, i]).generate_state(1)[0]
        return tuple(t[0] for t in self.make(1, torch.Generator().manual_seed(int(entropy))))


class SyntheticDataModule(SequenceDataModule):
    """Base of the generated tasks: subclasses set the sizes and implement `generate`."""

    def __init__(
        self,
        n_train: int,
        n_val: int,
        n_test: int,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        # no data_dir: nothing is read or written
        super().__init__(".", batch_size, batch_size_eval, num_workers, seed, track_test)
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, ...]:
        """n examples as batched tensors, drawn from `generator` only."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate()")

    def setup(self, stage: str | None = None) -> None:
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        for k, (split, n) in enumerate(sizes.items()):
            make = partial(self.generate, train=split == "train")
            setattr(self, f"data_{split}", GeneratedSplit(make, n, self.seed, k))


def lm_targets(example: Tensor, answer_only: bool) -> tuple[Tensor, Tensor]:
    """Next-token pair x = example[:, :-1], y = example[:, 1:]; with `answer_only`, y keeps only
    its last position (the answer) and holds IGNORE_INDEX elsewhere. example: (B, L + 1)."""
    x, y = example[:, :-1], example[:, 1:].clone()
    if answer_only:
        y[:, :-1] = IGNORE_INDEX
    return x, y

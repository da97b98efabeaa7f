"""Adding problem (Hochreiter & Schmidhuber 1997; S4 `adding`).

Two input channels over L = l_seq steps: u_t ~ U(0, 1) and a marker m_t with exactly one 1 in
[0, L//2) and one in [L//2, L). Target: y = Σ_t u_t m_t ∈ [0, 2].
Predicting the mean 1 gives MSE 1/6; "solved" is conventionally MSE < 1e-3.
Batch convention (forecasting style, so the forecasting task reads it unchanged):
    x (B, L + 1, 2) float32: the sequence, then one all-zero query step;
    y (B, 1, 1) float32: the sum, read from the output at the query step (horizon = 1);
    mean = 0, std = 1 (1,): the targets are not rescaled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from s4lab.data.synthetic.base import SyntheticDataModule


class Adding(SyntheticDataModule):
    """Sum of the two marked values of a uniform sequence of length l_seq."""

    def __init__(
        self,
        l_seq: int = 1000,
        n_train: int = 45_000,
        n_val: int = 5_000,
        n_test: int = 5_000,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__(
            n_train, n_val, n_test, batch_size, batch_size_eval, num_workers, seed, track_test
        )
        if l_seq < 2:
            raise ValueError(f"l_seq={l_seq}; need l_seq >= 2 (one marker in each half)")
        self.l_seq = l_seq
        self.horizon = 1
        self.mean, self.std = torch.zeros(1), torch.ones(1)
        self.d_input, self.d_output, self.l_max = 2, 1, l_seq + 1
        self.vocab_size = None

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
        L, half = self.l_seq, self.l_seq // 2
        first = torch.randint(0, half, (n,), generator=generator)
        second = torch.randint(half, L, (n,), generator=generator)
        marker = F.one_hot(first, L) + F.one_hot(second, L)  # (B, L)
        u = torch.rand(n, L, generator=generator)  # (B, L)
        x = torch.stack([u, marker.float()], dim=-1)  # (B, L, 2)
        x = torch.cat([x, torch.zeros(n, 1, 2)], dim=1)  # (B, L + 1, 2): the query step
        y = (u * marker).sum(-1).view(n, 1, 1)  # (B, 1, 1)
        return x, y

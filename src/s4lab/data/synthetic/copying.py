"""Copying (Arjovsky et al. 2016; S4 `copying`) and selective copying (Mamba §3.1).

Vocabulary of A = n_tokens ids: 0 = blank, 1 … A−2 = data tokens, A−1 = marker. With M = l_memorize
data tokens s_1 … s_M drawn uniformly from 1 … A−2 and l_noise blanks:
    copying:    x = s_1 … s_M, 0 × l_noise, (A−1) × M
    selective:  x = the M tokens at sorted random distinct positions of the first M + l_noise
                steps (blanks elsewhere), then (A−1) × M
    y = −100 … −100, s_1 … s_M  (targets on the M marker steps only; chance 1/(A−2))
A fixed-spacing copy is a pure delay, so an LTI SSM can solve it; the selective variant needs
input-dependent dynamics (Mamba reports 18.3% for S4). Batches: (x, y), both (B, L) int64,
L = 2M + l_noise, -100 = no target (see base.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.data.synthetic.base import IGNORE_INDEX, SyntheticDataModule


class Copying(SyntheticDataModule):
    """Copy M tokens after l_noise blanks; `selective` scatters them among the blanks."""

    def __init__(
        self,
        n_tokens: int = 10,
        l_noise: int = 100,
        l_memorize: int = 10,
        selective: bool = False,
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__(
            n_train, n_val, n_test, batch_size, batch_size_eval, num_workers, seed, track_test
        )
        if n_tokens < 3 or l_memorize < 1 or l_noise < 0:
            raise ValueError(
                f"n_tokens={n_tokens}, l_memorize={l_memorize}, l_noise={l_noise}: need "
                "n_tokens >= 3 (blank, marker, one data token), l_memorize >= 1, l_noise >= 0"
            )
        self.n_tokens, self.l_noise, self.l_memorize = n_tokens, l_noise, l_memorize
        self.selective = selective
        self.vocab_size = self.d_input = self.d_output = n_tokens
        self.l_max = 2 * l_memorize + l_noise

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
        M, A = self.l_memorize, self.n_tokens
        tokens = torch.randint(1, A - 1, (n, M), generator=generator)  # (B, M)
        if self.selective:
            scores = torch.rand(n, M + self.l_noise, generator=generator)
            positions = scores.argsort(dim=-1)[:, :M].sort(dim=-1).values  # (B, M), distinct
        else:
            positions = torch.arange(M).expand(n, M)
        x = torch.zeros(n, self.l_max, dtype=torch.long)
        x.scatter_(1, positions, tokens)
        x[:, -M:] = A - 1
        y = torch.full((n, self.l_max), IGNORE_INDEX, dtype=torch.long)
        y[:, -M:] = tokens
        return x, y

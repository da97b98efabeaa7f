"""Induction heads (Olsson et al. 2022; H3 §3.1; safari `icl_synthetics`, induction_head).

Vocabulary of V = n_tokens ids: 0 … V−3 ordinary tokens, V−2 = trigger `=>`, V−1 = `.` (unused
here; kept so the vocabulary matches associative_recall.py and safari's 2 specials).
One example of l_seq ordinary tokens s_1 … s_{l_seq} (uniform), a position p ~ U{1 … l_seq−2}:
    s_p ← `=>`;  sequence = s_1 … s_{l_seq}, `=>`, s_{p+1}
i.e. after the second `=>` the model must recall the token that followed the first one.
LM pair: x = sequence[:-1], y = sequence[1:], both (B, l_seq + 1) int64. Train targets every
position (safari's next-token loss); val/test target only the last position (the answer) and hold
-100 elsewhere, so val/test accuracy is answer accuracy (chance 1/(V−2)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.data.synthetic.base import SyntheticDataModule, lm_targets


class InductionHeads(SyntheticDataModule):
    """Recall the token that followed the first trigger, when the trigger repeats at the end."""

    def __init__(
        self,
        n_tokens: int = 20,
        l_seq: int = 30,
        n_train: int = 5_000,
        n_val: int = 500,
        n_test: int = 500,
        batch_size: int = 32,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__(
            n_train, n_val, n_test, batch_size, batch_size_eval, num_workers, seed, track_test
        )
        if n_tokens < 3 or l_seq < 3:
            raise ValueError(f"n_tokens={n_tokens}, l_seq={l_seq}; both must be >= 3")
        self.n_tokens, self.l_seq = n_tokens, l_seq
        self.trigger = n_tokens - 2
        self.vocab_size = self.d_input = self.d_output = n_tokens
        self.l_max = l_seq + 1

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
        seq = torch.randint(0, self.n_tokens - 2, (n, self.l_seq), generator=generator)
        p = torch.randint(0, self.l_seq - 2, (n,), generator=generator)  # 0-based trigger index
        rows = torch.arange(n)
        answer = seq[rows, p + 1]  # (B,)
        seq[rows, p] = self.trigger
        trigger = torch.full((n, 1), self.trigger)
        example = torch.cat([seq, trigger, answer[:, None]], dim=1)  # (B, l_seq + 2)
        return lm_targets(example, answer_only=not train)

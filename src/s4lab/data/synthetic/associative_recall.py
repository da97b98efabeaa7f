"""Associative recall (Ba et al. 2016; H3; safari `icl_synthetics`, assoc_recall).

Vocabulary of V = n_tokens ids: R = V − 2 ordinary ids split into keys 0 … K−1 (K = R // 2) and
values K … R−1, then V−2 = `=>` and V−1 = `.` ("key absent").
Each example draws its own map f: keys → values (uniform), then P = l_seq // 2 pairs:
    sequence = k_1 f(k_1) … k_P f(k_P), `=>`, q, a
with k_i uniform keys and the answer a = f(q). With allow_dot = false (safari's default) q is
uniform over the keys present; with allow_dot = true q is uniform over all keys and a = `.` when
q is absent. LM pair: x = sequence[:-1], y = sequence[1:], both (B, 2P + 2) int64; train targets
every position (safari's next-token loss), val/test only the last one (-100 elsewhere), so their
accuracy is answer accuracy (chance 1/(R − K), or lower with allow_dot).
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.data.synthetic.base import SyntheticDataModule, lm_targets


class AssociativeRecall(SyntheticDataModule):
    """Read key-value pairs, then answer the value of a queried key."""

    def __init__(
        self,
        n_tokens: int = 20,
        l_seq: int = 40,
        allow_dot: bool = False,
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
        if n_tokens < 4 or l_seq < 2:
            raise ValueError(
                f"n_tokens={n_tokens}, l_seq={l_seq}; need n_tokens >= 4 (a key, a value, "
                "`=>`, `.`) and l_seq >= 2 (one pair)"
            )
        self.n_tokens, self.l_seq, self.allow_dot = n_tokens, l_seq, allow_dot
        self.n_keys = (n_tokens - 2) // 2
        self.trigger, self.dot = n_tokens - 2, n_tokens - 1
        self.vocab_size = self.d_input = self.d_output = n_tokens
        self.l_max = 2 * (l_seq // 2) + 2

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
        K, n_values, P = self.n_keys, self.n_tokens - 2 - self.n_keys, self.l_seq // 2
        f = torch.randint(0, n_values, (n, K), generator=generator) + K  # (B, K) key -> value
        keys = torch.randint(0, K, (n, P), generator=generator)  # (B, P)
        pairs = torch.stack([keys, f.gather(1, keys)], dim=-1).reshape(n, 2 * P)
        present = torch.zeros(n, K, dtype=torch.bool).scatter_(1, keys, True)  # (B, K)
        if self.allow_dot:
            q = torch.randint(0, K, (n,), generator=generator)
        else:  # uniform over the present keys: the largest of i.i.d. scores among them
            scores = torch.rand(n, K, generator=generator).masked_fill(~present, -1.0)
            q = scores.argmax(dim=-1)
        rows = torch.arange(n)
        answer = torch.where(present[rows, q], f[rows, q], self.dot)  # (B,)
        query = torch.stack([torch.full((n,), self.trigger), q, answer], dim=-1)  # (B, 3)
        example = torch.cat([pairs, query], dim=1)  # (B, 2P + 3)
        return lm_targets(example, answer_only=not train)

"""Two-document classification (LRA Retrieval): is document 2 cited by document 1?

Both documents go through the same backbone; with pooled features u, v (B, H) the head is
  logits = decoder(GELU(W [u, v, u − v, u ⊙ v]))
where `decoder` is the backbone's own output layer.
Batches are (x (B, 2, L), y (B,)) or with lengths (B, 2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from s4lab.tasks.classification import SequenceClassifier


class RetrievalClassifier(SequenceClassifier):
    """SequenceClassifier whose input is a pair of documents."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/acc",
        eval_rates: Sequence[int] = (1,),
    ) -> None:
        super().__init__(model, optimizer, scheduler, monitor, eval_rates)
        H = model.d_model
        self.nli = nn.Sequential(nn.Linear(4 * H, H), nn.GELU())

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: int = 1) -> Tensor:
        if x.dim() != 3 or x.shape[1] != 2:
            raise ValueError(f"retrieval expects x of shape (B, 2, L), got {tuple(x.shape)}")
        B = x.shape[0]
        flat_lengths = None if lengths is None else lengths.transpose(0, 1).reshape(2 * B)
        flat_x = x.transpose(0, 1).reshape(2 * B, -1)  # (2B, L): all first docs, then all second
        feats = self.model.features(flat_x, flat_lengths, rate)  # (2B, H)
        u, v = feats[:B], feats[B:]
        return self.model.decoder(self.nli(torch.cat([u, v, u - v, u * v], dim=-1)))

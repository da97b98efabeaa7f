"""Two-document classification (LRA Retrieval): is document 2 cited by document 1?

Both documents of each pair go through the same backbone as one batch of 2B sequences (all first
documents, then all second ones), and the head (RetrievalHead) pools both and classifies the pair:
    logits = head(model([x₁; x₂], [n₁; n₂]), [n₁; n₂])          (B, n_classes)
Batches are (x (B, 2, L), y (B,)) or with lengths (B, 2).
"""

from __future__ import annotations

from torch import Tensor

from s4lab.tasks.classification import SequenceClassifier


class RetrievalClassifier(SequenceClassifier):
    """SequenceClassifier whose input is a pair of documents; the head sees both."""

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, 2, L) token ids, lengths (B, 2) -> logits (B, n_classes)."""
        if x.dim() != 3 or x.shape[1] != 2:
            raise ValueError(f"retrieval expects x of shape (B, 2, L), got {tuple(x.shape)}")
        B = x.shape[0]
        flat_x = x.transpose(0, 1).reshape(2 * B, -1)  # (2B, L): all first docs, then all second
        flat_lengths = None if lengths is None else lengths.transpose(0, 1).reshape(2 * B)
        return self.head(self.model(flat_x, lengths=flat_lengths, rate=rate), flat_lengths)

    def subsample(self, x: Tensor, r: int) -> Tensor:
        """Every r-th step of both documents: x (B, 2, L) -> (B, 2, ⌈L / r⌉)."""
        return x[:, :, ::r]

"""Sequence classification: cross-entropy and accuracy, optionally at subsampled rates.

    logits = head(model(x, lengths, rate), lengths)      head: e.g. ClassificationHead (pool)
Batches are (x, y) or (x, y, lengths); lengths (B,) count the valid (unpadded) steps, which every
layer masks and the head pools over. For each r in `eval_rates` with r > 1, val/test also run on
x[:, ::r] with rate=r and log `{stage}/acc_rate{r}` (zero-shot resolution change, e.g.
16 kHz -> 8 kHz audio).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from s4lab.tasks.base import STAGES, SequenceTask

if TYPE_CHECKING:
    from s4lab.data.base import DataSizes


class SequenceClassifier(SequenceTask):
    """Logs {stage}/loss, {stage}/acc and, for val/test, {stage}/acc_rate{r}."""

    def __init__(
        self,
        model: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/acc",
        eval_rates: Sequence[int] = (1,),
    ) -> None:
        super().__init__(model, head, optimizer, scheduler, monitor)
        self.eval_rates = [int(r) for r in eval_rates]
        if any(r < 1 for r in self.eval_rates):
            raise ValueError(f"eval_rates must be positive integers, got {list(eval_rates)}")

    def build_metrics(self, sizes: DataSizes) -> None:
        n_classes = sizes.d_output
        self.metrics = nn.ModuleDict(
            {f"{stage}_acc": MulticlassAccuracy(n_classes, average="micro") for stage in STAGES}
            | {
                f"{stage}_acc_rate{r}": MulticlassAccuracy(n_classes, average="micro")
                for stage in STAGES[1:]
                for r in self.eval_rates
                if r > 1
            }
        )

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, d_input) or (B, L) ids, lengths (B,) -> logits (B, n_classes)."""
        return self.head(self.model(x, lengths=lengths, rate=rate), lengths)

    def shared_step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        lengths = batch[2] if len(batch) > 2 else None
        logits = self(x, lengths)
        loss = F.cross_entropy(logits, y)
        acc = self.metrics[f"{stage}_acc"]
        acc(logits, y)
        self.log_metric(f"{stage}/loss", loss, len(y))
        self.log_metric(f"{stage}/acc", acc, len(y))
        if stage != "train":
            for r in self.eval_rates:
                if r > 1:
                    self.eval_at_rate(x, y, lengths, r, stage)
        return loss

    def eval_at_rate(
        self, x: Tensor, y: Tensor, lengths: Tensor | None, r: int, stage: str
    ) -> None:
        """Accuracy on every r-th step of x, with the model told its sampling rate changed."""
        lengths_r = None if lengths is None else subsampled_lengths(lengths, r)
        logits = self(self.subsample(x, r), lengths_r, rate=r)
        acc = self.metrics[f"{stage}_acc_rate{r}"]
        acc(logits, y)
        self.log_metric(f"{stage}/acc_rate{r}", acc, len(y))

    def subsample(self, x: Tensor, r: int) -> Tensor:
        """Every r-th step: x (B, L, ...) -> (B, ⌈L / r⌉, ...)."""
        return x[:, ::r]


def subsampled_lengths(lengths: Tensor, r: int) -> Tensor:
    """Valid steps of x[:, ::r] for sequences of `lengths` valid steps: ⌈length / r⌉."""
    return torch.div(lengths + r - 1, r, rounding_mode="floor")

"""Sequence classification: cross-entropy and accuracy, optionally at subsampled rates.

Batches are (x, y) or (x, y, lengths); with lengths the model pools over valid positions only.
For each r in `eval_rates` with r > 1, val/test also run on x[:, ::r] with `model(x, rate=r)`
and log `{stage}/acc_rate{r}` (zero-shot resolution change, e.g. 16 kHz -> 8 kHz audio).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from s4lab.tasks.base import STAGES, SequenceTask


class SequenceClassifier(SequenceTask):
    """Logs {stage}/loss, {stage}/acc and, for val/test, {stage}/acc_rate{r}."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/acc",
        eval_rates: Sequence[int] = (1,),
    ) -> None:
        super().__init__(model, optimizer, scheduler, monitor)
        self.eval_rates = [int(r) for r in eval_rates]
        if any(r < 1 for r in self.eval_rates):
            raise ValueError(f"eval_rates must be positive integers, got {list(eval_rates)}")
        n_classes = model.decoder.out_features
        self.metrics = nn.ModuleDict(
            {f"{stage}_acc": MulticlassAccuracy(n_classes, average="micro") for stage in STAGES}
            | {
                f"{stage}_acc_rate{r}": MulticlassAccuracy(n_classes, average="micro")
                for stage in STAGES[1:]
                for r in self.eval_rates
                if r > 1
            }
        )

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: int = 1) -> Tensor:
        return self.model(x, lengths=lengths, rate=rate)  # (B, n_classes)

    def step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
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
        lengths_r = (
            None if lengths is None else torch.div(lengths + r - 1, r, rounding_mode="floor")
        )
        logits = self(x[:, ::r], lengths_r, rate=r)
        acc = self.metrics[f"{stage}_acc_rate{r}"]
        acc(logits, y)
        self.log_metric(f"{stage}/acc_rate{r}", acc, len(y))

"""Language modeling: next-token cross-entropy, perplexity, and bits per byte where it applies.

  loss = −(1/T) Σ_t log p(y_t | x_≤t)    (nats per token, averaged over all tokens of the epoch)
  ppl  = exp(loss)
  bpb  = loss / ln 2 / bytes_per_token    (when the datamodule defines `bytes_per_token`)
  acc  = fraction of targeted positions whose argmax is the target
Batches are (x, y), both (B, L) int64: y = x shifted by one, or per-position targets with
IGNORE_INDEX (-100) where nothing is scored (the synthetic tasks); the model has pool "none".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from s4lab.tasks.base import STAGES, SequenceTask

IGNORE_INDEX = -100  # targets with this value are not scored (F.cross_entropy's default)


class LanguageModel(SequenceTask):
    """Logs {stage}/loss per step or epoch and {stage}/ppl (+ {stage}/bpb) per epoch."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/loss",
    ) -> None:
        super().__init__(model, optimizer, scheduler, monitor)
        self.bytes_per_token: float | None = None
        self.nll = nn.ModuleDict({f"{stage}_nll": MeanMetric() for stage in STAGES})
        self.acc = nn.ModuleDict({f"{stage}_acc": MeanMetric() for stage in STAGES})

    def setup_data(self, data: Any) -> None:
        """Read `bytes_per_token` from the datamodule, if it has one (byte-level bpb)."""
        self.bytes_per_token = getattr(data, "bytes_per_token", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, L, vocab)

    def step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE_INDEX)
        scored = y != IGNORE_INDEX
        n = int(scored.sum())
        self.nll[f"{stage}_nll"].update(loss.detach(), weight=n)
        correct = (logits.argmax(-1) == y)[scored].float()
        self.acc[f"{stage}_acc"].update(correct.mean(), weight=n)
        self.log_metric(f"{stage}/loss", loss, n)
        return loss

    def log_epoch(self) -> None:
        """Turn each stage's token-weighted mean NLL into ppl (and bpb)."""
        for stage in STAGES:
            metric = self.nll[f"{stage}_nll"]
            if metric.update_count == 0:
                continue
            nll = metric.compute()
            self.log(f"{stage}/ppl", torch.exp(nll), add_dataloader_idx=False)
            acc = self.acc[f"{stage}_acc"]
            self.log(f"{stage}/acc", acc.compute(), add_dataloader_idx=False)
            acc.reset()
            if self.bytes_per_token:
                bpb = nll / math.log(2) / self.bytes_per_token
                self.log(f"{stage}/bpb", bpb, add_dataloader_idx=False)
            metric.reset()

    def on_train_epoch_end(self) -> None:
        self.log_epoch()

    def on_validation_epoch_end(self) -> None:
        self.log_epoch()

    def on_test_epoch_end(self) -> None:
        self.log_epoch()

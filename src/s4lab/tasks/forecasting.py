"""Forecasting: MSE loss on the normalized scale; MSE and MAE on the normalized and original scale.

  ŷ = head(model(x))[:, −horizon:]    x: (B, L_in + horizon, d_input) with the targets zeroed;
                                      horizon = the targets' length, head: per position (LinearHead)
  original scale: ŷ·σ + μ, y·σ + μ    (μ, σ: the datamodule's train-only scaler of the targets)
Batches are (x, y) with y (B, horizon, d_output).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from s4lab.tasks.base import STAGES, SequenceTask

if TYPE_CHECKING:
    from s4lab.data.base import DataSizes


class Forecaster(SequenceTask):
    """Logs {stage}/loss, {stage}/mse, {stage}/mae, {stage}/mse_orig, {stage}/mae_orig."""

    def __init__(
        self,
        model: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/mse",
    ) -> None:
        super().__init__(model, head, optimizer, scheduler, monitor)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}{scale}": metric()
                for stage in STAGES
                for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
                for scale in ("", "_orig")
            }
        )

    def build_metrics(self, sizes: DataSizes) -> None:
        """The target scaler μ, σ (d_output,): identity until `setup_data`; saved with weights."""
        self.register_buffer("mean", torch.zeros(sizes.d_output))
        self.register_buffer("std", torch.ones(sizes.d_output))

    def setup_data(self, data: Any) -> None:
        """Take the target scaler (mean, std: (d_output,)) from the datamodule."""
        self.mean.copy_(torch.as_tensor(data.mean, dtype=torch.float32).reshape(-1))
        self.std.copy_(torch.as_tensor(data.std, dtype=torch.float32).reshape(-1))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, d_input) -> predictions at every position (B, L, d_output), normalized."""
        return self.head(self.model(x))

    def shared_step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        y_hat = self(x)[:, -y.shape[1] :].float()  # (B, horizon, d_output)
        loss = F.mse_loss(y_hat, y)
        self.log_metric(f"{stage}/loss", loss, len(y))
        pairs = {"": (y_hat, y), "_orig": (y_hat * self.std + self.mean, y * self.std + self.mean)}
        for scale, (pred, target) in pairs.items():
            for name in ("mse", "mae"):
                metric = self.metrics[f"{stage}_{name}{scale}"]
                metric(pred.reshape(-1), target.reshape(-1))
                self.log_metric(f"{stage}/{name}{scale}", metric, len(y))
        return loss

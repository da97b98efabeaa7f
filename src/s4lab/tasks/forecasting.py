"""Forecasting: MSE loss on the normalized scale; MSE and MAE on the normalized and original scale.

  ŷ = model(x)[:, −horizon:]          x: (B, L_in + horizon, d_input) with the targets zeroed
  original scale: ŷ·σ + μ, y·σ + μ    (μ, σ: the datamodule's train-only scaler of the targets)
Batches are (x, y) with y (B, horizon, d_output); the model has pool "none".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from s4lab.tasks.base import STAGES, SequenceTask


class Forecaster(SequenceTask):
    """Logs {stage}/loss, {stage}/mse, {stage}/mae, {stage}/mse_orig, {stage}/mae_orig."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/mse",
    ) -> None:
        super().__init__(model, optimizer, scheduler, monitor)
        d_output = model.decoder.out_features
        self.horizon: int | None = None
        self.register_buffer("mean", torch.zeros(d_output))
        self.register_buffer("std", torch.ones(d_output))
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}{scale}": metric()
                for stage in STAGES
                for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
                for scale in ("", "_orig")
            }
        )

    def setup_data(self, data: Any) -> None:
        """Take the horizon and the target scaler (mean, std: (d_output,)) from the datamodule."""
        self.horizon = int(data.horizon)
        self.mean.copy_(torch.as_tensor(data.mean, dtype=torch.float32).reshape(-1))
        self.std.copy_(torch.as_tensor(data.std, dtype=torch.float32).reshape(-1))

    def forward(self, x: Tensor) -> Tensor:
        if self.horizon is None:
            raise RuntimeError("Forecaster.setup_data(datamodule) must set the horizon first")
        return self.model(x)[:, -self.horizon :]  # (B, horizon, d_output)

    def step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        y_hat = self(x).float()
        loss = F.mse_loss(y_hat, y)
        self.log_metric(f"{stage}/loss", loss, len(y))
        pairs = {"": (y_hat, y), "_orig": (y_hat * self.std + self.mean, y * self.std + self.mean)}
        for scale, (pred, target) in pairs.items():
            for name in ("mse", "mae"):
                metric = self.metrics[f"{stage}_{name}{scale}"]
                metric(pred.reshape(-1), target.reshape(-1))
                self.log_metric(f"{stage}/{name}{scale}", metric, len(y))
        return loss

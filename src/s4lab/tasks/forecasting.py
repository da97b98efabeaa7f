"""Forecasting: MSE loss on the normalized scale; MSE and MAE on the normalized and original scale.

  ŷ = head(model(x))[:, −horizon:]    x: (B, L_in + horizon, d_input) with the targets zeroed;
                                      horizon = the targets' length, head: per position (LinearHead)
  norm "last": with x_last = x[:, L_in − 1, :d_data] (each series' last context value),
      ŷ = head(model(x − x_last on the context rows))[:, −horizon:] + x_last[targets]
    so the network forecasts the change from the last value, and the zeroed future rows read
    "no change" (ours, as NLinear's subtraction, Zeng et al. 2023; the official S4 task has
    multiplicative `mean`/`last` scalings instead, which divide by values near 0 here).
  original scale: ŷ·σ + μ, y·σ + μ    (μ, σ: the datamodule's train-only scaler of the targets)
Batches are (x, y) with y (B, horizon, d_output); the first d_data input columns are the series
(the rest are time features), and `target_columns` says which of them are the targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

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
        norm: Literal["none", "last"] = "none",
    ) -> None:
        super().__init__(model, head, optimizer, scheduler, monitor)
        if norm not in ("none", "last"):
            raise ValueError(f"task.norm must be 'none' or 'last', got {norm!r}")
        self.norm = norm
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}{scale}": metric()
                for stage in STAGES
                for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
                for scale in ("", "_orig")
            }
        )

    def build_metrics(self, sizes: DataSizes) -> None:
        """The target scaler μ, σ (d_output,) and the target columns: identity until
        `setup_data`; saved with the weights (d_data as extra state), so a loaded checkpoint
        forecasts alone."""
        self.register_buffer("mean", torch.zeros(sizes.d_output))
        self.register_buffer("std", torch.ones(sizes.d_output))
        self.register_buffer("target_columns", torch.arange(sizes.d_output))
        self.d_data = sizes.d_output  # series columns of x (a Python int: no device sync)

    def setup_data(self, data: Any) -> None:
        """Take the target scaler (mean, std: (d_output,)) and, where the datamodule names them,
        the target columns among the series columns of x (default: the first d_output)."""
        self.mean.copy_(torch.as_tensor(data.mean, dtype=torch.float32).reshape(-1))
        self.std.copy_(torch.as_tensor(data.std, dtype=torch.float32).reshape(-1))
        columns = getattr(data, "target_columns", None)
        if columns is not None:
            self.target_columns.copy_(torch.as_tensor(columns).reshape(-1))
        self.d_data = int(getattr(data, "d_data", self.d_data))

    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor(self.d_data)  # a CPU tensor, like every other state_dict entry

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.d_data = int(state)

    def forward(self, x: Tensor, horizon: int) -> Tensor:
        """x (B, L_in + horizon, d_input) -> the forecast (B, horizon, d_output), normalized."""
        if self.norm == "none":
            return self.head(self.model(x))[:, -horizon:]
        L_in = x.shape[1] - horizon
        if L_in < 1:
            raise ValueError(f"norm=last needs a context row; got L = horizon = {horizon}")
        last = x[:, L_in - 1 : L_in, : self.d_data]  # (B, 1, d_data)
        shift = torch.zeros_like(x)
        shift[:, :L_in, : self.d_data] = last
        y_hat = self.head(self.model(x - shift))[:, -horizon:]
        return y_hat + last[..., self.target_columns]

    def shared_step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        y_hat = self(x, y.shape[1]).float()  # (B, horizon, d_output)
        loss = F.mse_loss(y_hat, y)
        self.log_metric(f"{stage}/loss", loss, len(y))
        pairs = {"": (y_hat, y), "_orig": (y_hat * self.std + self.mean, y * self.std + self.mean)}
        for scale, (pred, target) in pairs.items():
            for name in ("mse", "mae"):
                metric = self.metrics[f"{stage}_{name}{scale}"]
                metric(pred.reshape(-1), target.reshape(-1))
                self.log_metric(f"{stage}/{name}{scale}", metric, len(y))
        return loss

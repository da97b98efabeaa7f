"""What every task shares: the model, the optimizer with parameter groups, and the LR schedule.

Validation runs on one or two loaders: index 0 is the validation split ("val/*"), index 1, when
given, is the test split tracked every epoch ("test/*"), as in the paper's protocol.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from pytorch_lightning import LightningModule
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from s4lab.optim import param_groups, print_param_groups

STAGES = ("train", "val", "test")


class SequenceTask(LightningModule):
    """Base LightningModule: subclasses implement `step(batch, stage) -> loss` and log metrics."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/loss",
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.monitor = monitor

    def setup_data(self, data: Any) -> None:
        """Read dataset facts the task needs (e.g. a scaler) from the set-up datamodule."""

    def step(self, batch: Any, stage: str) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement step(batch, stage)")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.step(batch, STAGES[1 + dataloader_idx])

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "test")

    def log_metric(self, name: str, value: Any, batch_size: int) -> None:
        """Log `{stage}/{name}`: per step for training, epoch means for val/test."""
        per_step = name.startswith("train/")
        self.log(
            name,
            value,
            on_step=per_step,
            on_epoch=not per_step,
            prog_bar=name.endswith(("/loss", "/acc")),
            batch_size=batch_size,
            add_dataloader_idx=False,
            sync_dist=not per_step,
        )

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(param_groups(self))
        if self.trainer.is_global_zero:
            print_param_groups(optimizer)
        if self.scheduler_factory is None:
            return optimizer
        factory = self.scheduler_factory
        if (
            isinstance(factory, functools.partial)
            and factory.keywords.get("num_training_steps", 0) is None
        ):  # null in YAML: schedule over the whole run
            steps = int(self.trainer.estimated_stepping_batches)
            factory = functools.partial(factory, num_training_steps=steps)
        scheduler = factory(optimizer)
        if isinstance(scheduler, ReduceLROnPlateau):
            config = {"scheduler": scheduler, "interval": "epoch", "monitor": self.monitor}
        else:
            config = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": config}

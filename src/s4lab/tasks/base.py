"""What every task shares: building the backbone and head from the data sizes, the stage loop,
logging, the checkpointed build facts, the optimizer with parameter groups, and the LR schedule.

    outputs = head(model(x, lengths, rate), lengths)       model: features (B, L, H)
The task gets the backbone and the head as partials; `build(sizes)` (Lightning calls it through
`configure_model`, with the datamodule's sizes) creates them and the size-dependent metrics,
and the checkpoint stores the sizes and the run's config under "s4lab" so `s4lab.load` can
rebuild the task. Validation runs on one or two loaders: index 0 is the validation split
("val/*"), index 1, when given, is the test split tracked every epoch ("test/*"), as in the
paper's protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from pytorch_lightning import LightningModule
from torch import nn

from s4lab.optim import optimizer_config

if TYPE_CHECKING:
    from s4lab.data.base import DataSizes

STAGES = ("train", "val", "test")
CHECKPOINT_KEY = "s4lab"  # checkpoint["s4lab"] = {"sizes": {...}, "config": {...} | None}


class SequenceTask(LightningModule):
    """Base LightningModule: subclasses implement `shared_step(batch, stage) -> loss` and log.

    `model` builds the backbone as model(d_input=, l_max=, vocab_size=); `head` builds the head
    as head(d_model=, d_output=). Both are called once, in `build(sizes)`.
    """

    def __init__(
        self,
        model: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/loss",
    ) -> None:
        super().__init__()
        self.model_factory, self.head_factory = model, head
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.monitor = monitor
        self.sizes: DataSizes | None = None
        self.run_config: dict[str, Any] | None = None  # set by train.py; saved in checkpoints

    def build(self, sizes: DataSizes) -> None:
        """Create the backbone, the head and the size-dependent metrics; later calls are no-ops.

        A second call with other sizes fails: the built model cannot take that data.
        """
        if self.sizes is not None:
            if _as_dict(sizes) != _as_dict(self.sizes):
                raise ValueError(
                    f"{type(self).__name__} was built for sizes {_as_dict(self.sizes)}, "
                    f"got {_as_dict(sizes)}"
                )
            return
        self.model = self.model_factory(
            d_input=sizes.d_input, l_max=sizes.l_max, vocab_size=sizes.vocab_size
        )
        self.head = self.head_factory(d_model=self.model.d_model, d_output=sizes.d_output)
        self.build_metrics(sizes)
        self.sizes = sizes

    def build_metrics(self, sizes: DataSizes) -> None:
        """Create metrics that depend on the sizes (e.g. the number of classes)."""

    def configure_model(self) -> None:
        """Lightning hook: build from the datamodule's sizes, then read its other facts."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            if self.sizes is None:
                raise RuntimeError(
                    f"{type(self).__name__} has no model yet: pass datamodule= to the trainer, "
                    "or call task.build(sizes) first"
                )
            return
        self.build(datamodule.sizes)
        self.setup_data(datamodule)

    def setup_data(self, data: Any) -> None:
        """Read facts the task needs beyond the sizes (e.g. a scaler) from the datamodule."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"sizes": _as_dict(self.sizes), "config": self.run_config}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get(CHECKPOINT_KEY, {}).get("sizes")
        if stored is not None and self.sizes is not None and stored != _as_dict(self.sizes):
            raise ValueError(
                f"checkpoint was saved for data sizes {stored}, but this task was built for "
                f"{_as_dict(self.sizes)}"
            )

    def shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement shared_step(batch, stage)")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.shared_step(batch, STAGES[1 + dataloader_idx])

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "test")

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
        """The optimizer over our parameter groups; a StepSchedule spans the run's steps."""
        return optimizer_config(self, self.optimizer_factory, self.scheduler_factory, self.monitor)


def _as_dict(sizes: Any) -> dict[str, Any] | None:
    """DataSizes (a dataclass) as a plain dict, for comparison and checkpoints."""
    return None if sizes is None else dataclasses.asdict(sizes)

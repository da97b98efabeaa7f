"""Callbacks that Lightning does not ship: epoch seeding, epoch timing, and the NaN guard."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer, seed_everything


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step and the checkpoint."""


class EpochSeed(Callback):
    """Reseed torch/numpy/random from (seed, epoch, rank) before each epoch's first training batch.

    Dropout masks then depend only on the epoch, so a run resumed from an epoch-end checkpoint
    draws exactly the numbers an uninterrupted run would. (Lightning skips on_train_epoch_start
    for the first epoch after such a resume, hence the batch hook.)
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 0:
            epoch_seed = self.seed + 1000 * trainer.current_epoch + trainer.global_rank
            seed_everything(epoch_seed, verbose=False)  # DDP ranks draw different dropout masks


class EpochTimer(Callback):
    """Log `time/epoch_s` (train + val wall time) and `time/samples_per_s` (training throughput)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.samples = 0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start, self.samples = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.samples += len(batch[0])

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        seconds = time.perf_counter() - self.start
        pl_module.log("time/epoch_s", seconds)
        pl_module.log("time/samples_per_s", self.samples * trainer.world_size / seconds)


class NaNGuard(Callback):
    """Stop at the first non-finite training loss, before it reaches the weights.

    Raises NonFiniteLossError from `on_before_backward`, so no optimizer step and no checkpoint
    happen after the bad loss: the last checkpoint on disk is the last good state.
    """

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss).all())
        # every DDP rank must stop together: one rank raising alone leaves the others waiting
        if not trainer.strategy.reduce_boolean_decision(not finite, all=False):
            return
        saved = sorted(
            {cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.best_model_path}
        )
        kept = ", ".join(saved) or "none saved yet"
        value = loss.detach().float().item() if loss.numel() == 1 else math.nan
        raise NonFiniteLossError(
            f"Non-finite training loss ({value}) at global step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}); the run stopped before this step's update. "
            f"Checkpoints kept (all from before this step): {kept}. "
            "Lower optimizer.lr, set trainer.gradient_clip_val, or use trainer.precision=32-true."
        )

"""Optimizer parameter groups from per-parameter hints, and learning-rate schedules.

Groups: a parameter's `_optim` dict (set by the layer, e.g. {"lr": 1e-3, "weight_decay": 0.0}
for SSM parameters) wins; biases, norm weights and nn.Embedding tables get weight_decay 0; the
rest use the optimizer's defaults (the adaptive input and softmax included: the official WT103
run decays them too). One group per distinct set of hints.
Schedules at optimizer step t = 0, 1, ... of a run of T steps, W warmup steps (the official
cosine_warmup and constant_warmup, from transformers' get_*_schedule_with_warmup):
  cosine_warmup:   lr·t/W for t < W, then lr·½(1 + cos(π(t − W)/(T − W))); 0 from T on
  constant_warmup: lr·t/W for t < W, then lr
  rsqrt_warmup:    lr·t/W for t < W, then lr·√(W/t); W = 0: lr/√max(t, 1) (LRA's
                   constant·linear_warmup·rsqrt_decay with base rate lr·√W,
                   google-research/long-range-arena utils/train_utils.py)
  plateau:         torch's ReduceLROnPlateau, once per epoch: lr·factor as soon as more than
                   `patience` epochs in a row have not improved the monitored metric
Deliberate difference: the official cosine climbs back after T; ours stays at 0.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from pytorch_lightning import LightningModule
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.modules.batchnorm._BatchNorm)


def param_hints(module: nn.Module, name: str, param: nn.Parameter) -> dict[str, Any]:
    """The optimizer hints for one parameter (see the module docstring for the rules)."""
    if hasattr(param, "_optim"):
        return dict(param._optim)
    if name == "bias" or isinstance(module, NO_DECAY_MODULES):
        return {"weight_decay": 0.0}
    return {}


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Split trainable parameters into groups, one per distinct hint dict (default group first)."""
    groups: dict[tuple, dict[str, Any]] = {(): {"params": [], "names": []}}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            hints = param_hints(module, name, param)
            key = tuple(sorted(hints.items()))
            group = groups.setdefault(key, {"params": [], "names": [], **hints})
            group["params"].append(param)
            group["names"].append(f"{module_name}.{name}".lstrip("."))
    return [g for g in groups.values() if g["params"]]


def print_param_groups(optimizer: Optimizer) -> None:
    """Print one row per optimizer group: its lr, weight decay, size and its parameter names."""
    table = Table(title="Optimizer parameter groups")
    for column in ("group", "lr", "weight_decay", "tensors", "parameters", "names"):
        table.add_column(column)
    for i, group in enumerate(optimizer.param_groups):
        leaves = dict.fromkeys(name.rsplit(".", 1)[-1] for name in group.get("names", []))
        examples = ", ".join(leaves)  # e.g. "weight, D" or "log_dt, A_imag, P, B"
        table.add_row(
            str(i),
            f"{group['lr']:.3g}",
            f"{group.get('weight_decay', 0.0):.3g}",
            str(len(group["params"])),
            f"{sum(p.numel() for p in group['params']):,}",
            examples,
        )
    Console().print(table)


class StepSchedule(ABC):
    """A schedule stepped after every optimizer step; it is built knowing the run's length.

    Config keys are the constructor's arguments; the task then calls `schedule(optimizer,
    num_steps)` with the run's optimizer-step count (see `optimizer_config`).
    """

    @abstractmethod
    def __call__(self, optimizer: Optimizer, num_steps: int | float) -> LRScheduler:
        """The scheduler for a run of `num_steps` optimizer steps (math.inf: no step limit)."""


def run_warmup(num_warmup_steps: int, num_steps: int | float) -> int:
    """W, or N − 1 with a warning when the run's N optimizer steps are not more than W (debug runs).

    The shortened warmup still reaches the full lr, at the run's last step.
    """
    if num_steps > num_warmup_steps:
        return num_warmup_steps
    warnings.warn(
        f"the run has {num_steps} optimizer steps, not more than scheduler.num_warmup_steps"
        f" ({num_warmup_steps}): warming up over {max(num_steps - 1, 0)} steps instead",
        stacklevel=3,
    )
    return max(int(num_steps) - 1, 0)


class WarmupFactor:
    """The constant_warmup factor at step t: t/W for t < W, then 1."""

    def __init__(self, num_warmup_steps: int) -> None:
        self.W = num_warmup_steps

    def __call__(self, t: int) -> float:
        return t / self.W if t < self.W else 1.0


class RsqrtWarmupFactor:
    """t/W during warmup, then the inverse square root decay √(W/t)."""

    def __init__(self, num_warmup_steps: int) -> None:
        self.W = num_warmup_steps

    def __call__(self, t: int) -> float:
        if t < self.W:
            return t / self.W
        return math.sqrt(max(self.W, 1) / max(t, 1))  # W = 0: 1/√t from the first step


class CosineWarmupFactor:
    """The cosine_warmup factor at step t; 0 from step T on (a run longer than T stays at 0)."""

    def __init__(self, num_warmup_steps: int, num_training_steps: int) -> None:
        self.W, self.T = num_warmup_steps, num_training_steps

    def __call__(self, t: int) -> float:
        if t < self.W:
            return t / self.W
        return 0.5 * (1 + math.cos(math.pi * min(t - self.W, self.T - self.W) / (self.T - self.W)))


class CosineWarmup(StepSchedule):
    """Linear warmup over `num_warmup_steps`, then cosine decay to 0 at `num_training_steps`.

    `num_training_steps: null` decays over the whole run (its optimizer steps, T = num_steps).
    """

    def __init__(self, num_warmup_steps: int = 0, num_training_steps: int | None = None) -> None:
        if num_warmup_steps < 0:
            raise ValueError(f"scheduler.num_warmup_steps must be >= 0, got {num_warmup_steps}")
        if num_training_steps is not None and num_training_steps <= num_warmup_steps:
            raise ValueError(
                f"scheduler.num_training_steps ({num_training_steps}) must be larger than"
                f" scheduler.num_warmup_steps ({num_warmup_steps}), or null for the whole run"
            )
        self.num_warmup_steps, self.num_training_steps = num_warmup_steps, num_training_steps

    def __call__(self, optimizer: Optimizer, num_steps: int | float) -> LambdaLR:
        T = self.num_training_steps
        if T is None:
            if not 0 < num_steps < math.inf:
                raise ValueError(
                    "scheduler.num_training_steps is null (the whole run), but the run has"
                    f" {num_steps} optimizer steps: set trainer.max_epochs or trainer.max_steps,"
                    " or scheduler.num_training_steps"
                )
            T = int(num_steps)
        W = run_warmup(self.num_warmup_steps, num_steps)
        return LambdaLR(optimizer, CosineWarmupFactor(W, T))


class ConstantWarmup(StepSchedule):
    """Linear warmup over `num_warmup_steps`, then the base learning rate."""

    def __init__(self, num_warmup_steps: int) -> None:
        if num_warmup_steps < 0:
            raise ValueError(f"scheduler.num_warmup_steps must be >= 0, got {num_warmup_steps}")
        self.num_warmup_steps = num_warmup_steps

    def __call__(self, optimizer: Optimizer, num_steps: int | float) -> LambdaLR:
        return LambdaLR(optimizer, WarmupFactor(run_warmup(self.num_warmup_steps, num_steps)))


class RsqrtWarmup(ConstantWarmup):
    """Linear warmup over `num_warmup_steps` to the base lr, then lr·√(W/t) (LRA Transformers).

    The factor depends on t and W only, so a run shorter than W ends inside the warmup (LRA's
    AAN run: 5,000 steps of an 8,000-step warmup) instead of shortening it.
    """

    def __call__(self, optimizer: Optimizer, num_steps: int | float) -> LambdaLR:
        return LambdaLR(optimizer, RsqrtWarmupFactor(self.num_warmup_steps))


def optimizer_config(
    module: LightningModule,
    optimizer: Callable[[list[dict[str, Any]]], Optimizer],
    scheduler: StepSchedule | Callable[[Optimizer], Any] | None,
    monitor: str,
) -> Optimizer | dict[str, Any]:
    """What `configure_optimizers` returns: the optimizer over `param_groups` and its schedule.

    A StepSchedule gets the run's optimizer steps, trainer.estimated_stepping_batches (epochs x
    batches per device / accumulate_grad_batches), and steps after every optimizer step. Any other
    scheduler is a torch `_partial_` stepped once per epoch; ReduceLROnPlateau watches `monitor`.
    """
    built = optimizer(param_groups(module))
    if module.trainer.is_global_zero:
        print_param_groups(built)
    if scheduler is None:
        return built
    if isinstance(scheduler, StepSchedule):
        num_steps = module.trainer.estimated_stepping_batches
        lr_scheduler = {"scheduler": scheduler(built, num_steps), "interval": "step"}
    else:
        lr_scheduler = {"scheduler": scheduler(built), "interval": "epoch", "monitor": monitor}
    return {"optimizer": built, "lr_scheduler": lr_scheduler}

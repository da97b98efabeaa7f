"""Optimizer parameter groups from per-parameter hints, and learning-rate schedules.

Groups: a parameter's `_optim` dict (set by the layer, e.g. {"lr": 1e-3, "weight_decay": 0.0}
for SSM parameters) wins; biases, norm weights and embeddings get weight_decay 0; the rest use
the optimizer's defaults. One group per distinct set of hints.
Schedules (all per optimizer step), built from torch.optim.lr_scheduler:
  cosine_warmup:   lr·(t+1)/W for t < W, then lr·½(1 + cos(π(t − W)/(T − W))), 0 after T
  constant_warmup: lr·(t+1)/W for t < W, then lr
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.optim.lr_scheduler import ConstantLR, LambdaLR, LinearLR, LRScheduler

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


def print_param_groups(optimizer: torch.optim.Optimizer) -> None:
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


def warmup_linear(optimizer: torch.optim.Optimizer, num_warmup_steps: int) -> LinearLR:
    """Factor (t+1)/W at step t: the full lr at step W − 1."""
    W = num_warmup_steps
    return LinearLR(optimizer, 1.0 / W, 1.0, total_iters=max(W - 1, 1))


class WarmupCosine:
    """The cosine_warmup factor at step t; 0 from step T on (a run longer than T stays at 0)."""

    def __init__(self, num_warmup_steps: int, num_training_steps: int) -> None:
        self.W, self.T = num_warmup_steps, num_training_steps

    def __call__(self, t: int) -> float:
        if t < self.W:
            return (t + 1) / self.W
        return 0.5 * (1 + math.cos(math.pi * min(t - self.W, self.T - self.W) / (self.T - self.W)))


def cosine_warmup(
    optimizer: torch.optim.Optimizer, num_warmup_steps: int, num_training_steps: int
) -> LambdaLR:
    """Linear warmup over `num_warmup_steps`, then cosine decay to 0 at `num_training_steps`.

    A run with no more steps than the warmup (debug=fdr, debug=limit) shortens the warmup to
    T − 1 steps, with a warning, instead of failing.
    """
    if num_training_steps < 1:
        raise ValueError(f"num_training_steps must be positive, got {num_training_steps}")
    if num_training_steps <= num_warmup_steps:
        warnings.warn(
            f"num_training_steps ({num_training_steps}) <= num_warmup_steps ({num_warmup_steps}):"
            f" warming up over {num_training_steps - 1} steps instead",
            stacklevel=2,
        )
        num_warmup_steps = num_training_steps - 1
    return LambdaLR(optimizer, WarmupCosine(num_warmup_steps, num_training_steps))


def constant_warmup(optimizer: torch.optim.Optimizer, num_warmup_steps: int) -> LRScheduler:
    """Linear warmup over `num_warmup_steps`, then the base learning rate."""
    if num_warmup_steps == 0:
        return ConstantLR(optimizer, factor=1.0, total_iters=0)
    return warmup_linear(optimizer, num_warmup_steps)

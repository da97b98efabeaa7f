"""A finished run as a Python object: `s4lab.load(run_dir_or_ckpt)` -> the task with its model.

Next to Lightning's state, a checkpoint written by `train(cfg)` holds
    checkpoint["s4lab"] = {"sizes": DataSizes as a dict, "config": the run's resolved config}
(the task's `on_save_checkpoint` writes it). `load` builds the task from that config exactly as
`train` does (`build_task`), builds its model for those sizes, and loads the weights, so neither
the dataset nor the original config files are needed. A checkpoint whose weights do not fit the
model fails with `CheckpointMismatchError`, naming the file and the keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import LightningModule
from torch import Tensor, nn

from s4lab.data.base import DataSizes
from s4lab.tasks.base import CHECKPOINT_KEY

RUN_CHECKPOINTS = ("best.ckpt", "last.ckpt")  # looked up, in this order, under <run>/checkpoints
LISTED = 10  # keys listed per kind of mismatch


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model: the message names the file and the keys."""


def find_checkpoint(run_dir_or_ckpt: str | Path) -> Path:
    """The file itself, or a run directory's checkpoints/best.ckpt, else its last.ckpt."""
    path = Path(run_dir_or_ckpt)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(
            f"Checkpoint not found: {path} is neither a .ckpt file nor a run directory"
        )
    candidates = [path / "checkpoints" / name for name in RUN_CHECKPOINTS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"No checkpoint in the run directory {path}: looked for "
        + " and ".join(str(c) for c in candidates)
    )


def build_task(cfg: DictConfig) -> LightningModule:
    """The task of a composed config, with its backbone, head, optimizer and schedule factories.

    The model is built later, from the data sizes (`task.build`, or Lightning's configure_model).
    """
    schedule = cfg.get("scheduler")  # `~scheduler` may leave an experiment's keys, no _target_
    scheduler = hydra.utils.instantiate(schedule) if schedule and "_target_" in schedule else None
    return hydra.utils.instantiate(
        cfg.task,
        model=hydra.utils.instantiate(cfg.model, _partial_=True),
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        scheduler=scheduler,
    )


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:LISTED])
    return shown + (f", ... ({len(keys) - LISTED} more)" if len(keys) > LISTED else "")


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], path: str | Path) -> None:
    """Raise CheckpointMismatchError unless `state_dict` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"{path} does not match the model {type(model).__name__} built from the config:"]
    if missing:
        lines.append(f"  missing keys (in the model, not in the file): {_listing(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys (in the file, not in the model): {_listing(unexpected)}")
    if mismatched:
        lines.append(f"  mismatched shapes: {_listing(mismatched)}")
    lines.append("Was it saved by another experiment or model size? Pass the matching config.")
    raise CheckpointMismatchError("\n".join(lines))


@contextmanager
def named_mismatch(model: nn.Module, path: str | Path | None) -> Iterator[None]:
    """Inside the block, turn torch's strict-loading error for `path` into a
    CheckpointMismatchError that names the file (Lightning's own message does not)."""
    try:
        yield
    except RuntimeError as error:
        if path is None or "Error(s) in loading state_dict" not in str(error):
            raise
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        try:
            check_state_dict(model, state, path)
        except CheckpointMismatchError as mismatch:
            raise mismatch from error
        raise


def load(run_dir_or_ckpt: str | Path, map_location: Any = "cpu") -> LightningModule:
    """The trained task of a run directory or a .ckpt file, in eval mode, on `map_location`.

    A run directory resolves to checkpoints/best.ckpt, else checkpoints/last.ckpt. The task is
    built from the run's stored config and data sizes; `task.run_config` holds that config.
    """
    path = find_checkpoint(run_dir_or_ckpt)
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    stored = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not stored or not stored.get("config") or not stored.get("sizes"):
        raise CheckpointMismatchError(
            f"{path} has no checkpoint['{CHECKPOINT_KEY}'] with the run's config and data sizes; "
            "s4lab.load reads checkpoints written by train.py"
        )
    task = build_task(OmegaConf.create(stored["config"]))
    task.build(DataSizes(**stored["sizes"]))
    task.on_load_checkpoint(checkpoint)
    check_state_dict(task, checkpoint["state_dict"], path)
    task.load_state_dict(checkpoint["state_dict"])
    task.run_config = stored["config"]
    return task.to(map_location).eval()

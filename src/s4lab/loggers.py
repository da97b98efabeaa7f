"""Experiment loggers that never block: wandb goes offline when it cannot reach the service."""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path

import wandb
from pytorch_lightning.loggers import WandbLogger


def has_wandb_credentials() -> bool:
    """True when an API key is in WANDB_API_KEY or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(
    project: str,
    name: str,
    save_dir: str,
    tags: list[str] | None = None,
    group: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    init_timeout: float = 30.0,
    id: str | None = None,
) -> WandbLogger:
    """WandbLogger that runs offline without credentials (`wandb sync <run dir>` uploads later).

    mode: "online", "offline" or "disabled"; None reads WANDB_MODE, else online iff credentials.
    init_timeout bounds the wait for the service; if it cannot be reached, the run goes offline.
    id: continue that wandb run (with ckpt_path=last, so a resumed run keeps one dashboard).
    group, job_type: a table run's table name and row id (`python train.py -m table=<name>`).
    """
    mode = (
        mode or os.environ.get("WANDB_MODE") or ("online" if has_wandb_credentials() else "offline")
    )
    Path(save_dir).mkdir(parents=True, exist_ok=True)

    def make(mode: str) -> WandbLogger:
        return WandbLogger(
            project=project,
            name=name,
            save_dir=save_dir,
            tags=list(tags or []),
            group=group,
            job_type=job_type,
            offline=mode == "offline",
            mode=mode,
            settings=wandb.Settings(init_timeout=init_timeout),
            id=id,
            resume="allow" if id else None,
        )

    logger = make(mode)
    if mode != "online":
        return logger
    try:
        _ = logger.experiment  # start the run now: a dead service is found before training
    except wandb.errors.Error as error:
        warnings.warn(
            f"wandb could not start online ({error}); logging offline under {save_dir}/wandb, "
            "upload later with `wandb sync <that run folder>`",
            stacklevel=2,
        )
        logger = make("offline")
    return logger


def finish_wandb() -> None:
    """Close the active wandb run, so that the next job of a sweep starts a run of its own."""
    if wandb.run is not None:
        wandb.finish()

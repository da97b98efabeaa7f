"""Shared fixtures: compose the real training config the way `python train.py` would, and
`train_checked`, which runs train(cfg) and asserts that it really trained."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Callback, LightningModule, Trainer

from s4lab.train import train

# Tiny models gain nothing from intra-op threads, and on a shared CPU OpenMP threads stall
# each other badly (10x slower steps measured with 2 threads under load).
torch.set_num_threads(1)

# A model small enough that a training step takes milliseconds on one CPU core.
TINY = [
    "model.d_model=8",
    "model.n_layers=1",
    "model.layer.kernel.d_state=4",
    "trainer.accelerator=cpu",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root per test session (MNIST-1D is generated once, then read from its cache)."""
    return tmp_path_factory.mktemp("data")


def compose_config(data_dir: Path, output_dir: Path, *overrides: str) -> DictConfig:
    """The train config composed as `python train.py` would, reading data under data_dir and
    writing under output_dir."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        cfg = compose(
            "train",
            overrides=[f"paths.data_dir={data_dir}", f"paths.output_dir={output_dir}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # as in @hydra.main


@pytest.fixture
def compose_train(data_dir: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_train(*overrides) -> the resolved-ready train config, writing under tmp_path."""

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config(data_dir, output_dir or tmp_path, *overrides)

    return _compose


class ParameterProbe(Callback):
    """The trainable parameters as training starts (the model exists by then) and as it ends."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}

    @staticmethod
    def snapshot(module: LightningModule) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.before = self.snapshot(pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.after = self.snapshot(pl_module)


def train_checked(cfg: DictConfig, callbacks: Sequence[Callback] = ()) -> float:
    """train(cfg), asserting that it returned a finite metric, that training changed at least one
    parameter and left every parameter finite. A run stopped by a NaN loss fails the first."""
    probe = ParameterProbe()
    result = train(cfg, callbacks=[probe, *callbacks])
    assert result is not None and math.isfinite(result), f"train() returned {result}"
    assert probe.before and probe.after, "training never ran a step"
    changed = [n for n, p in probe.before.items() if not torch.equal(p, probe.after[n])]
    assert changed, "training changed no parameter"
    broken = [n for n, p in probe.after.items() if not torch.isfinite(p).all()]
    assert not broken, f"non-finite parameters after training: {broken}"
    return result

"""Shared fixtures: compose the real training config the way `python train.py` would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

# Tiny models gain nothing from intra-op threads, and on a shared CPU OpenMP threads stall
# each other badly (10x slower steps measured with 2 threads under load).
torch.set_num_threads(1)

# A model small enough that a training step takes milliseconds on one CPU core.
TINY = [
    "model.d_model=8",
    "model.n_layers=1",
    "model.layer.d_state=4",
    "trainer.accelerator=cpu",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root per test session (MNIST-1D is generated once, then read from its cache)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def compose_train(data_dir: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_train(*overrides) -> the resolved-ready train config, writing under tmp_path."""

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize(version_base="1.3", config_path="../configs"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.data_dir={data_dir}",
                    f"paths.output_dir={output_dir or tmp_path}",
                    *overrides,
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve
        return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # as in @hydra.main

    return _compose

"""Every experiment composes and builds its model; typos and unknown names fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from s4lab.train import check_experiment_args

CONFIGS = Path(__file__).parents[1] / "configs"
EXPERIMENTS = sorted(
    p.relative_to(CONFIGS / "experiment").with_suffix("").as_posix()
    for p in (CONFIGS / "experiment").rglob("*.yaml")
)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds_model(compose_train, experiment: str) -> None:
    """Dummy data sizes stand in for the datamodule (which may need downloaded data)."""
    cfg = compose_train(f"experiment={experiment}", "model.n_layers=1")
    assert cfg.data._target_ and cfg.task._target_ and cfg.trainer._target_
    model = instantiate(cfg.model, d_input=3, d_output=2, l_max=32, vocab_size=None)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_default_is_s4_on_mnist1d(compose_train) -> None:
    cfg = compose_train()
    assert cfg.name == "mnist1d/s4"
    assert cfg.data._target_ == "s4lab.data.mnist1d.MNIST1D"
    assert cfg.model.layer._target_ == "s4lab.models.block.S4Block" and cfg.model.layer.mode == "s4"


@pytest.mark.parametrize("override", ["model.d_modle=3", "trainer.max_epoch=3", "optimizer.lrr=1"])
def test_unknown_key_fails(compose_train, override: str) -> None:
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0].split(".")[-1]):
        compose_train(override)


def test_unknown_experiment_lists_the_available_ones() -> None:
    with pytest.raises(SystemExit, match="Available experiments:(.|\n)*mnist1d/s4"):
        check_experiment_args(["trainer.max_epochs=1", "experiment=no/such"], CONFIGS)
    check_experiment_args(["experiment=mnist1d/s4", "experiment=null"], CONFIGS)  # no error
    check_experiment_args(["experiment=glob(lra/*)"], CONFIGS)  # sweep syntax: Hydra's job


@pytest.mark.parametrize(
    "overrides",
    [
        ["debug=fdr"],
        ["debug=overfit"],
        ["debug=limit"],
        ["trainer=ddp"],
        ["logger=wandb"],
        ["logger=tensorboard"],
        ["callbacks=early_stopping"],
        ["scheduler=plateau"],
        ["scheduler=constant_warmup"],
        ["model=s4d"],
        ["hparams_search=mnist1d_optuna"],
        ["hydra/launcher=submitit_slurm"],
    ],
)
def test_option_groups_compose(compose_train, overrides: list[str]) -> None:
    cfg = compose_train(*overrides)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    model = instantiate(cfg.model, d_input=1, d_output=2, l_max=8, vocab_size=None)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_data_dir_follows_env(monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", "/somewhere/else")
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        cfg = compose("train")
    assert cfg.paths.data_dir == "/somewhere/else"
    assert cfg.data.data_dir == "/somewhere/else"

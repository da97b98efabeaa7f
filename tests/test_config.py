"""Every experiment composes, passes the config check and builds its model; typos, unknown names
and values of the wrong type fail clearly, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from s4lab.checkpoint import build_task
from s4lab.data.base import DataSizes
from s4lab.train import ConfigError, check_config, check_experiment_args, train

CONFIGS = Path(__file__).parents[1] / "configs"
EXPERIMENTS = sorted(
    p.relative_to(CONFIGS / "experiment").with_suffix("").as_posix()
    for p in (CONFIGS / "experiment").rglob("*.yaml")
)


SIZES = DataSizes(d_input=3, d_output=2, l_max=32, vocab_size=None)  # stand-in data sizes
WT103 = 267_735  # tokens: an adaptive embedding's cutoffs must fit in the vocabulary
TOKENS = DataSizes(d_input=1, d_output=WT103, l_max=32, vocab_size=WT103)


def build_model(cfg) -> int:
    """Parameters of the task built from cfg for stand-in sizes (no datamodule: no data needed)."""
    task = build_task(cfg)
    task.build(TOKENS if cfg.model.get("embedding") else SIZES)
    return sum(p.numel() for p in task.parameters())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_builds_model(compose_train, experiment: str) -> None:
    cfg = compose_train(f"experiment={experiment}", "model.n_layers=1")
    assert cfg.data._target_ and cfg.task._target_ and cfg.trainer._target_
    check_config(cfg)  # every key is an argument of its target, every value of its type
    assert build_model(cfg) > 0


def test_default_is_s4_on_mnist1d(compose_train) -> None:
    cfg = compose_train()
    assert cfg.name == "mnist1d/s4"
    assert cfg.data._target_ == "s4lab.data.mnist1d.MNIST1D"
    assert cfg.model.layer._target_ == "s4lab.models.block.S4Block"
    assert cfg.model.layer.kernel._target_ == "s4lab.models.s4.S4Kernel"


@pytest.mark.parametrize("override", ["model.d_modle=3", "trainer.max_epoch=3", "optimizer.lrr=1"])
def test_unknown_key_fails(compose_train, override: str) -> None:
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0].split(".")[-1]):
        compose_train(override)


def test_a_block_naming_an_unknown_layer_fails_by_name(compose_train) -> None:
    with pytest.raises(Exception, match=r"model/layer/fnn(.|\n)*Available options(.|\n)*ffn"):
        compose_train("model/layer=s4s4ff", "+model/layer@model.layer.extra=fnn")
    with pytest.raises(ConfigCompositionException, match="s4_3"):
        compose_train("model/layer=s4s4ff", "model.layer.s4_3.dropout=0.1")


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
        ["model/layer=s4s4ff"],
        ["model/layer=transformer", "model/position=sinusoidal"],
        ["model/layer=performer_ffn", "model/position=learned"],
        ["model/layer=linear_attention_ffn"],
        ["scheduler=rsqrt_warmup", "optimizer=sgd"],
        ["hparams_search=mnist1d_optuna"],
        ["hydra/launcher=submitit_slurm"],
    ],
)
def test_option_groups_compose(compose_train, overrides: list[str]) -> None:
    cfg = compose_train(*overrides)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    check_config(cfg)
    assert build_model(cfg) > 0


def test_data_dir_follows_env(monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", "/somewhere/else")
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        cfg = compose("train")
    assert cfg.paths.data_dir == "/somewhere/else"
    assert cfg.data.data_dir == "/somewhere/else/mnist1d"


def test_every_data_dir_is_the_dataset_folder() -> None:
    """One rule for data_dir in every configs/data yaml: the dataset's own folder."""
    for path in sorted((CONFIGS / "data").rglob("*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(path))  # unresolved: ${...} stay text
        if "data_dir" in cfg:  # generated datasets read no files
            folder = cfg["data_dir"]
            assert folder.startswith("${paths.data_dir}/") and folder.count("/") == 1, path
        assert cfg["num_workers"] is None and cfg["track_test"] == "${track_test}", path


KERNEL = r"model\.layer\.kernel"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=abc", r"optimizer\.lr: expected float \| torch\.Tensor, got 'abc' \(str\)"),
        ("model.d_model=abc", r"model\.d_model: expected int, got 'abc' \(str\)"),
        ("model.n_layers=2.5", r"model\.n_layers: expected int, got 2\.5 \(float\)"),
        ("model.layer.kernel.d_state=abc", KERNEL + r"\.d_state: expected int, got 'abc'"),
        ("model.layer.kernel.dt_min=[1]", KERNEL + r"\.dt_min: expected float, got \[1\]"),
        ("trainer.max_epochs=true", r"trainer\.max_epochs: expected (Optional\[int\]|int \| None)"),
        ("data.track_test=maybe", r"data\.track_test: expected bool, got 'maybe'"),
        ("train=maybe", r"train: expected bool, got 'maybe' \(str\)"),
        ("+optimizer.lrr=1", r"optimizer\.lrr: \S+AdamW takes no argument 'lrr' \(did you mean lr"),
        (
            "model.layer.kernel.dt_transform=tanh",
            KERNEL + r"\.dt_transform: expected Literal\['exp', 'softplus'\], got 'tanh'",
        ),
        ("task.head.pool=max", r"task\.head\.pool: expected Literal\['mean', 'last'\], got 'max'"),
    ],
)
def test_a_value_of_the_wrong_type_fails_before_anything_is_built(
    compose_train, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train(compose_train(override))

"""Every experiment follows one official code generation key for key (tests/official_hparams.py).

For each experiment the composed config is reduced to the table's keys (d_model, the SSM lr and
weight decay of each parameter group, the schedule, the seed, ...) and compared with the values
transcribed from the official file its header names. Compose only: no model or data is built.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from official_hparams import GROUPS, KEYS, OFFICIAL, OURS
from omegaconf import DictConfig, OmegaConf

CONFIGS = Path(__file__).parents[1] / "configs"
EXPERIMENT_DIR = CONFIGS / "experiment"
EXPERIMENTS = sorted(
    p.relative_to(EXPERIMENT_DIR).with_suffix("").as_posix() for p in EXPERIMENT_DIR.rglob("*.yaml")
)
GENERATION = re.compile(r"^# Generation: (\S+?)[,:]? (.*)$", re.M)
KERNEL_KEYS = (
    *("d_state", "init", "dt_min", "dt_max", "dt_transform", "real_transform", "real_tolerance"),
    *("B_clip", "rank", "deterministic"),
)
SCHEDULERS = {
    "s4lab.optim.CosineWarmup": "cosine",
    "torch.optim.lr_scheduler.ReduceLROnPlateau": "plateau",
}


@functools.cache
def compose_experiment(*overrides: str) -> DictConfig:
    """The train config for these overrides (read only: cached; ${hydra:...} left unresolved)."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        return compose("train", overrides=list(overrides))


def header(experiment: str) -> str:
    """The comment block at the top of the experiment file."""
    lines = (EXPERIMENT_DIR / f"{experiment}.yaml").read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, s in enumerate(lines) if s[:1] != "#")])


def ssm_groups(lr: Any, wd: Any) -> dict[str, dict[str, float | None]]:
    """Our kernel's per-group lr / wd (None: the optimizer's value), from its `lr`, `wd` options.

    A dict names its groups (configs/model/layer/kernel/s4.yaml); a scalar lr covers dt, A, B and
    C, a scalar wd covers dt, A, B (HEAD's rule, as the kernel config documents).
    """
    lr = OmegaConf.to_container(lr) if isinstance(lr, DictConfig) else lr
    wd = OmegaConf.to_container(wd) if isinstance(wd, DictConfig) else wd
    lrs = lr if isinstance(lr, dict) else dict.fromkeys(GROUPS, lr)
    wds = wd if isinstance(wd, dict) else {"A": wd, "B": wd, "dt": wd}
    return {"ssm_lr": {g: lrs.get(g) for g in GROUPS}, "ssm_wd": {g: wds.get(g) for g in GROUPS}}


def effective(groups: dict[str, float | None], global_value: float) -> dict[str, float]:
    """Per-group values, None replaced by the optimizer's global value."""
    return {g: global_value if v is None else v for g, v in groups.items()}


def scheduler_of(cfg: DictConfig) -> dict[str, Any]:
    schedule = cfg.get("scheduler")
    if not schedule or "_target_" not in schedule:
        return {"name": "constant"}
    name = SCHEDULERS[schedule._target_]
    if name == "cosine":
        return {
            "name": name,
            "warmup": schedule.num_warmup_steps,
            "total": schedule.num_training_steps,
        }
    return {"name": name, "patience": schedule.patience, "factor": schedule.factor}


def table_values(cfg: DictConfig) -> dict[str, Any]:
    """The composed config, reduced to the keys of the hyperparameter table."""
    model, layer = cfg.model, cfg.model.layer
    if "_target_" not in layer:  # a block of layers: its S4 layers hold the table's values
        s4_layers = [sub for sub in layer.values() if "kernel" in sub]
        assert all(sub == s4_layers[0] for sub in s4_layers), "the block's S4 layers differ"
        layer = s4_layers[0]
    kernel = layer.kernel
    head = cfg.task.get("head") or {}
    values = {
        "d_model": model.d_model,
        "n_layers": model.n_layers,
        "norm": model.norm,
        "prenorm": model.prenorm,
        "dropout": model.dropout,
        "layer_dropout": layer.dropout,
        "bidirectional": layer.bidirectional,
        "activation": layer.activation,
        "final_act": layer.final_act,
        "lr": cfg.optimizer.lr,
        "weight_decay": cfg.optimizer.weight_decay,
        "batch_size": cfg.data.batch_size,
        "max_epochs": cfg.trainer.max_epochs,
        "scheduler": scheduler_of(cfg),
        "pool": head.get("pool"),
        "seed": cfg.seed,
        "eval_rates": list(cfg.task.get("eval_rates") or [1]),
        "n_ssm": model.d_model if kernel.n_ssm is None else kernel.n_ssm,  # None: one per channel
        **ssm_groups(kernel.lr, kernel.wd),
    }
    return values | {key: kernel.get(key) for key in KERNEL_KEYS}


def test_every_experiment_is_in_the_table() -> None:
    assert sorted([*OFFICIAL, *OURS]) == EXPERIMENTS
    assert not set(OFFICIAL) & set(OURS)


@pytest.mark.parametrize("experiment", sorted(OFFICIAL))
def test_values_equal_the_official_file(experiment: str) -> None:
    official = OFFICIAL[experiment]
    expected = dict(official["values"])
    assert set(expected) | set(official["not_checked"]) >= set(KEYS), "every table key is checked"
    cfg = compose_experiment(f"experiment={experiment}")
    ours = table_values(cfg)
    for key in ("ssm_lr", "ssm_wd"):  # compare what the optimizer will use, group by group
        global_value = expected["lr" if key == "ssm_lr" else "weight_decay"]
        expected[key] = effective(expected[key], global_value)
        ours[key] = effective(ours[key], ours["lr" if key == "ssm_lr" else "weight_decay"])
    expected.setdefault("eval_rates", [1])
    mismatches = {
        key: {"ours": ours[key], "official": value}
        for key, value in expected.items()
        if ours[key] != value
    }
    assert not mismatches, f"{experiment} vs {official['file']}: {mismatches}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_header_names_one_generation_and_its_file(experiment: str) -> None:
    text = header(experiment)
    assert text.startswith("# @package _global_\n"), "the package line comes first"
    generations = GENERATION.findall(text)
    assert len(generations) == 1, f"exactly one '# Generation:' line, got {generations}"
    generation, rest = generations[0]
    assert generation in ("v1", "v3", "v4", "ours")
    if experiment in OURS:
        assert generation == "ours"
        assert "no official counterpart" in rest or "not a reproduction" in rest
    else:
        official = OFFICIAL[experiment]
        assert generation == official["generation"]
        assert f"official {official['file']}" in rest, f"the header names {official['file']}"
    assert re.search(r"^# Time\b.*:", text, re.M), "the header says the time ('not measured')"
    assert f"# Run: python train.py experiment={experiment}" in text


def defaults_overrides(experiment: str) -> list[str]:
    """The experiment's defaults list as command-line group overrides (`data=lra/listops`); an
    included config (`- /recipe/forecasting`) becomes an appended group (`+recipe=forecasting`)."""
    overrides = []
    for item in OmegaConf.load(EXPERIMENT_DIR / f"{experiment}.yaml").get("defaults", []):
        if isinstance(item, str):
            group, _, option = item.lstrip("/").rpartition("/")
            overrides.append(f"+{group}={option}")
            continue
        ((key, option),) = item.items()
        group = key.removeprefix("override").strip().lstrip("/")
        overrides.append(f"~{group}" if option is None else f"{group}={option}")
    return overrides


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths of the leaves of a plain container (lists count as leaves)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out |= leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return out


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_holds_only_deltas(experiment: str) -> None:
    """No value in an experiment file repeats what its defaults list already gives."""
    body = OmegaConf.to_container(OmegaConf.load(EXPERIMENT_DIR / f"{experiment}.yaml"))
    body.pop("defaults", None)
    base = compose_experiment("~experiment", *defaults_overrides(experiment))
    repeated = [
        path
        for path, value in leaves(body).items()
        if OmegaConf.select(base, path, default="<missing>", throw_on_missing=False) == value
    ]
    assert not repeated, f"{experiment} repeats its defaults at {repeated}"

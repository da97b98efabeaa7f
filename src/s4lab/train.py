"""train(cfg): check the composed config, build data, task and trainer, fit, test, report.

Lightning runs the data lifecycle: `trainer.fit(task, datamodule=dm)` calls dm.prepare_data()
once per node, dm.setup("fit") on every rank, then task.configure_model(), which builds the
model from dm.sizes. Validation covers val and, with `track_test`, the test split every epoch;
a final test runs on the best checkpoint. With `train=false`, only the test runs, on the weights
of `ckpt_path`. Returns the monitored metric's best value (or the test value) for sweepers.

Before anything is built, `check_config` compares every `_target_` node's keys and scalar values
with the target's signature and type hints, so `optimizer.lr=abc` fails naming the key, the
expected type and the value instead of deep inside the optimizer.
"""

from __future__ import annotations

import collections.abc as abc
import difflib
import enum
import inspect
import os
import types
import typing
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import (
    Callback,
    LightningDataModule,
    LightningModule,
    Trainer,
    seed_everything,
)
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import Logger
from rich.console import Console
from rich.table import Table

from s4lab.callbacks import NonFiniteLossError
from s4lab.checkpoint import build_task, find_checkpoint, named_mismatch
from s4lab.loggers import finish_wandb

HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
TOP_LEVEL_TYPES: dict[str, Any] = {  # keys of configs/train.yaml that no _target_ receives
    "seed": int,
    "table_row": str | None,
    "monitor": str,
    "mode": typing.Literal["min", "max"],
    "track_test": bool,
    "train": bool,
    "test": bool,
    "ckpt_path": str | None,
    "tf32": bool,
    "torch_threads": int | None,
}


class ConfigError(ValueError):
    """Config values that do not fit their targets: each line names the key, what was expected
    and what was given."""


def available_experiments(config_dir: Path) -> list[str]:
    """Experiment names (`<bench>/<name>`) under `config_dir/experiment`."""
    root = Path(config_dir) / "experiment"
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def available_tables(config_dir: Path) -> list[str]:
    """Table names (`configs/table/<name>.yaml`: one paper table each, run with -m)."""
    return sorted(p.stem for p in (Path(config_dir) / "table").glob("*.yaml"))


def check_experiment_args(args: list[str], config_dir: Path) -> None:
    """Fail early, listing the available experiments (tables), if `experiment=<name>`
    (`table=<name>`) names none of them, or if `table=` is given without `-m`.

    Hydra's own error only says "Could not find 'experiment/<name>'".
    """
    listings = {"experiment": available_experiments, "table": available_tables}
    for arg in args:
        key, _, value = arg.lstrip("+~").partition("=")
        if key not in listings or not value or value == "null" or "(" in value:
            continue  # sweep functions such as glob(lra/*) are left to Hydra
        if key == "table" and "," in value:
            raise SystemExit(f"table={value}: run one table at a time (e.g. -m table=lra)")
        available = listings[key](config_dir)
        unknown = [name for name in value.split(",") if name not in available]
        if unknown:
            listing = "\n  ".join(available)
            raise SystemExit(f"Unknown {key}: {', '.join(unknown)}\nAvailable {key}s:\n  {listing}")
        if key == "table" and not {"-m", "--multirun"} & set(args):
            raise SystemExit(
                f"table={value} runs every row and seed of the table: add -m "
                f"(python train.py -m table={value})"
            )


# Config check: keys and scalar types against the targets' signatures


def type_name(hint: Any) -> str:
    """A readable name of a type hint: `float`, `int | None`, `Literal['min', 'max']`."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return "None" if hint is type(None) else hint.__qualname__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


def fits(value: Any, hint: Any) -> bool:
    """Whether a config value (resolved: scalar, list or dict) may be passed as `hint`.

    Strict for scalar types (bool, int, float, str, None, a Literal's values) and
    for containers of them; a dict (a `_target_` node or keyword mapping) fits any class or
    callable; annotations this cannot judge (Any, type variables, forward references) fit.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object or isinstance(hint, (typing.TypeVar, str, typing.ForwardRef)):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:  # an enum option: one of its values (True is not 1)
        return any(type(value) is type(arg) and value == arg for arg in args)
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    sequence = (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Iterable)
    if hint in sequence or origin in sequence or origin is abc.Collection:
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(fits, value, args))
        return not args or all(fits(v, args[0]) for v in value)
    if hint in (dict, abc.Mapping) or origin in (dict, abc.Mapping, abc.MutableMapping):
        return isinstance(value, dict) and (
            len(args) != 2 or all(fits(v, args[1]) for v in value.values())
        )
    if hint is abc.Callable or origin is abc.Callable:
        return isinstance(value, dict)  # a _target_ node (e.g. `_partial_: true`)
    if isinstance(hint, type):
        if isinstance(value, dict):
            return True  # instantiated by Hydra, or a mapping the class takes
        if issubclass(hint, (PurePath, os.PathLike)):
            return isinstance(value, str)
        if issubclass(hint, enum.Enum):
            return isinstance(value, (str, int))
        return isinstance(value, hint)
    return True


def type_hints(target: Any) -> dict[str, Any]:
    """Evaluated annotations of a class's __init__ or a function; {} where they cannot be read."""
    func = target.__init__ if isinstance(target, type) else target
    try:
        return typing.get_type_hints(func)
    except Exception:  # names imported only for type checkers: judge nothing rather than guess
        return {}


def target_problems(node: dict[str, Any], key: str) -> Iterator[str]:
    """Problems of one `_target_` node: keys its target does not take, values of the wrong type."""
    target = node["_target_"]
    try:
        obj = hydra.utils.get_object(target)
    except Exception as error:
        yield f"{key}._target_: cannot import {target!r} ({error})"
        return
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return  # builtins without a signature: left to the target
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    hints = type_hints(obj)
    for name, value in node.items():
        if name in HYDRA_KEYS:
            continue
        where = f"{key}.{name}" if key else name
        if name not in named:
            if not takes_kwargs:
                close = difflib.get_close_matches(name, named, n=3)
                hint = f"did you mean {' or '.join(close)}?" if close else f"it takes {list(named)}"
                yield f"{where}: {target} takes no argument {name!r} ({hint})"
            continue
        hint = hints.get(name)
        if hint is not None and not fits(value, hint):
            got = "a mapping" if isinstance(value, dict) else f"{value!r} ({type(value).__name__})"
            yield f"{where}: expected {type_name(hint)}, got {got}, for {target}"


def config_problems(node: Any, key: str = "") -> Iterator[str]:
    """Problems of every `_target_` node in a resolved config tree (see target_problems)."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield from target_problems(node, key)
        for name, value in node.items():
            yield from config_problems(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from config_problems(value, f"{key}[{i}]")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every key of a wrong type or unknown to its target."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    problems = [
        f"{name}: expected {type_name(hint)}, got {tree[name]!r} ({type(tree[name]).__name__})"
        for name, hint in TOP_LEVEL_TYPES.items()
        if name in tree and not fits(tree[name], hint)
    ]
    problems += config_problems(tree)
    if problems:
        raise ConfigError("Invalid config:\n  " + "\n  ".join(problems))


# Building and running


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a group such as callbacks or logger (null: none)."""
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c and "_target_" in c]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str) -> str | None:
    """`last` means `<run dir>/checkpoints/last.ckpt`; any other value must be an existing file."""
    if ckpt_path is None:
        return None
    path = (
        Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    )
    if not path.is_file():
        hint = (
            "ckpt_path=last resumes the run whose directory is given by hydra.run.dir=<run dir>"
            if ckpt_path == "last"
            else "pass ckpt_path=<an existing .ckpt file> or ckpt_path=last"
        )
        raise FileNotFoundError(f"Checkpoint not found: {path}\n{hint}")
    return str(path)


def build(
    cfg: DictConfig, callbacks: Sequence[Callback] = ()
) -> tuple[LightningDataModule, LightningModule, Trainer]:
    """The datamodule (not set up yet), the task (model built in fit) and the trainer."""
    datamodule = hydra.utils.instantiate(cfg.data)
    task = build_task(cfg)
    configured: list[Callback] = instantiate_all(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_all(cfg.get("logger"))
    if not loggers:  # `~logger`: nothing to send learning rates to
        configured = [c for c in configured if not isinstance(c, LearningRateMonitor)]
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*configured, *callbacks], logger=loggers or False
    )
    return datamodule, task, trainer


def train(cfg: DictConfig, callbacks: Sequence[Callback] = ()) -> float | None:
    """Fit and test as configured (`train=false`: test only); `callbacks` are added to the
    configured ones. Returns the best `cfg.monitor` (None if stopped), or the test value."""
    check_config(cfg)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    seed_everything(cfg.seed, workers=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if torch.cuda.is_available():  # TF32 matmuls/convs: ~fp32 accuracy at tensor-core speed
        torch.set_float32_matmul_precision("high" if cfg.tf32 else "highest")
    datamodule, task, trainer = build(cfg, callbacks)
    task.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in every checkpoint
    try:
        for logger in trainer.loggers:
            logger.log_hyperparams(task.run_config)
        if not cfg.train:
            return evaluate(cfg, datamodule, task, trainer)
        return fit_and_test(cfg, datamodule, task, trainer)
    finally:
        finish_wandb()


def fit_and_test(
    cfg: DictConfig, datamodule: LightningDataModule, task: LightningModule, trainer: Trainer
) -> float | None:
    """Fit (val + tracked test every epoch), test the best checkpoint, report; see train()."""
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, cfg.paths.output_dir)
    try:
        with named_mismatch(task, ckpt_path):
            trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    except NonFiniteLossError as error:
        if trainer.is_global_zero:
            Console().print(f"[red]{error}[/red]\nRun directory: {cfg.paths.output_dir}")
        return None

    value = monitored_value(trainer, cfg.monitor)
    if cfg.test:
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        test_metrics = run_test(trainer, task, datamodule, best or None)
    else:
        test_metrics = {}
    if trainer.is_global_zero:
        report(cfg, datamodule, test_metrics)
    return value


def evaluate(
    cfg: DictConfig, datamodule: LightningDataModule, task: LightningModule, trainer: Trainer
) -> float | None:
    """`train=false`: test the weights of `ckpt_path` (no fit, no checkpoint); report them.

    Returns the test value of the monitored metric (`val/acc` -> `test/acc`).
    """
    if cfg.ckpt_path is None:
        raise ValueError(
            "train=false only tests saved weights: give ckpt_path=<a .ckpt file or a run dir>"
        )
    if cfg.ckpt_path == "last":
        ckpt_path = resolve_ckpt_path(cfg.ckpt_path, cfg.paths.output_dir)
    else:  # a file, or a run directory: its best.ckpt, else last.ckpt
        ckpt_path = str(find_checkpoint(cfg.ckpt_path))
    test_metrics = run_test(trainer, task, datamodule, ckpt_path)
    if trainer.is_global_zero:
        report(cfg, datamodule, test_metrics, weights=ckpt_path)
    return test_metrics.get("test/" + cfg.monitor.partition("/")[2])


def run_test(
    trainer: Trainer, task: LightningModule, datamodule: LightningDataModule, ckpt_path: str | None
) -> dict[str, float]:
    """trainer.test on `ckpt_path` (None: the current weights) -> {metric: value}."""
    with named_mismatch(task, ckpt_path):
        results = trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path)
    return {k: float(v) for k, v in results[0].items()} if results else {}


def monitored_value(trainer: Trainer, monitor: str) -> float | None:
    """Best checkpointed value of the monitored metric, else its last logged value."""
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    value = trainer.callback_metrics.get(monitor)
    return None if value is None else float(value)


def report(
    cfg: DictConfig,
    datamodule: LightningDataModule,
    test_metrics: dict[str, float],
    weights: str | None = None,
) -> None:
    """Print the test metrics, the dataset's published baselines if it has any, and the run dir."""
    console = Console()
    acc = test_metrics.get("test/acc")
    baselines: dict[str, float] = getattr(datamodule, "baselines", {})
    if acc is not None and baselines:
        table = Table(title=f"Test accuracy: {cfg.name}")
        table.add_column("model")
        table.add_column("test acc (%)", justify="right")
        table.add_row("[bold]this run[/bold]", f"{100 * acc:.1f}")
        for name, value in baselines.items():
            table.add_row(f"{name} (published)", f"{value:.1f}")
        console.print(table)
    if test_metrics:
        line = ", ".join(f"{k} = {v:.6g}" for k, v in sorted(test_metrics.items()))
        console.print(line, soft_wrap=True)  # one line, for logs and scripts that parse it
    if weights is not None:
        console.print(f"Weights: {weights}")
    console.print(f"Run directory: {cfg.paths.output_dir}")

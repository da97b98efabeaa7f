"""train(cfg): build data, model, task and trainer from a composed config; fit, test, report.

Order: datamodule.setup("fit") first, so the model is built from its sizes (d_input, d_output,
l_max, vocab_size); then fit with val (and the test split tracked every epoch), then a final
test on the best checkpoint. Returns the monitored metric's best value for sweepers.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Callback, LightningDataModule, Trainer, seed_everything
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import Logger
from rich.console import Console
from rich.table import Table

from s4lab.callbacks import NonFiniteLossError
from s4lab.loggers import finish_wandb


def available_experiments(config_dir: Path) -> list[str]:
    """Experiment names (`<bench>/<name>`) under `config_dir/experiment`."""
    root = Path(config_dir) / "experiment"
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def check_experiment_args(args: list[str], config_dir: Path) -> None:
    """Fail early, listing the available experiments, if `experiment=<name>` names none of them.

    Hydra's own error only says "Could not find 'experiment/<name>'".
    """
    available = available_experiments(config_dir)
    for arg in args:
        key, _, value = arg.lstrip("+~").partition("=")
        if key != "experiment" or not value or value == "null" or "(" in value:
            continue  # sweep functions such as glob(lra/*) are left to Hydra
        unknown = [name for name in value.split(",") if name not in available]
        if unknown:
            listing = "\n  ".join(available)
            raise SystemExit(
                f"Unknown experiment: {', '.join(unknown)}\nAvailable experiments:\n  {listing}"
            )


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


def build(cfg: DictConfig) -> tuple[LightningDataModule, Any, Trainer]:
    """Instantiate the datamodule (set up), the task with its model, and the trainer."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = hydra.utils.instantiate(
        cfg.model,
        d_input=datamodule.d_input,
        d_output=datamodule.d_output,
        l_max=datamodule.l_max,
        vocab_size=datamodule.vocab_size,
    )
    schedule = cfg.get("scheduler")  # `~scheduler` may leave an experiment's keys, no _target_
    scheduler = hydra.utils.instantiate(schedule) if schedule and "_target_" in schedule else None
    task = hydra.utils.instantiate(
        cfg.task, model=model, optimizer=hydra.utils.instantiate(cfg.optimizer), scheduler=scheduler
    )
    task.setup_data(datamodule)
    callbacks: list[Callback] = instantiate_all(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_all(cfg.get("logger"))
    if not loggers:  # `~logger`: nothing to send learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, task, trainer


def train(cfg: DictConfig) -> float | None:
    """Fit and test as configured; return the best value of `cfg.monitor` (None if stopped)."""
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    seed_everything(cfg.seed, workers=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if torch.cuda.is_available():  # TF32 matmuls/convs: ~fp32 accuracy at tensor-core speed
        torch.set_float32_matmul_precision("high" if cfg.tf32 else "highest")
    datamodule, task, trainer = build(cfg)
    try:
        return fit_and_test(cfg, datamodule, task, trainer)
    finally:
        finish_wandb()


def fit_and_test(
    cfg: DictConfig, datamodule: LightningDataModule, task: Any, trainer: Trainer
) -> float | None:
    """Fit (val + tracked test every epoch), test the best checkpoint, report; see train()."""
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    val_loaders = [datamodule.val_dataloader()]
    if cfg.track_test:
        datamodule.setup("test")
        val_loaders.append(datamodule.test_dataloader())
    try:
        trainer.fit(
            task,
            train_dataloaders=datamodule.train_dataloader(),
            val_dataloaders=val_loaders,
            ckpt_path=resolve_ckpt_path(cfg.ckpt_path, cfg.paths.output_dir),
        )
    except NonFiniteLossError as error:
        if trainer.is_global_zero:
            Console().print(f"[red]{error}[/red]\nRun directory: {cfg.paths.output_dir}")
        return None

    test_metrics: dict[str, float] = {}
    if cfg.test:
        datamodule.setup("test")
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        results = trainer.test(
            task, dataloaders=datamodule.test_dataloader(), ckpt_path=best or None
        )
        test_metrics = {k: float(v) for k, v in results[0].items()} if results else {}
    if trainer.is_global_zero:
        report(cfg, datamodule, test_metrics)
    return monitored_value(trainer, cfg.monitor)


def monitored_value(trainer: Trainer, monitor: str) -> float | None:
    """Best checkpointed value of the monitored metric, else its last logged value."""
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    value = trainer.callback_metrics.get(monitor)
    return None if value is None else float(value)


def report(
    cfg: DictConfig, datamodule: LightningDataModule, test_metrics: dict[str, float]
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
    elif test_metrics:
        console.print(", ".join(f"{k} = {v:.4g}" for k, v in sorted(test_metrics.items())))
    console.print(f"Run directory: {cfg.paths.output_dir}")

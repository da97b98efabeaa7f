"""End-to-end training through train(cfg) on MNIST-1D with a tiny S4: runs, resumes, stops, logs;
a finished run loads (`s4lab.load`) and evaluates (`train=false`) to the metrics it printed."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from conftest import TINY, compose_config, train_checked
from pytorch_lightning import Callback, Trainer

import s4lab
from s4lab.checkpoint import CheckpointMismatchError, find_checkpoint
from s4lab.data.base import DataSizes
from s4lab.loggers import finish_wandb, wandb_logger
from s4lab.train import train

ROOT = Path(__file__).parents[1]
SHORT = [
    *TINY,
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    """Rows of the run's latest CSV log (a resumed run writes csv/version_<n+1>)."""
    versions = sorted((run_dir / "csv").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    with open(versions[-1] / "metrics.csv") as f:
        return list(csv.DictReader(f))


def last_value(rows: list[dict[str, str]], key: str) -> float:
    return float([r[key] for r in rows if r.get(key)][-1])


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_fast_dev_run_default_experiment(compose_train, precision):
    cfg = compose_train(*TINY, "debug=fdr", f"trainer.precision={precision}")
    assert cfg.name == "mnist1d/s4"
    train_checked(cfg)  # one train, val and test batch through the real pipeline


class StopAfterFirstEpoch(Callback):
    """Interrupt a run at the end of epoch 0, after its checkpoints are written."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def test_resume_is_exact(compose_train, tmp_path):
    """2 epochs straight == the same 2-epoch run interrupted after epoch 0, then resumed with
    ckpt_path=last in the same run dir.

    Dropout draws random numbers; the warmup (6 steps, 4 per epoch) crosses the interruption,
    so the scheduler state must be restored too, and the cosine default spans the whole run.
    """
    common = [*SHORT, "model.dropout=0.2", "test=false", "trainer.max_epochs=2"]
    common += ["scheduler=constant_warmup", "scheduler.num_warmup_steps=6"]
    train_checked(compose_train(*common, output_dir=tmp_path / "a"))
    interrupted = compose_train(*common, output_dir=tmp_path / "b")
    train_checked(interrupted, callbacks=[StopAfterFirstEpoch()])
    assert torch.load(tmp_path / "b/checkpoints/last.ckpt", weights_only=False)["epoch"] == 0
    train_checked(compose_train(*common, "ckpt_path=last", output_dir=tmp_path / "b"))
    a, b = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    for key in ("train/loss", "val/loss"):
        assert last_value(a, key) == last_value(b, key), key
    weights_a = torch.load(tmp_path / "a/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    weights_b = torch.load(tmp_path / "b/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    for name, value in weights_a.items():
        torch.testing.assert_close(weights_b[name], value, rtol=0, atol=0, msg=name)


def test_missing_checkpoint_names_the_path(compose_train, tmp_path):
    with pytest.raises(FileNotFoundError, match="last.ckpt(.|\n)*hydra.run.dir"):
        train(compose_train(*TINY, "ckpt_path=last"))
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        train(compose_train(*TINY, f"ckpt_path={tmp_path}/nowhere.ckpt"))


@pytest.mark.parametrize(
    "scheduler,expect",
    [
        ("cosine_warmup", lambda lrs: lrs[0] > lrs[-1] > 0),  # decays over the whole run
        ("plateau", lambda lrs: lrs[0] == lrs[-1]),  # patience 20: no reduction yet
    ],
)
def test_schedulers_train(compose_train, tmp_path, scheduler, expect):
    train_checked(
        compose_train(*SHORT, "trainer.max_epochs=2", f"scheduler={scheduler}", "test=false")
    )
    lrs = [float(r["lr-AdamW/pg1"]) for r in metrics(tmp_path) if r.get("lr-AdamW/pg1")]
    assert lrs and expect(lrs)


def test_non_finite_loss_stops_cleanly(compose_train, tmp_path, capsys, monkeypatch):
    """The 6th training loss (epoch 1, batch 1) is NaN: the run stops, epoch-0 checkpoints stay."""
    cross_entropy = torch.nn.functional.cross_entropy
    calls = {"train": 0}

    def poisoned(*args, **kwargs):
        loss = cross_entropy(*args, **kwargs)
        if torch.is_grad_enabled():  # training steps only
            calls["train"] += 1
            if calls["train"] == 6:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", poisoned)
    assert train(compose_train(*SHORT, "trainer.max_epochs=3")) is None
    out = capsys.readouterr().out
    assert "Non-finite training loss (nan) at global step 5 (epoch 1)" in " ".join(out.split())
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["global_step"] == 4  # the end of epoch 0: nothing after the NaN was saved
    weights = state["state_dict"].values()
    assert all(torch.isfinite(v).all() for v in weights if v.is_floating_point())


@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_nan_first_loss_fails_the_smoke_check(compose_train, monkeypatch, guard):
    """train_checked, used by every smoke test, must not pass a run that never had a finite loss:
    with the NaN guard the run stops (train returns None), without it the weights turn NaN."""
    cross_entropy = torch.nn.functional.cross_entropy

    def poisoned(*args, **kwargs):
        loss = cross_entropy(*args, **kwargs)
        return loss * float("nan") if torch.is_grad_enabled() else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", poisoned)
    extra = [] if guard == "on" else ["callbacks.nan_guard=null"]
    with pytest.raises(AssertionError, match=r"train\(\) returned (None|nan)|non-finite"):
        train_checked(compose_train(*TINY, "debug=fdr", *extra))


def test_wandb_offline_writes_config_and_metrics(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_train(*SHORT, "trainer.max_epochs=1", "logger=wandb", "test=false")
    train_checked(cfg)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    records = next(runs[0].glob("run-*.wandb")).read_bytes()  # what `wandb sync` uploads
    for key in (b"mnist1d/s4", b"d_model", b"train/loss", b"val/acc"):  # config and metrics
        assert key in records, key


@pytest.mark.slow
def test_wandb_without_reachable_service_falls_back_offline(tmp_path, monkeypatch):
    """A key but no network (a closed local port): the logger goes offline instead of failing."""
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.warns(UserWarning, match="logging offline"):
        logger = wandb_logger("s4lab", "test", str(tmp_path), init_timeout=5)
    assert logger.experiment.settings.mode == "offline"
    finish_wandb()
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_runs_without_logger_or_scheduler(compose_train, tmp_path):
    """`~logger` drops the LR monitor with the loggers; `~scheduler` leaves a constant lr."""
    train_checked(compose_train(*SHORT, "trainer.max_epochs=1", "~logger", "~scheduler"))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_tensorboard_logger_writes_events(compose_train, tmp_path):
    train_checked(compose_train(*SHORT, "trainer.max_epochs=1", "logger=tensorboard", "test=false"))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert metrics(tmp_path)  # the CSV log is kept next to it


# A finished run: s4lab.load and train=false reproduce the test metrics it printed


def printed_metrics(out: str) -> dict[str, str]:
    """The `test/<name> = <value>` pairs of train()'s report."""
    return dict(re.findall(r"(test/\w+) = ([^,\s]+)", out))


class StageSpy(Callback):
    """Which loops the trainer ran."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self.stages.append("fit")

    def on_test_start(self, trainer, pl_module) -> None:
        self.stages.append("test")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir) -> tuple[Path, dict[str, str]]:
    """One epoch of the default experiment: (its run directory, the test metrics it printed)."""
    run = tmp_path_factory.mktemp("run")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train_checked(compose_config(data_dir, run, *SHORT, "trainer.max_epochs=1"))
    metrics = printed_metrics(out.getvalue())
    assert {"test/acc", "test/loss"} <= set(metrics), out.getvalue()
    return run, metrics


def test_load_gives_the_task_that_evaluates_to_the_printed_metrics(finished_run):
    run, printed = finished_run
    task = s4lab.load(run)  # the run directory: its checkpoints/best.ckpt
    assert not task.training and task.run_config["name"] == "mnist1d/s4"
    assert task.sizes == DataSizes(d_input=1, d_output=10, l_max=40, vocab_size=None)
    datamodule = hydra.utils.instantiate(task.run_config["data"])
    trainer = Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (results,) = trainer.test(task, datamodule=datamodule)
    for name in ("test/acc", "test/loss"):
        assert f"{results[name]:.6g}" == printed[name], name


def test_train_false_only_tests_the_checkpoint(finished_run, compose_train, tmp_path, capsys):
    run, printed = finished_run
    saved = {p: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()}
    spy = StageSpy()
    value = train(compose_train(*SHORT, "train=false", f"ckpt_path={run}"), callbacks=[spy])
    out = capsys.readouterr().out
    assert spy.stages == ["test"]  # no fit
    assert printed_metrics(out) == printed
    assert f"{value:.6g}" == printed["test/loss"]  # the monitor val/loss, on the test split
    assert "Weights: " + str(run / "checkpoints" / "best.ckpt") in " ".join(out.split())
    assert not (tmp_path / "checkpoints").exists()  # no new checkpoint
    assert {p: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()} == saved


def test_train_false_needs_a_checkpoint(compose_train):
    with pytest.raises(ValueError, match="train=false only tests saved weights: give ckpt_path"):
        train(compose_train(*TINY, "train=false"))


def test_a_checkpoint_of_another_model_fails_naming_file_and_keys(finished_run, compose_train):
    run, _ = finished_run
    best = run / "checkpoints" / "best.ckpt"
    cfg = compose_train(*SHORT, "model.d_model=16", "train=false", f"ckpt_path={best}")
    with pytest.raises(CheckpointMismatchError) as error:
        train(cfg)
    message = str(error.value)
    assert message.startswith(f"{best} does not match the model")
    assert "mismatched shapes: " in message and "(file (8,), model (16,))" in message


def test_load_names_missing_and_unexpected_keys(finished_run, tmp_path):
    run, _ = finished_run
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)
    removed = sorted(checkpoint["state_dict"])[0]
    del checkpoint["state_dict"][removed]
    checkpoint["state_dict"]["extra.weight"] = torch.zeros(2)
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    with pytest.raises(CheckpointMismatchError) as error:
        s4lab.load(edited)
    message = str(error.value)
    assert str(edited) in message
    assert f"missing keys (in the model, not in the file): {removed}" in message
    assert "unexpected keys (in the file, not in the model): extra.weight" in message
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointMismatchError, match=r"foreign.ckpt has no checkpoint\['s4lab'\]"):
        s4lab.load(tmp_path / "foreign.ckpt")


def test_a_run_directory_resolves_to_best_then_last(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        find_checkpoint(tmp_path)
    for name in ("best.ckpt", "last.ckpt"):
        assert str(tmp_path / "checkpoints" / name) in str(error.value)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "best.ckpt"
    with pytest.raises(FileNotFoundError, match="nowhere is neither a .ckpt file nor a run"):
        find_checkpoint(tmp_path / "nowhere")


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_multirun_sweep_makes_one_dir_per_run(tmp_path, data_dir):
    result = run_cli(
        "-m",
        *SHORT,
        "trainer.max_epochs=1",
        "test=false",
        "optimizer.lr=0.01,0.02",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "mnist1d" / "s4" / "multiruns").iterdir())
    assert len(sweeps) == 1
    runs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert runs == ["0", "1"]
    for run in runs:
        assert metrics(sweeps[0] / run)


@pytest.mark.slow
def test_optuna_search_runs_trials(tmp_path, data_dir):
    result = run_cli(
        "-m",
        "hparams_search=mnist1d_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        *SHORT,
        "trainer.max_epochs=1",
        "test=false",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (results,) = (tmp_path / "mnist1d" / "s4" / "multiruns").glob("*/optimization_results.yaml")
    text = results.read_text()
    assert "best_value" in text and "optimizer.lr" in text


def test_unknown_experiment_lists_available(tmp_path):
    result = run_cli("experiment=no/such", cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "Unknown experiment: no/such" in result.stderr
    assert "mnist1d/s4" in result.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tmp_path, data_dir):
    """2 processes x batch 32 vs 1 process x batch 64: the same global batch and steps.

    The sample order differs (DistributedSampler), so losses agree within a tolerance only;
    both must have learned well past chance (ln 10 = 2.30).
    """
    common = [
        *SHORT,
        "trainer.max_epochs=3",
        "test=false",
        "trainer.limit_train_batches=25",
        "trainer.limit_val_batches=1",
        "model.d_model=32",
        "model.dropout=0",
        f"paths.data_dir={data_dir}",
    ]
    one = run_cli(*common, "data.batch_size=64", f"hydra.run.dir={tmp_path}/one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_cli(
        *common,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "data.batch_size=32",
        f"hydra.run.dir={tmp_path}/two",
        cwd=tmp_path,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    loss_one = last_value(metrics(tmp_path / "one"), "val/loss")
    loss_two = last_value(metrics(tmp_path / "two"), "val/loss")
    assert loss_one < 2.1 and loss_two < 2.1
    assert loss_two == pytest.approx(loss_one, rel=0.03)

"""End-to-end training through train(cfg) on MNIST-1D with a tiny S4: runs, resumes, stops, logs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY

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
    train(cfg)  # one train, val and test batch through the real pipeline


def test_resume_is_exact(compose_train, tmp_path):
    """2 epochs straight == 1 epoch, then ckpt_path=last in the same run dir for 1 more.

    Dropout draws random numbers; the warmup (6 steps, 4 per epoch) crosses the interruption,
    so the scheduler state must be restored too. (A cosine schedule sized by max_epochs would
    differ between a 1-epoch and a 2-epoch run, so it cannot stand in for an interruption.)
    """
    common = [
        *SHORT,
        "model.dropout=0.2",
        "test=false",
        "scheduler=constant_warmup",
        "scheduler.num_warmup_steps=6",
    ]
    straight = compose_train(*common, "trainer.max_epochs=2", output_dir=tmp_path / "a")
    train(straight)
    first = compose_train(*common, "trainer.max_epochs=1", output_dir=tmp_path / "b")
    train(first)
    resumed = compose_train(
        *common, "trainer.max_epochs=2", "ckpt_path=last", output_dir=tmp_path / "b"
    )
    train(resumed)
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
    train(compose_train(*SHORT, "trainer.max_epochs=2", f"scheduler={scheduler}", "test=false"))
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


def test_wandb_offline_writes_config_and_metrics(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_train(*SHORT, "trainer.max_epochs=1", "logger=wandb", "test=false")
    train(cfg)
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
    result = train(compose_train(*SHORT, "trainer.max_epochs=1", "~logger", "~scheduler"))
    assert result is not None
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_tensorboard_logger_writes_events(compose_train, tmp_path):
    train(compose_train(*SHORT, "trainer.max_epochs=1", "logger=tensorboard", "test=false"))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert metrics(tmp_path)  # the CSV log is kept next to it


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

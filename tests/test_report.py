"""scripts/report.py on a tree of finished runs written here in train.py's layout
(<run>/.hydra/config.yaml, <run>/csv/version_<n>/metrics.csv): the markdown rows, mean ± std
over seeds, "not run", "failed", the tracked-test fallback, the PNGs, and an empty folder."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
report = importlib.util.module_from_spec(spec)
sys.modules["report"] = report  # dataclasses look their module up
spec.loader.exec_module(report)


def write_run(
    root: Path,
    compose_train,
    table: str,
    row: str,
    experiment: str,
    seed: int,
    rows: list[dict],
    *overrides: str,
) -> Path:
    """A run directory as `python train.py -m table=<table>` leaves it."""
    run = root / row / f"seed{seed}"
    cfg = compose_train(f"table={table}", f"experiment={experiment}", f"seed={seed}",
                        f"table_row={row}", *overrides)  # fmt: skip
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    if rows:
        (run / "csv" / "version_0").mkdir(parents=True)
        keys = sorted({k for r in rows for k in r})
        with open(run / "csv" / "version_0" / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(rows)
    return run


def fit(*epochs: tuple[float, float], test: float | None = None, **final: float) -> list[dict]:
    """CSV rows: per epoch (val/acc, tracked test/acc) and time, then the final test stage."""
    rows = []
    for i, (val, tracked) in enumerate(epochs):
        rows.append({"epoch": i, "step": 10 * i + 9, "train/loss_step": 1.0})
        rows.append({"epoch": i, "step": 10 * i + 9, "val/acc": val, "val/loss": 1 - val,
                     "test/acc": tracked, "test/loss": 1 - tracked})  # fmt: skip
        rows.append({"epoch": i, "step": 10 * i + 9, "time/epoch_s": 30.0})
    if test is not None or final:
        n = len(epochs)
        rows.append({"epoch": n, "step": 10 * n, **({"test/acc": test} if test is not None else {}),
                     **final})  # fmt: skip
    return rows


@pytest.fixture
def runs(tmp_path, compose_train) -> Path:
    root = tmp_path / "logs" / "tables" / "lra" / "2026-01-01_00-00-00"
    run = lambda *a: write_run(root, compose_train, "lra", *a)  # noqa: E731
    run("listops", "lra/listops", 0, fit((0.5, 0.5), (0.6, 0.58), test=0.59))
    run("listops", "lra/listops", 1, fit((0.5, 0.5), (0.6, 0.61), test=0.60))
    run("imdb", "lra/imdb", 0, fit((0.5, 0.5), test=math.nan))  # diverged: NaN
    # no final test (test=false): the tracked test beside the first best val/acc
    run("aan", "lra/aan", 0, fit((0.8, 0.85), (0.9, 0.88), (0.9, 0.87)), "test=false")
    run("pathx", "lra/pathx", 0, fit((0.5, 0.5), **{"test/loss": 0.7}))  # no test/acc at all
    run("pathfinder", "lra/pathfinder", 0, [])  # started, nothing logged yet
    other = tmp_path / "logs" / "tables" / "lra_v1" / "x"
    write_run(other, compose_train, "lra_v1", "listops", "lra_v1/listops", 0, fit((1, 1), test=1))
    return tmp_path / "logs"


def test_report_sets_ours_beside_the_paper(runs, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    assert report.main(["--table", "lra", "--runs", str(runs), "--out", str(out)]) == 0
    text = (out / "lra.md").read_text()
    assert text.startswith("# Long Range Arena, S4 (updated, v3)\n")
    assert "Paper: S4 arXiv 2111.00396v3 Table 4." in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == [
        "| row | paper | ours | difference | time / run |",
        "|---|---|---|---|---|",
        "| ListOps | 59.60 | 59.50 ± 0.71 (n=2) | -0.10 (worse) | 60 s |",
        "| Text | 86.82 | failed (n=1) | – | 30 s |",
        "| Retrieval | 90.90 | 88.00 (n=1†) | -2.90 (worse) | 90 s |",
        "| Image | 88.65 | not run | – | – |",
        "| Pathfinder | 94.20 | not run | – | – |",
        "| Path-X | 96.35 | failed (n=1) | – | 30 s |",
    ]
    assert "† some runs have no final test" in text
    pngs = sorted(p.name for p in (out / "lra").iterdir())
    assert pngs == ["aan.png", "imdb.png", "listops.png", "pathx.png"]
    assert all((out / "lra" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "no CSV log yet" in capsys.readouterr().err


def test_several_metrics_get_a_line_each(tmp_path, compose_train) -> None:
    root = tmp_path / "runs"
    rows = [{"epoch": 0, "step": 5, "val/mse": 0.1, "test/mse": 0.2, "test/mae": 0.3},
            {"epoch": 1, "step": 6, "test/mse": 0.07, "test/mae": 0.2}]  # fmt: skip
    write_run(root, compose_train, "forecast_univariate", "etth1_48", "forecasting/etth1", 0, rows)
    out = tmp_path / "results"
    args = ["--table", "forecast_univariate", "--runs", str(root), "--out", str(out)]
    assert report.main(args) == 0
    lines = (out / "forecast_univariate.md").read_text().splitlines()
    assert "| row | metric | paper | ours | difference | time / run |" in lines
    assert "| ETTh1 48 | test MSE | 0.079 | 0.070 (n=1) | -0.009 (better) | – |" in lines
    assert "|  | test MAE | 0.220 | 0.200 (n=1) | -0.020 (better) |  |" in lines
    assert "| ETTh1 24 | test MSE | 0.061 | not run | – | – |" in lines


def test_a_run_without_its_final_test_is_failed_not_a_partial_value(tmp_path, compose_train):
    """test=true but no test row: still running, or stopped early (non-finite loss)."""
    root = tmp_path / "runs"
    write_run(root, compose_train, "lra", "listops", "lra/listops", 0, fit((0.5, 0.5), (0.6, 0.7)))
    out = tmp_path / "results"
    assert report.main(["--table", "lra", "--runs", str(root), "--out", str(out)]) == 0
    text = (out / "lra.md").read_text()
    assert "| ListOps | 59.60 | failed (n=1) |" in text
    assert "†" not in text


def test_two_runs_of_one_row_and_seed_are_refused(tmp_path, compose_train, capsys):
    """Two sweeps in one folder would be averaged as if they were seeds: refused, both named."""
    for sweep in ("a", "b"):
        write_run(tmp_path / sweep, compose_train, "lra", "listops", "lra/listops", 0,
                  fit((0.5, 0.5), test=0.5))  # fmt: skip
    assert report.main(["--table", "lra", "--runs", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "two runs of row 'listops' seed 0" in err and "one sweep folder" in err


def test_the_readme_block_is_filled_from_the_report(runs, tmp_path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- report:lra -->\nstale\n<!-- /report:lra -->\nafter\n")
    out = tmp_path / "results"
    args = ["--table", "lra", "--runs", str(runs), "--out", str(out), "--readme", str(readme)]
    assert report.main(args) == 0
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| ListOps | 59.60 | 59.50 ± 0.71 (n=2) | -0.10 (worse) | 60 s |" in text
    assert "not run" not in text  # the README shows the rows that ran
    readme.write_text("no block\n")
    with pytest.raises(SystemExit, match="no block <!-- report:lra -->"):
        report.main(args)


def test_empty_folder_fails_with_a_message(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert report.main(["--table", "lra", "--runs", str(tmp_path / "empty")]) == 1
    assert "No finished runs of table lra under" in capsys.readouterr().err


def test_unknown_table_lists_the_tables(tmp_path) -> None:
    with pytest.raises(SystemExit, match="Available tables:(.|\n)*forecast_univariate"):
        report.main(["--table", "nope", "--runs", str(tmp_path)])


def test_the_report_goes_to_wandb_as_a_table(runs, tmp_path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    args = ["--table", "lra", "--runs", str(runs), "--out", str(tmp_path / "results"), "--wandb"]
    assert report.main(args) == 0
    assert wandb.run is None  # the report's own run is finished
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run_dir.rglob("*.table.json"))  # the wandb.Table, saved for `wandb sync`

"""Paper tables (configs/table/<name>.yaml): each expands to exactly the paper's rows, each row
composes and builds its model, `python train.py -m table=<name>` launches one job per
(row, seed), and an unknown table lists the tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY
from omegaconf import OmegaConf
from test_config import build_model

from hydra_plugins.s4lab_table_sweeper.table_sweeper import row_overrides
from s4lab.train import available_tables, check_config, check_experiment_args

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"


def forecasting(suffix: str, paper: dict[str, dict[int, tuple[float, float]]]) -> list[tuple]:
    return [
        (f"{ds}_{h}", f"forecasting/{ds}{suffix}", [f"data.horizon={h}"],
         {"test/mse": mse, "test/mae": mae})
        for ds, cells in paper.items()
        for h, (mse, mae) in cells.items()
    ]  # fmt: skip


# (row id, experiment, overrides, paper numbers): arXiv 2111.00396v3, official_s4.md §2
LRA = ["listops", "imdb", "aan", "image", "pathfinder", "pathx"]
ROWS: dict[str, list[tuple]] = {
    "lra": [
        (t, f"lra/{t}", [], {"test/acc": v})
        for t, v in zip(LRA, [59.60, 86.82, 90.90, 88.65, 94.20, 96.35], strict=True)
    ],
    "lra_v1": [
        (t, f"lra_v1/{t}", [], {"test/acc": v})
        for t, v in zip(LRA, [58.35, 76.02, 87.09, 87.26, 86.05, 88.10], strict=True)
    ],
    "image": [
        ("smnist", "mnist/smnist", [], {"test/acc": 99.63}),
        ("pmnist", "mnist/pmnist", [], {"test/acc": 98.70}),
        ("scifar", "cifar/s4_v1", [], {"test/acc": 91.13}),
    ],
    "speech": [
        ("mfcc", "sc/sc10_mfcc", [], {"test/acc": 93.96}),
        ("raw", "sc/sc10_raw", [], {"test/acc": 98.32, "test/acc_rate2": 96.30}),
    ],
    "wt103": [
        ("s4", "lm/wt103", [], {"test/ppl": 20.95}),
        ("transformer", "lm/transformer", [], {"test/ppl": 20.51}),
    ],
    "forecast_univariate": forecasting("", {
        "etth1": {24: (0.061, 0.191), 48: (0.079, 0.220), 168: (0.104, 0.258),
                  336: (0.080, 0.229), 720: (0.116, 0.271)},
        "etth2": {24: (0.095, 0.234), 48: (0.191, 0.346), 168: (0.167, 0.333),
                  336: (0.189, 0.361), 720: (0.187, 0.358)},
        "ettm1": {24: (0.024, 0.117), 48: (0.051, 0.174), 96: (0.086, 0.229),
                  288: (0.160, 0.327), 672: (0.292, 0.466)},
        "weather": {24: (0.125, 0.254), 48: (0.181, 0.305), 168: (0.198, 0.333),
                    336: (0.300, 0.417), 720: (0.245, 0.375)},
        "ecl": {48: (0.222, 0.350), 168: (0.331, 0.421), 336: (0.328, 0.422),
                720: (0.428, 0.494), 960: (0.432, 0.497)},
    }),
    "forecast_multivariate": forecasting("_multivariate", {
        "etth1": {24: (0.525, 0.542), 48: (0.641, 0.615), 168: (0.980, 0.779),
                  336: (1.407, 0.910), 720: (1.162, 0.842)},
        "etth2": {24: (0.871, 0.736), 48: (1.240, 0.867), 168: (2.580, 1.255),
                  336: (1.980, 1.128), 720: (2.650, 1.340)},
        "ettm1": {24: (0.426, 0.487), 48: (0.580, 0.565), 96: (0.699, 0.649),
                  288: (0.824, 0.674), 672: (0.846, 0.709)},
        "weather": {24: (0.334, 0.385), 48: (0.406, 0.444), 168: (0.525, 0.527),
                    336: (0.531, 0.539), 720: (0.578, 0.578)},
        "ecl": {48: (0.255, 0.352), 168: (0.283, 0.373), 336: (0.292, 0.382),
                720: (0.289, 0.377), 960: (0.299, 0.387)},
    }),
    "efficiency": [
        ("transformer", "table3/transformer", [],
         {"speed_1024": 1, "memory_1024": 1, "speed_4096": 1, "memory_4096": 1}),
        ("performer", "table3/performer", [],
         {"speed_1024": 1.23, "memory_1024": 0.43, "speed_4096": 3.79, "memory_4096": 0.086}),
        ("linear_attention", "table3/linear_attention", [],
         {"speed_1024": 1.58, "memory_1024": 0.37, "speed_4096": 5.35, "memory_4096": 0.067}),
        ("s4", "table3/s4", [],
         {"speed_1024": 1.58, "memory_1024": 0.43, "speed_4096": 5.19, "memory_4096": 0.091}),
    ],
    "mnist1d": [  # the smoke table: no paper, a reference accuracy
        ("s4", "mnist1d/s4", [], {"test/acc": 94.0}),
        ("s4_no_dropout", "mnist1d/s4", ["model.dropout=0.0"], {"test/acc": 94.0}),
    ],
}  # fmt: skip
CASES = [(table, *row) for table, rows in ROWS.items() for row in rows]


def load(name: str):
    return OmegaConf.load(CONFIGS / "table" / f"{name}.yaml").table


def test_the_tables_are_the_papers() -> None:
    assert available_tables(CONFIGS) == sorted(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_table_expands_to_exactly_its_rows(name: str) -> None:
    table = load(name)
    assert table.name == name and table.seeds == [0]
    assert table.source.startswith("S4 arXiv 2111.00396v3 Table") or name == "mnist1d"
    got = [(r.id, r.experiment, list(r.overrides), dict(r.paper)) for r in table.rows]
    assert got == ROWS[name]
    assert all(set(paper) <= set(table.metrics) for *_, paper in got)
    assert all(m.mode in ("min", "max") for m in table.metrics.values())
    # the jobs: one per (row, seed), in row order, with the row's own overrides
    jobs = [[f"experiment={e}", *o, "seed=0", f"table_row={i}"] for i, e, o, _ in ROWS[name]]
    assert row_overrides(table) == jobs
    seeds = OmegaConf.merge(table, {"seeds": [1, 2]})
    assert len(row_overrides(seeds)) == 2 * len(jobs)


def test_rows_can_be_picked_by_id() -> None:
    table = load("forecast_univariate")
    assert row_overrides(table, ["ettm1_96"]) == [
        ["experiment=forecasting/ettm1", "data.horizon=96", "seed=0", "table_row=ettm1_96"]
    ]
    with pytest.raises(Exception, match="Unknown table rows: \\['ettm1_24000'\\]"):
        row_overrides(table, ["ettm1_24000"])


@pytest.mark.parametrize(
    ("name", "row", "experiment", "overrides", "paper"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_row_composes_and_builds_model(compose_train, name, row, experiment, overrides, paper):
    cfg = compose_train(
        f"table={name}", f"experiment={experiment}", *overrides, "seed=0", f"table_row={row}",
        "model.n_layers=1",
    )  # fmt: skip
    assert cfg.name == experiment and cfg.table.name == name and cfg.table_row == row
    for override in overrides:
        key, _, value = override.partition("=")
        assert str(OmegaConf.select(cfg, key)) == value
    check_config(cfg)
    assert build_model(cfg) > 0


def test_table_runs_are_tagged_in_wandb(compose_train) -> None:
    cfg = compose_train("table=lra", "experiment=lra/listops", "table_row=listops", "logger=wandb")
    assert cfg.logger.wandb.group == "lra" and cfg.logger.wandb.job_type == "listops"
    plain = compose_train("logger=wandb")
    assert plain.logger.wandb.group is None and plain.logger.wandb.job_type is None


def test_unknown_table_lists_the_tables() -> None:
    with pytest.raises(SystemExit, match="Unknown table: nope\nAvailable tables:(.|\n)*lra_v1"):
        check_experiment_args(["-m", "table=nope"], CONFIGS)
    with pytest.raises(SystemExit, match="add -m"):
        check_experiment_args(["table=lra"], CONFIGS)
    check_experiment_args(["-m", "table=lra"], CONFIGS)
    with pytest.raises(SystemExit, match="one table at a time"):
        check_experiment_args(["-m", "table=lra,speech"], CONFIGS)


def run_table(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "table=mnist1d", *TINY, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def overrides_of(run_dir: Path) -> list[str]:
    return list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))


def test_multirun_launches_one_job_per_row_and_seed(tmp_path, data_dir) -> None:
    result = run_table(
        "table.seeds=[0,1]", "debug=fdr", "torch_threads=1",
        f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Launching 4 jobs" in result.stdout + result.stderr
    (sweep,) = (tmp_path / "tables" / "mnist1d").iterdir()
    runs = sorted(p.parent.relative_to(sweep).as_posix() for p in sweep.rglob(".hydra"))
    assert runs == ["s4/seed0", "s4/seed1", "s4_no_dropout/seed0", "s4_no_dropout/seed1"]
    for run in runs:
        row, seed = run.split("/")
        given = overrides_of(sweep / run)
        assert given[:1] == ["experiment=mnist1d/s4"] and f"table_row={row}" in given
        assert f"seed={seed[4:]}" in given and "table=mnist1d" in given
        assert ("model.dropout=0.0" in given) == (row == "s4_no_dropout")
        cfg = OmegaConf.load(sweep / run / ".hydra" / "config.yaml")
        assert cfg.table_row == row and cfg.seed == int(seed[4:])


def test_multirun_keeps_command_line_sweeps_and_picks_rows(tmp_path, data_dir) -> None:
    result = run_table(
        "hydra.sweeper.rows=[s4_no_dropout]", "optimizer.lr=0.01,0.02", "debug=fdr",
        "torch_threads=1", f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "tables" / "mnist1d").iterdir()
    runs = sorted(p.parent for p in sweep.rglob(".hydra"))
    assert [r.relative_to(sweep).as_posix() for r in runs] == [
        "s4_no_dropout/seed0/0",
        "s4_no_dropout/seed0/1",
    ]
    assert [overrides_of(r)[-1] for r in runs] == [f"paths.log_dir={tmp_path}"] * 2 and [
        o for r in runs for o in overrides_of(r) if o.startswith("optimizer.lr")
    ] == [
        "optimizer.lr=0.01",
        "optimizer.lr=0.02",
    ]


def test_table_sets_experiment_and_seed_itself(tmp_path) -> None:
    result = run_table("seed=1", cwd=tmp_path)
    assert result.returncode != 0
    assert "table=mnist1d sets seed per job" in result.stderr

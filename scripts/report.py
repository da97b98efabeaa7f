"""Set our numbers beside the paper's: `python scripts/report.py --table lra --runs <dir>`.

Reads every finished run under `--runs` (any folder above the run directories, e.g. the
sweep folder of `python train.py -m table=lra`): its `.hydra/config.yaml` names the table,
the row (`table_row`) and the seed; its CSV log (`csv/version_*/metrics.csv`, which every
logger config writes, wandb included) holds the metrics. Writes

    results/<table>.md           row | paper | ours (mean ± std over seeds, n runs) | difference
    results/<table>/<row>.png    learning curves: val and tracked test per seed (matplotlib)

Our number is the paper's protocol: the test metric of the checkpoint with the best
validation `monitor`. train.py tests that checkpoint after fit, and that `test` stage is the
CSV row with test/* and no val/* values; we take it. Without it, a run with test=false falls
back to the tracked test value logged beside the best validation value, marked †; a run that
should have tested (still running, or stopped early) counts as failed.
A row with no run says "not run"; a run whose metric is NaN or missing counts as failed.
With --wandb, the table is also logged as a wandb.Table in the table's group (job_type report);
with --readme README.md, its `<!-- report:<table> -->` block gets the table.
Exits 1 when the folder holds no finished run of the table, 2 when two runs share a row and
seed (two sweeps under one folder: point --runs at one).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = "†"


@dataclass
class Run:
    """One finished run: where, which row and seed, its CSV rows and its final values."""

    path: Path
    row: str
    seed: int | None
    log: list[dict[str, float]]
    values: dict[str, float] = field(default_factory=dict)  # metric -> value; NaN if missing
    tracked: bool = False  # values are the tracked test at the best val row (no final test)
    time_s: float | None = None  # training wall time: the sum of time/epoch_s


def load_table(name: str, config_dir: Path) -> dict[str, Any]:
    """The `table` node of configs/table/<name>.yaml (rows, seeds, metrics, title, source)."""
    path = config_dir / "table" / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in (config_dir / "table").glob("*.yaml"))
        raise SystemExit(f"Unknown table: {name}\nAvailable tables:\n  " + "\n  ".join(names))
    return OmegaConf.to_container(OmegaConf.load(path).table, resolve=False)


def read_log(run_dir: Path) -> list[dict[str, float]] | None:
    """The rows of every csv/version_*/metrics.csv in version order (a resume adds a version),
    empty cells dropped; None without any."""
    versions = sorted(
        (run_dir / "csv").glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[1]),
    )
    if not versions:
        return None
    rows = []
    for path in versions:
        with open(path) as f:
            rows += [{k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)]
    return rows


def final_values(
    log: list[dict[str, float]], metrics: list[str], monitor: str, mode: str, tests: bool = False
) -> tuple[dict[str, float], bool]:
    """({metric: value}, tracked): the final test row's values, else (tracked=True) the
    tracked test values beside the best `monitor` (the first best, as ModelCheckpoint keeps).
    A run configured to test after fit (`tests`) without a test row is still running or stopped
    early (e.g. a non-finite loss): all NaN, reported as failed, never a partial value."""
    tested = [r for r in log if any(k.startswith("test/") for k in r) and not _has_val(r)]
    if tested:
        row = tested[-1]
        return {m: row.get(m, math.nan) for m in metrics}, False
    if tests:
        return {m: math.nan for m in metrics}, False
    scored = [r for r in log if monitor in r and not math.isnan(r[monitor])]
    if not scored:
        return {m: math.nan for m in metrics}, False
    pick = min if mode == "min" else max
    best = pick(scored, key=lambda r: r[monitor])  # min/max return the first of equal values
    return {m: best.get(m, math.nan) for m in metrics}, True


def _has_val(row: dict[str, float]) -> bool:
    return any(k.startswith("val/") for k in row)


def find_runs(root: Path, table: dict[str, Any]) -> tuple[list[Run], list[Path]]:
    """The finished runs of `table` under root, and the run dirs of it without a CSV log."""
    runs, unfinished = [], []
    metrics = list(table["metrics"])
    for config_path in sorted(root.rglob(".hydra/config.yaml")):
        run_dir = config_path.parent.parent
        cfg = OmegaConf.to_container(OmegaConf.load(config_path), resolve=False)
        if (cfg.get("table") or {}).get("name") != table["name"]:
            continue
        log = read_log(run_dir)
        if log is None:
            unfinished.append(run_dir)
            continue
        run = Run(run_dir, str(cfg.get("table_row")), cfg.get("seed"), log)
        run.values, run.tracked = final_values(
            log,
            metrics,
            cfg.get("monitor", "val/loss"),
            cfg.get("mode", "min"),
            tests=bool(cfg.get("test", False)) and bool(cfg.get("train", True)),
        )
        if all(math.isnan(v) for v in run.values.values()):
            run.tracked = False
        times = [r["time/epoch_s"] for r in log if "time/epoch_s" in r]
        run.time_s = sum(times) if times else None
        runs.append(run)
    return runs, unfinished


def fmt(value: float, digits: int, signed: bool = False) -> str:
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def cells(table: dict[str, Any], row: dict[str, Any], metric: str, runs: list[Run]) -> list[str]:
    """[paper, ours, difference] of one row and metric (ours and paper in the paper's unit)."""
    spec = table["metrics"][metric]
    scale, digits = spec.get("scale", 1), spec.get("digits", 3)
    paper = (row.get("paper") or {}).get(metric)
    paper_cell = "–" if paper is None else fmt(float(paper), digits)
    if not runs:
        return [paper_cell, "not run", "–"]
    ok = [r.values[metric] * scale for r in runs if not math.isnan(r.values[metric])]
    failed = len(runs) - len(ok)
    if not ok:
        return [paper_cell, f"failed (n={failed})", "–"]
    mean = statistics.fmean(ok)
    ours = fmt(mean, digits)
    if len(ok) > 1:
        ours += f" ± {fmt(statistics.stdev(ok), digits)}"
    mark = FALLBACK if any(r.tracked for r in runs) else ""
    ours += f" (n={len(ok)}{mark}" + (f"; {failed} failed)" if failed else ")")
    if paper is None:
        return [paper_cell, ours, "–"]
    diff = mean - float(paper)
    better = diff > 0 if spec.get("mode", "max") == "max" else diff < 0
    verdict = "" if diff == 0 else (" (better)" if better else " (worse)")
    return [paper_cell, ours, fmt(diff, digits, signed=True) + verdict]


def report_rows(table: dict[str, Any], runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """The markdown table's header and rows: one line per row (per row and metric if several)."""
    metrics = list(table["metrics"])
    several = len(metrics) > 1
    header = ["row", *(["metric"] if several else []), "paper", "ours", "difference", "time / run"]
    lines = []
    for row in table["rows"]:
        mine = [r for r in runs if r.row == row["id"]]
        times = [r.time_s for r in mine if r.time_s is not None]
        time_cell = fmt_time(statistics.fmean(times)) if times else "–"
        for i, metric in enumerate(m for m in metrics if m in (row.get("paper") or {})):
            label = row["label"] if i == 0 else ""
            kind = [table["metrics"][metric].get("label", metric)] if several else []
            values = cells(table, row, metric, mine)
            lines.append([label, *kind, *values, time_cell if i == 0 else ""])
    return header, lines


def markdown(table: dict[str, Any], runs: list[Run], runs_dir: Path) -> str:
    header, lines = report_rows(table, runs)
    metrics = table["metrics"]
    unit = "" if len(metrics) > 1 else f" Metric: {next(iter(metrics.values()))['label']}."
    text = [
        f"# {table['title']}",
        "",
        f"Paper: {table['source']}. Ours: runs under `{runs_dir}`, mean ± sample std over seeds "
        f"(n = runs), the test metric of the best-validation checkpoint.{unit} "
        "Difference: ours − paper.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(line) + " |" for line in lines),
    ]
    if any(r.tracked for r in runs):
        text += [
            "",
            f"{FALLBACK} some runs have no final test (test=false, or stopped after fit): their "
            "tracked test value beside the best validation value stands in.",
        ]
    return "\n".join(text) + "\n"


def plot_curves(table: dict[str, Any], runs: list[Run], out_dir: Path) -> list[Path]:
    """results/<table>/<row>.png: val (dashed) and tracked test (solid) per seed, per metric."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[plots]'): no learning curves")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    metrics = list(table["metrics"])
    for row in table["rows"]:
        mine = sorted((r for r in runs if r.row == row["id"]), key=lambda r: r.seed or 0)
        if not mine:
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            val = "val/" + metric.partition("/")[2]
            for i, run in enumerate(mine):
                color = f"C{i}"
                for key, style in ((val, "--"), (metric, "-")):
                    points = [(r["step"], r[key]) for r in run.log if key in r and _has_val(r)]
                    if points:
                        xs, ys = zip(*points, strict=True)
                        ax.plot(xs, ys, style, color=color, label=f"{key} seed {run.seed}")
            ax.set_xlabel("step")
            ax.set_title(table["metrics"][metric].get("label", metric))
            if ax.has_data():
                ax.legend(fontsize="small")
        fig.suptitle(f"{table['name']}: {row['label']}")
        fig.tight_layout()
        path = out_dir / f"{row['id']}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def log_to_wandb(table: dict[str, Any], runs: list[Run]) -> None:
    """The report as a wandb.Table in the table's group (the active run, else a new one)."""
    import wandb

    header, lines = report_rows(table, runs)
    own = wandb.run is None
    run = wandb.run or wandb.init(
        project="s4lab", group=table["name"], job_type="report", name=f"report/{table['name']}"
    )
    run.log({f"report/{table['name']}": wandb.Table(columns=header, data=lines)})
    if own:
        wandb.finish()


def update_readme(readme: Path, name: str, text: str) -> None:
    """Replace the README block between `<!-- report:<name> -->` and `<!-- /report:<name> -->`
    with the report's table (its `|` lines but the "not run" ones), so the README's numbers
    come from results/."""
    begin, end = f"<!-- report:{name} -->", f"<!-- /report:{name} -->"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"{readme} has no block {begin} ... {end} to fill")
    head, _, rest = content.partition(begin)
    _, _, tail = rest.partition(end)
    lines = text.splitlines()
    table = "\n".join(ln for ln in lines if ln.startswith("|") and "| not run |" not in ln)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--table", required=True, help="a configs/table/<name>.yaml name")
    parser.add_argument("--runs", required=True, type=Path, help="a folder above the run dirs")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--configs", type=Path, default=ROOT / "configs")
    parser.add_argument("--wandb", action="store_true", help="also log a wandb.Table")
    parser.add_argument("--readme", type=Path, help="fill its <!-- report:<table> --> block")
    args = parser.parse_args(argv)

    table = load_table(args.table, args.configs)
    runs, unfinished = find_runs(args.runs, table)
    for run_dir in unfinished:
        print(f"no CSV log yet (running or failed at start): {run_dir}", file=sys.stderr)
    rows = {row["id"] for row in table["rows"]}
    for run in [r for r in runs if r.row not in rows]:
        print(f"ignored, row {run.row!r} is not in table {args.table}: {run.path}", file=sys.stderr)
    runs = [r for r in runs if r.row in rows]
    seen: dict[tuple[str, Any], Path] = {}
    for run in runs:  # seeds of one config only: two runs of a (row, seed) are two configs
        if (run.row, run.seed) in seen:
            print(
                f"two runs of row {run.row!r} seed {run.seed}: {seen[run.row, run.seed]} and "
                f"{run.path}; point --runs at one sweep folder",
                file=sys.stderr,
            )
            return 2
        seen[run.row, run.seed] = run.path
    if not runs:
        print(f"No finished runs of table {args.table} under {args.runs}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.table}.md"
    path.write_text(markdown(table, runs, args.runs))
    if args.readme:
        update_readme(args.readme, args.table, path.read_text())
    plots = plot_curves(table, runs, args.out / args.table)
    print(path.read_text())
    print(f"Wrote {path} and {len(plots)} learning-curve PNGs under {args.out / args.table}")
    if args.wandb:
        log_to_wandb(table, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

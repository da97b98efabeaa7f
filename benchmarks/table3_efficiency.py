"""The paper's Table 3: training-step time and peak memory of whole models, S4 (N = 256) against
the Transformer, Performer and linear attention, relative to the Transformer, fp32 and bf16.

    python benchmarks/table3_efficiency.py --device cuda --out table3.jsonl \
        --markdown table3.md --report-dir table3_runs
    python scripts/report.py --table efficiency --runs table3_runs/fp32
    python benchmarks/table3_efficiency.py --device cpu --threads 1 --batch 1 \
        --precisions fp32 --warmup 1 --repeats 2 \
        --out benchmarks/results/table3_cpu.jsonl --markdown benchmarks/results/table3_cpu.md

Models: the rows of configs/table/efficiency.yaml, each its experiment (table3/<name>: 4 layers,
H = 256, LRA Text, batch 32) composed as `python train.py -m table=efficiency` composes the job,
with data.l_max = L and, given --batch, data.batch_size = B; the task is built by
build_task + task.build(sizes), the sizes from the datamodule's constructor
(param_counts.data_sizes: LRA Text's vocabulary is its documented 135; no data is read).
--backend sets the S4 kernels' backend. Step, in train mode: logits = task(x) for random tokens
x (B, L), cross-entropy against random labels, backward (benchmarks/timing.py: time, peak memory
above the process's state before the row, one subprocess per row on CPU).
    speed = ms(Transformer) / ms(model),   memory = peak(model) / peak(Transformer)
at the same L and precision. The paper's numbers come from the table's YAML.
--report-dir DIR writes, per precision, the run folders scripts/report.py reads:
    DIR/<precision>/<row>/seed0/.hydra/config.yaml          the job's composed config
    DIR/<precision>/<row>/seed0/csv/version_0/metrics.csv   one test-stage row
whose metrics are speed_<L> and memory_<L>, beside the absolute test/ms_<L> and test/peak_gb_<L>
(report.py takes the CSV row with test/* keys as the run's final test); NaN where a model or
the Transformer was not measured at that L.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from param_counts import data_sizes
from rows import RowWriter, cell, heading, markdown_table, number, reasons
from timing import (
    PRECISIONS,
    Row,
    add_arguments,
    autocast,
    child,
    kernel_backend,
    measure_step,
    run_rows,
    script_command,
    setup,
)

from s4lab.checkpoint import build_task
from s4lab.ssm.backend import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
TABLE = "efficiency"
REFERENCE = "transformer"  # the row the others are relative to
# The primer (see timing.measure_step): L = 64 and a narrow one-block model, since building S4
# (N = 256) at full width takes ~13 s per layer on one CPU thread (dense Ā^ℓ for C̃).
PRIME_L = 64
PRIMER = ["model.d_model=16", "model.n_layers=1"]


@cache
def table() -> dict[str, Any]:
    """The `table` node of configs/table/efficiency.yaml: rows (id, label, experiment, paper)."""
    path = ROOT / "configs" / "table" / f"{TABLE}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path).table, resolve=False)


def table_row(row_id: str) -> dict[str, Any]:
    return next(r for r in table()["rows"] if r["id"] == row_id)


def compose_job(row_id: str, overrides: list[str]) -> DictConfig:
    """The train config of the table's job for `row_id` (seed 0), plus `overrides`."""
    row = table_row(row_id)
    job = [f"experiment={row['experiment']}", *row["overrides"], f"table={TABLE}"]
    job += [f"table_row={row_id}", "seed=0", "paths.data_dir=/nonexistent", *overrides]
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        return compose("train", overrides=job)


def batch_overrides(batch: int | None) -> list[str]:
    return [] if batch is None else [f"data.batch_size={batch}"]


def prepare(spec: Row, args: argparse.Namespace) -> tuple[Callable[[], None], Row]:
    """The row's training step on its whole model, and what the row records about it."""
    device = torch.device(args.device)
    shape = [f"data.l_max={spec['L']}", f"data.batch_size={spec['B']}"]
    cfg = compose_job(spec["what"], shape + (PRIMER if spec.get("primer") else []))
    if "kernel" in cfg.model.layer:
        cfg.model.layer.kernel.backend = args.backend
    sizes, _ = data_sizes(cfg)
    task = build_task(cfg)
    task.build(sizes)
    task = task.to(device).train()
    B, L = spec["B"], spec["L"]
    x = torch.randint(0, sizes.vocab_size, (B, L), device=device)  # token ids
    y = torch.randint(0, sizes.d_output, (B,), device=device)

    def step() -> None:
        task.zero_grad(set_to_none=True)
        with autocast(device, spec["precision"]):
            logits = task(x)  # (B, d_output)
        F.cross_entropy(logits.float(), y).backward()

    facts = {"H": cfg.model.d_model, "n_layers": cfg.model.n_layers, "vocab": sizes.vocab_size}
    facts |= {"params": sum(p.numel() for p in task.parameters())}
    return step, facts | kernel_backend(task, device)


def measure(spec: Row, args: argparse.Namespace) -> Row:
    """Time one model's training step in this process, after one step of a small copy."""
    primer = spec | {"L": min(spec["L"], PRIME_L), "B": 1, "primer": True}
    return measure_step(lambda s: prepare(s, args), spec, primer, args)


def relative(rows: list[Row]) -> dict[tuple[str, str, int], tuple[float, float]]:
    """(precision, row id, L) -> (speed, memory) relative to the Transformer's row."""
    ok = {(r["precision"], r["what"], r["L"]): r for r in rows if r.get("status") == "ok"}
    out = {}
    for (precision, what, L), row in ok.items():
        ref = ok.get((precision, REFERENCE, L))
        if ref is not None:
            speed = ref["ms_fwd_bwd"] / row["ms_fwd_bwd"]
            memory = row["peak_gb"] / ref["peak_gb"] if ref["peak_gb"] else math.nan
            out[precision, what, L] = (speed, memory)
    return out


def render(rows: list[Row]) -> str:
    """Per precision: each model and L, absolute and relative time and memory, the paper's."""
    ratios = relative(rows)
    header = ["model", "L", "B", "params", "ms", "peak GB", "speed", "paper", "memory", "paper"]
    text = [heading("Table 3: efficiency vs efficient Transformers, forward + backward", rows)]
    for precision in dict.fromkeys(r["precision"] for r in rows):
        lines = []
        for r in (r for r in rows if r["precision"] == precision):
            speed, memory = ratios.get((precision, r["what"], r["L"]), (None, None))
            paper = table_row(r["what"])["paper"]
            lines.append(
                [table_row(r["what"])["label"], f"{r['L']:,}", str(r["B"])]
                + [f"{r['params']:,}" if "params" in r else "–"]
                + [cell(r, "ms_fwd_bwd"), cell(r, "peak_gb", 3)]
                + [number(speed), number(paper.get(f"speed_{r['L']}"))]
                + [number(memory, 3), number(paper.get(f"memory_{r['L']}"), 3)]
            )
        text += ["", f"{precision}:", "", markdown_table(header, lines)]
    text += [
        "",
        "speed = ms(Transformer) / ms(model), memory = peak(model) / peak(Transformer), at the "
        "same L and precision; paper: S4 arXiv 2111.00396v3 Table 3 (A100, batch 32). Peak: "
        "memory above the process's state before the row.",
    ]
    notes = reasons(rows)
    return "\n".join(text + (["", "Not measured:", *notes] if notes else [])) + "\n"


def write_report_dir(root: Path, rows: list[Row], batch: int | None) -> None:
    """The run folders report.py reads for table=efficiency, one tree per precision."""
    ratios = relative(rows)
    for precision in dict.fromkeys(r["precision"] for r in rows):
        for row_id in dict.fromkeys(r["what"] for r in rows):
            run = root / precision / row_id / "seed0"
            (run / ".hydra").mkdir(parents=True, exist_ok=True)
            config = run / ".hydra" / "config.yaml"
            if not config.exists():
                OmegaConf.save(compose_job(row_id, batch_overrides(batch)), config)
            metrics: dict[str, float] = {}
            for r in rows:
                if r["precision"] == precision and r["what"] == row_id:
                    speed, memory = ratios.get((precision, row_id, r["L"]), (math.nan, math.nan))
                    L, ok = r["L"], r.get("status") == "ok"
                    metrics[f"speed_{L}"], metrics[f"memory_{L}"] = speed, memory
                    metrics[f"test/ms_{L}"] = r["ms_fwd_bwd"] if ok else math.nan
                    metrics[f"test/peak_gb_{L}"] = r["peak_gb"] if ok else math.nan
            (run / "csv" / "version_0").mkdir(parents=True, exist_ok=True)
            with open(run / "csv" / "version_0" / "metrics.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, sorted(metrics))
                writer.writeheader()
                writer.writerow(metrics)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, warmup=3, repeats=10)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, help="default: the experiment's data.batch_size")
    parser.add_argument("--rows", nargs="+", help="table row ids (default: all)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="S4's kernels")
    parser.add_argument("--report-dir", type=Path, help="run folders for scripts/report.py")
    args = parser.parse_args(argv)
    setup(args)
    if args.one:
        child(measure, args)
        return []
    ids = args.rows or [r["id"] for r in table()["rows"]]
    unknown = sorted(set(ids) - {r["id"] for r in table()["rows"]})
    if unknown:
        parser.error(f"unknown rows {unknown}; the table has {[r['id'] for r in table()['rows']]}")
    batch = {i: compose_job(i, batch_overrides(args.batch)).data.batch_size for i in ids}
    specs = [
        {"what": row_id, "L": L, "B": batch[row_id], "precision": precision}
        for precision in args.precisions
        for L in args.lengths
        for row_id in ids
    ]
    writer = RowWriter(args.out, args.markdown, render, args.note)
    for row in run_rows(specs, measure, args, script_command(__file__, argv)):
        writer.add(row)
        if args.report_dir:
            write_report_dir(args.report_dir, writer.rows, args.batch)
    return writer.rows


if __name__ == "__main__":
    main()

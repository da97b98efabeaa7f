"""The paper's Table 2: one S4 layer against one LSSL layer, forward + backward time and memory,
speed-up and memory reduction of S4 beside the paper's.

    python benchmarks/table2_lssl.py --device cuda --out table2.jsonl --markdown table2.md
    python benchmarks/table2_lssl.py --device cpu --threads 1 --dims 128 256 \
        --warmup 1 --repeats 2 \
        --out benchmarks/results/table2_cpu.jsonl --markdown benchmarks/results/table2_cpu.md

Setup (S4 arXiv 2111.00396v3 Table 2, /work/shared/reference/official_s4.md): one layer,
H = 128, 256, 512 (--dims); LSSL with N = H, S4 with N = H/4 "to match parameters"; single
A100, fp32. The paper gives neither L nor the batch: we take L = 1,024 and B = 1 (--L,
--batch). LSSL = s4lab LSSL (dense HiPPO-LegS A, kernel C Ā^l B̄ by Krylov doubling) with A, B
and Δ trained (learn_A = "shared", learn_dt), as the paper's trained LSSL; S4 = s4lab S4Block
(GELU, GLU output linear) around S4Kernel with kernel backend --backend. Step: forward, then
backward of a fixed random dy (benchmarks/timing.py: time, peak memory above the process's
state before the row, one subprocess per row on CPU).
    speed-up = ms(LSSL) / ms(S4),   memory reduction = peak(LSSL) / peak(S4)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import torch
from rows import RowWriter, cell, heading, markdown_table, number, reasons
from timing import (
    Row,
    add_arguments,
    child,
    kernel_backend,
    layer_step,
    measure_step,
    run_rows,
    script_command,
    setup,
)
from torch import nn

from s4lab.models import LSSL, S4Block, S4Kernel
from s4lab.ssm.backend import BACKENDS

# S4 arXiv 2111.00396v3 Table 2, per H: training step ms (LSSL, S4), memory MB (LSSL, S4),
# and the speed-up and memory reduction as printed.
PAPER = {
    128: {"ms": (9.32, 4.77), "mb": (222.1, 5.3), "speedup": 1.9, "reduction": 42.0},
    256: {"ms": (20.6, 3.07), "mb": (1685.0, 12.6), "speedup": 6.7, "reduction": 133.0},
    512: {"ms": (140.7, 4.75), "mb": (13140.0, 33.5), "speedup": 29.6, "reduction": 392.0},
}
PRIME_L = 64  # the primer's length (see timing.measure_step); LSSL's cost grows with log L


def build(spec: Row, backend: str) -> nn.Module:
    """The row's layer (on CPU)."""
    if spec["what"] == "lssl":
        return LSSL(d_model=spec["H"], d_state=spec["N"], learn_A="shared", learn_dt=True)
    kernel = partial(S4Kernel, d_state=spec["N"], backend=backend)
    return S4Block(d_model=spec["H"], kernel=kernel, l_max=spec["L"])


def prepare(spec: Row, args: argparse.Namespace) -> tuple[Callable[[], None], Row]:
    """The row's step (forward + backward of its layer) and what the row records about it."""
    device = torch.device(args.device)
    layer = build(spec, args.backend).to(device)
    facts = kernel_backend(layer, device) | {"params": sum(p.numel() for p in layer.parameters())}
    return layer_step(layer, spec, device), facts


def measure(spec: Row, args: argparse.Namespace) -> Row:
    """Time one row in this process, after one step at L <= PRIME_L."""
    primer = spec | {"L": min(spec["L"], PRIME_L)}
    return measure_step(lambda s: prepare(s, args), spec, primer, args)


def ratio(numerator: Row | None, denominator: Row | None, key: str) -> float | None:
    """numerator[key] / denominator[key] when both rows were measured (and it is finite)."""
    if not numerator or not denominator:
        return None
    if numerator.get("status") != "ok" or denominator.get("status") != "ok":
        return None
    return numerator[key] / denominator[key] if denominator[key] else None


def render(rows: list[Row]) -> str:
    """Table 2's layout: per H, LSSL and S4 time and memory, our ratios beside the paper's."""
    by_dim: dict[int, dict[str, Row]] = {}
    for row in rows:
        by_dim.setdefault(row["H"], {})[row["what"]] = row
    header = ["H", "N LSSL / S4", "LSSL ms", "S4 ms", "speed-up", "paper"]
    header += ["LSSL MB", "S4 MB", "memory reduction", "paper"]
    lines = []
    for H, pair in by_dim.items():
        lssl, s4 = pair.get("lssl"), pair.get("s4")
        paper = PAPER.get(H)
        speedup, reduction = ratio(lssl, s4, "ms_fwd_bwd"), ratio(lssl, s4, "peak_gb")
        mb = [None if r is None else r | {"mb": r.get("peak_gb", 0) * 1024} for r in (lssl, s4)]
        lines.append(
            [str(H), f"{H} / {H // 4}", cell(lssl, "ms_fwd_bwd"), cell(s4, "ms_fwd_bwd")]
            + [f"{number(speedup, 1)}x", f"{paper['speedup']}x" if paper else "–"]
            + [cell(mb[0], "mb", 1), cell(mb[1], "mb", 1), f"{number(reduction, 1)}x"]
            + [f"{paper['reduction']:g}x" if paper else "–"]
        )
    first = rows[0]
    paper_ms = ", ".join(f"H={h}: {p['ms'][0]} / {p['ms'][1]} ms" for h, p in PAPER.items())
    paper_mb = ", ".join(f"{p['mb'][0]:g} / {p['mb'][1]:g} MB" for p in PAPER.values())
    text = [
        heading("Table 2: S4 vs LSSL, one layer, forward + backward", rows),
        "",
        f"L = {first['L']:,}, B = {first['B']}, {first['precision']}. Memory: peak above the "
        "process's state before the row, MB = 2^20 bytes.",
        "",
        markdown_table(header, lines),
        "",
        f"Paper (one A100; L and B not stated), LSSL / S4: {paper_ms}; {paper_mb}.",
    ]
    notes = reasons(rows)
    return "\n".join(text + (["", "Not measured:", *notes] if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, warmup=3, repeats=10)
    parser.add_argument("--dims", type=int, nargs="+", default=list(PAPER), help="H values")
    parser.add_argument("--L", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="S4's kernels")
    args = parser.parse_args(argv)
    setup(args)
    if args.one:
        child(measure, args)
        return []
    shape = {"L": args.L, "B": args.batch, "precision": "fp32"}
    specs = [
        {"what": what, "H": H, "N": H if what == "lssl" else H // 4} | shape
        for H in args.dims
        for what in ("lssl", "s4")
    ]
    writer = RowWriter(args.out, args.markdown, render, args.note)
    for row in run_rows(specs, measure, args, script_command(__file__, argv)):
        writer.add(row)
    return writer.rows


if __name__ == "__main__":
    main()

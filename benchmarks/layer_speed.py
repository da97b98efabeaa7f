"""Forward + backward time and peak memory of S4Block and of its bare kernel, one JSON line per row.

    python benchmarks/layer_speed.py --device cpu --H 128 --N 64 --tokens 16384 \
        --lengths 1024 4096 16384 65536 > benchmarks/results/layer_speed_cpu.jsonl

B = max(1, tokens // L), so every row moves about the same data (the anchor-timing protocol).
Step: the block's output y (B, L, H), or the kernel K̄ (C, H, L) alone, then y.square().mean()
backward. Timing and peak memory (above the process's state before the row; on CPU one fresh
subprocess per row): benchmarks/timing.py. benchmarks/layer_scaling.py sets the layer beside the
bandwidth floor, attention and the official layer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

import torch
from rows import RowWriter, cell, heading, markdown_table
from timing import (
    Row,
    add_arguments,
    child,
    kernel_backend,
    measure_step,
    run_rows,
    script_command,
    setup,
)

from s4lab.models import S4Block, S4DKernel, S4Kernel
from s4lab.ssm.backend import BACKENDS

WHAT = ("block", "kernel")
PRIME_L = 256  # the primer's length (see timing.measure_step)


def prepare(spec: Row, args: argparse.Namespace) -> tuple[Callable[[], None], Row]:
    """The row's step: the block's or the kernel's forward, then backward of the mean square."""
    device = torch.device(args.device)
    kernel = S4Kernel if spec["mode"] == "s4" else S4DKernel
    kernel = partial(kernel, d_state=spec["N"], backend=args.backend)
    block = S4Block(d_model=spec["H"], kernel=kernel, l_max=spec["L"]).to(device)
    x = torch.randn(spec["B"], spec["L"], spec["H"], device=device, requires_grad=True)

    def step() -> None:
        block.zero_grad(set_to_none=True)
        out = block(x) if spec["what"] == "block" else block.kernel(spec["L"])
        out.square().mean().backward()

    return step, kernel_backend(block, device)


def measure(spec: Row, args: argparse.Namespace) -> Row:
    """Time one configuration in this process, after one step at L <= PRIME_L, B = 1."""
    primer = spec | {"L": min(spec["L"], PRIME_L), "B": 1}
    return measure_step(lambda s: prepare(s, args), spec, primer, args)


def render(rows: list[Row]) -> str:
    header = ["what", "mode", "L", "B", "backend", "ms", "peak GB"]
    lines = [
        [r["what"], r["mode"], f"{r['L']:,}", str(r["B"]), str(r.get("backend_used", "–"))]
        + [cell(r, "ms_fwd_bwd"), cell(r, "peak_gb", 3)]
        for r in rows
    ]
    first = rows[0]
    title = f"S4Block forward + backward, H = {first['H']}, N = {first['N']}"
    return f"{heading(title, rows)}\n\n{markdown_table(header, lines)}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, warmup=2, repeats=5)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16384, help="B x L per row")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--modes", nargs="+", choices=["s4", "s4d"], default=["s4", "s4d"])
    parser.add_argument(
        "--what", nargs="+", choices=["block", "kernel"], default=["block", "kernel"]
    )
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    args = parser.parse_args(argv)
    setup(args)
    if args.one:
        child(measure, args)
        return
    specs = [
        {
            "what": what,
            "mode": mode,
            "L": L,
            "B": max(1, args.tokens // L),
            "H": args.H,
            "N": args.N,
        }
        for what in args.what
        for mode in args.modes
        for L in args.lengths
    ]
    writer = RowWriter(args.out, args.markdown, render, args.note)
    for row in run_rows(specs, measure, args, script_command(__file__, argv)):
        writer.add(row)


if __name__ == "__main__":
    main()

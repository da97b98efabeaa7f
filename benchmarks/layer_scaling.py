"""One layer's forward + backward time and peak memory against L: our S4 and S4D layers beside the
memory-bandwidth floor, attention and the official layer, at B x L tokens fixed.

    python benchmarks/layer_scaling.py --device cuda --official ../shared/anchor/official-s4 \
        --out layer_scaling.jsonl --markdown layer_scaling.md        # full shapes (a GPU)
    python benchmarks/layer_scaling.py --device cpu --threads 1 --tokens 16384 \
        --lengths 1024 4096 --precisions fp32 --warmup 1 --repeats 3 \
        --official ../shared/anchor/official-s4 \
        --out benchmarks/results/layer_scaling_cpu.jsonl \
        --markdown benchmarks/results/layer_scaling_cpu.md

Protocol (/work/shared/reference/anchor_timings.md): H = 256, N = 64, B = tokens // L with
tokens = B·L = 131,072, so every row moves the same data; x (B, L, H) fp32 with requires_grad,
step = forward, then backward of a fixed random dy; TF32 allowed on CUDA. Layers (--layers):
  floor         the anchor's floor: y = x · s (one learned scalar), the bandwidth floor of any layer
                on this data, measured. Beside it the bound "bandwidth": the fewest bytes one
                forward + backward of a (B, L, H) -> (B, L, H) layer moves, read x and write y,
                read dy and write dx, 4·B·L·H·4 bytes in fp32, over the device's peak bandwidth
                (--bandwidth-gbs; on CUDA by default the datasheet value of an H100 or H200)
  s4, s4d       s4lab S4Block (GELU, GLU output linear) around S4Kernel / S4DKernel, kernel
                backend --backend (rows: the kernel's `.backend` and the one it runs there)
  attention     s4lab MultiheadAttention: causal, 8 heads, qkv and output projections, SDPA
  official-s4,  the official S4Block (mode dplr / diag, transposed=False, same GELU + GLU), from
  official-s4d  --official PATH, backends --official-backends (default cuda and naive on
                CUDA, naive on CPU); rows say whether its CUDA extension loaded. Without PATH
                or its imports (einops, scipy) these rows are skipped with the reason.
Each layer but the floor runs in every --precisions (bf16: autocast). Timing and memory:
benchmarks/timing.py; a row that runs out of memory is recorded as "oom".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from official import load_official, official_backend, official_problem
from rows import RowWriter, cell, heading, markdown_table, number, reasons
from timing import (
    PRECISIONS,
    Row,
    add_arguments,
    child,
    device_name,
    kernel_backend,
    layer_step,
    measure_step,
    run_rows,
    script_command,
    setup,
)
from torch import Tensor, nn

from s4lab.models import MultiheadAttention, S4Block, S4DKernel, S4Kernel
from s4lab.ssm.backend import BACKENDS

LAYERS = ("floor", "s4", "s4d", "attention", "official-s4", "official-s4d")
ATTENTION_HEADS = 8
PRIME_L = 256  # the primer's length (see timing.measure_step)
# Peak memory bandwidth (GB/s) by device name, from the NVIDIA datasheets; most specific first.
PEAK_BANDWIDTH_GBS = (
    ("H200", 4800.0),  # H200 SXM / NVL, 141 GB HBM3e
    ("H100 PCIe", 2000.0),  # 80 GB HBM2e
    ("H100 NVL", 3900.0),  # 94 GB HBM3
    ("H100", 3350.0),  # H100 SXM, 80 GB HBM3
)


class Scale(nn.Module):
    """The anchor's floor layer: y = x · s, one elementwise op, (B, L, H) -> (B, L, H)."""

    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.s


class FirstOutput(nn.Module):
    """The official S4Block returns (y, state); keep y (B, L, H)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)[0]


def datasheet_bandwidth_gbs(name: str) -> float | None:
    """The peak memory bandwidth of a GPU by its name, when PEAK_BANDWIDTH_GBS knows it."""
    return next((gbs for key, gbs in PEAK_BANDWIDTH_GBS if key in name), None)


def peak_bandwidth_gbs(device: torch.device, given: float | None) -> float | None:
    """--bandwidth-gbs, else the datasheet value for a known GPU, else None."""
    if given is not None or device.type != "cuda":
        return given
    return datasheet_bandwidth_gbs(device_name(device))


def bandwidth_row(spec: Row, gbs: float | None) -> Row:
    """The bandwidth bound 4·B·L·H·4 bytes / peak bandwidth, or a skipped row without one."""
    if gbs is None:
        reason = "no peak bandwidth for this device: pass --bandwidth-gbs"
        return spec | {"status": "skipped", "reason": reason}
    moved = 4 * spec["B"] * spec["L"] * spec["H"] * 4  # x, y, dy, dx in fp32
    ms = moved / (gbs * 1e9) * 1e3
    return spec | {"bytes": moved, "bandwidth_gbs": gbs, "ms_fwd_bwd": ms, "status": "ok"}


def specs(args: argparse.Namespace, device: torch.device) -> list[Row]:
    """Every row to run, in order: per L, the floor, then each layer in each precision."""
    gbs = peak_bandwidth_gbs(device, args.bandwidth_gbs)
    problem = official_problem(args.official) if any("official" in x for x in args.layers) else None
    if problem:
        print(problem, flush=True)
    official_backends = args.official_backends or (
        ["cuda", "naive"] if device.type == "cuda" else ["naive"]
    )
    rows = []
    for L in args.lengths:
        shape = {"L": L, "B": max(1, args.tokens // L), "H": args.H}
        if "floor" in args.layers:
            rows.append(bandwidth_row({"what": "bandwidth", **shape, "precision": "fp32"}, gbs))
            rows.append({"what": "floor", **shape, "precision": "fp32"})
        for precision in args.precisions:
            for what in args.layers:
                spec = {"what": what, **shape, "precision": precision}
                if what in ("s4", "s4d"):
                    rows.append(spec | {"N": args.N, "backend": args.backend})
                elif what == "attention":
                    rows.append(spec | {"n_heads": ATTENTION_HEADS})
                elif what.startswith("official"):
                    skip = {"status": "skipped", "reason": problem} if problem else {}
                    for backend in official_backends:
                        rows.append(spec | {"N": args.N, "backend": backend} | skip)
    return rows


def prepare(spec: Row, args: argparse.Namespace) -> tuple[Callable[[], None], Row]:
    """The row's step (forward + backward of its layer) and what the row records about it."""
    device = torch.device(args.device)
    layer, facts = build(spec, args, device)
    facts |= {"params": sum(p.numel() for p in layer.parameters())}
    return layer_step(layer, spec, device), facts


def build(spec: Row, args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, Row]:
    """The row's layer on `device`, and the backend it runs (and the official extension's state)."""
    what, H, L = spec["what"], spec["H"], spec["L"]
    if what == "floor":
        return Scale().to(device), {"backend": None, "backend_used": None}
    if what in ("s4", "s4d"):
        kernel = partial(S4Kernel if what == "s4" else S4DKernel, d_state=spec["N"])
        layer = S4Block(d_model=H, kernel=partial(kernel, backend=spec["backend"]), l_max=L)
        return layer.to(device), kernel_backend(layer, device)
    if what == "attention":
        layer = MultiheadAttention(d_model=H, n_heads=spec["n_heads"], causal=True)
        return layer.to(device), {"backend": None, "backend_used": "sdpa"}
    official = load_official(args.official)
    mode = "dplr" if what == "official-s4" else "diag"
    layer = official.S4Block(
        H, l_max=L, d_state=spec["N"], mode=mode, backend=spec["backend"], transposed=False
    )
    return FirstOutput(layer).to(device), {
        "backend": spec["backend"],
        "backend_used": official_backend(official, spec["backend"], device),
        "cuda_extension": bool(official.has_cuda_extension),
    }


def measure(spec: Row, args: argparse.Namespace) -> Row:
    """Time one row in this process, after one step at L <= PRIME_L, B = 1."""
    primer = spec | {"L": min(spec["L"], PRIME_L), "B": 1}
    return measure_step(lambda s: prepare(s, args), spec, primer, args)


def label(row: Row) -> str:
    """The column of a row: layer, backend asked for, precision."""
    what, precision = row["what"], row["precision"]
    if what == "bandwidth":
        return "bandwidth bound (computed, not timed)"
    if what == "floor":
        return "floor x·s"
    if what == "attention":
        return f"attention {precision}"
    if what in ("s4", "s4d"):  # ours: the backend that ran
        return f"{what.upper()} {row.get('backend_used', row['backend'])} {precision}"
    # official: the backend asked for (a missing extension turns cuda into naive, see the note)
    name = {"official-s4": "official S4", "official-s4d": "official S4D"}[what]
    return f"{name} {row['backend']} {precision}"


def pivot(rows: list[Row], columns: list[str], key: str, digits: int) -> list[list[str]]:
    """One line per (L, B), one cell per column: the rows' `key`, or their status."""
    by_length: dict[tuple[int, int], dict[str, Row]] = {}
    for row in rows:
        by_length.setdefault((row["L"], row["B"]), {})[label(row)] = row
    return [
        [f"{L:,} ({B})", *(cell(cells.get(c), key, digits) for c in columns)]
        for (L, B), cells in by_length.items()
    ]


def render(rows: list[Row]) -> str:
    """Two tables, ms and peak GB, one line per L and one column per layer."""
    columns = list(dict.fromkeys(label(r) for r in rows))
    measured = [c for c in columns if c != "bandwidth bound (computed, not timed)"]
    first = rows[0]
    N = next((r["N"] for r in rows if "N" in r), "–")
    text = [
        heading("One layer, forward + backward", rows),
        "",
        f"H = {first['H']}, B·L = {first['B'] * first['L']:,} tokens, N = {N}. Time per step (ms):",
        "",
        markdown_table(["L (B)", *columns], pivot(rows, columns, "ms_fwd_bwd", 2)),
        "",
        "Peak memory above the process's state before the row (GB):",
        "",
        markdown_table(["L (B)", *measured], pivot(rows, measured, "peak_gb", 3)),
    ]
    bound = next((r for r in rows if r["what"] == "bandwidth" and r["status"] == "ok"), None)
    if bound:
        text += [
            "",
            f"Bandwidth bound: 4·B·L·H·4 bytes ({bound['bytes'] / 2**20:,.0f} MiB) at "
            f"{number(bound['bandwidth_gbs'], 0)} GB/s peak.",
        ]
    official = next((r for r in rows if "cuda_extension" in r), None)
    if official:
        loaded = "loaded" if official["cuda_extension"] else "not loaded (naive kernels)"
        text += ["", f"Official CUDA extension: {loaded}."]
    notes = reasons(rows)
    return "\n".join(text + (["", "Not measured:", *notes] if notes else [])) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, warmup=3, repeats=10)
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=131_072, help="B x L per row")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="our kernels'")
    parser.add_argument("--official", type=Path, help="the official S4 checkout (anchor)")
    parser.add_argument("--official-backends", nargs="+", choices=["cuda", "naive"])
    parser.add_argument("--bandwidth-gbs", type=float, help="peak memory bandwidth, GB/s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    device = setup(args)
    if args.one:
        child(measure, args)
        return []
    writer = RowWriter(args.out, args.markdown, render, args.note)
    command = script_command(__file__, argv)
    for row in run_rows(specs(args, device), measure, args, command):
        writer.add(row)
    return writer.rows


if __name__ == "__main__":
    main()

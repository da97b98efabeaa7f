"""Forward + backward time and peak memory of S4Block and of its bare kernel, one JSON line per row.

    python benchmarks/layer_speed.py --device cpu --H 128 --N 64 --tokens 16384 \
        --lengths 1024 4096 16384 65536 > benchmarks/results/layer_speed_cpu.jsonl

B = max(1, tokens // L), so every row moves about the same data (the anchor-timing protocol).
Each row runs in a fresh subprocess, so CPU peak memory (max RSS) is that row's alone; on CUDA the
peak is torch.cuda.max_memory_allocated. Timing: mean of --repeats after --warmup iterations.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from functools import partial

import torch

from s4lab.models import S4Block, S4DKernel, S4Kernel


def measure(what: str, mode: str, L: int, args: argparse.Namespace) -> dict:
    """Time one configuration in this process."""
    device = torch.device(args.device)
    B = max(1, args.tokens // L)
    torch.manual_seed(0)
    kernel = partial(S4Kernel if mode == "s4" else S4DKernel, d_state=args.N)
    block = S4Block(d_model=args.H, kernel=kernel, l_max=L).to(device)
    x = torch.randn(B, L, args.H, device=device, requires_grad=True)

    def run() -> None:
        out = block(x) if what == "block" else block.kernel(L)
        out.square().mean().backward()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        run()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.repeats):
        run()
    sync()
    ms = (time.perf_counter() - start) / args.repeats * 1e3
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        name = torch.cuda.get_device_name()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        name = f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
    return {
        "what": what, "mode": mode, "L": L, "B": B, "H": args.H, "N": args.N,
        "ms_fwd_bwd": round(ms, 2), "peak_gb": round(peak, 3), "device": name,
        "torch": torch.__version__, "backend": "naive",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16384, help="B x L per row")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--modes", nargs="+", choices=["s4", "s4d"], default=["s4", "s4d"])
    parser.add_argument("--what", nargs="+", default=["block", "kernel"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", nargs=3, metavar=("WHAT", "MODE", "L"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        what, mode, L = args.one
        print(json.dumps(measure(what, mode, int(L), args)))
        return
    for what in args.what:
        for mode in args.modes:
            for L in args.lengths:
                cmd = [sys.executable, __file__, *sys.argv[1:], "--one", what, mode, str(L)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    row = {"what": what, "mode": mode, "L": L, "error": out.stderr.strip()[-300:]}
                    print(json.dumps(row), flush=True)
                else:
                    print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()

"""The FFT convolution's fast path (hand-written backward) against its autograd reference.

    python benchmarks/fft_conv.py --threads 1 > benchmarks/results/fft_conv_cpu.jsonl

Forward + backward of y = K̄ * u, u (B, H, L), one causal kernel (1, H, L), float32; one JSON
line per shape with the mean ms of `fft_conv` (s4lab.ssm.fftconv) and of `fft_conv_ref`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch
from torch import Tensor

from s4lab.ssm.fftconv import fft_conv, fft_conv_ref

SHAPES = ((50, 128, 1056), (16, 256, 1024), (4, 256, 4096), (1, 256, 16384))  # (B, H, L)


def ms_per_call(f: Callable[[Tensor, Tensor], Tensor], u: Tensor, K: Tensor, repeats: int) -> float:
    """Mean ms of forward + backward after one warm-up call."""

    def run() -> None:
        y = f(u, K)
        y.backward(torch.ones_like(y))

    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = f"{platform.processor() or platform.machine()} x{args.threads} threads"
    for B, H, L in SHAPES:
        g = torch.Generator().manual_seed(0)
        u = torch.randn(B, H, L, generator=g, requires_grad=True)
        K = torch.randn(1, H, L, generator=g, requires_grad=True)
        ref = ms_per_call(fft_conv_ref, u, K, args.repeats)
        fast = ms_per_call(fft_conv, u, K, args.repeats)
        row = {"B": B, "H": H, "L": L, "ms_fast": round(fast, 1), "ms_ref": round(ref, 1)}
        row |= {"speedup": round(ref / fast, 2), "device": device, "torch": torch.__version__}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

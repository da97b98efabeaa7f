"""Peak CPU memory and time of one forward + backward of the WT103 S4 language model in fp32.

    python benchmarks/wt103_memory.py [--l-max 1024] [--batch 1]
    # prints and writes benchmarks/results/wt103_memory_cpu.json

Model: experiment=lm/wt103 (v3) composed as train.py does, with data.l_max overridden, built by
`task.build(sizes)` (vocabulary 267,735, adaptive softmax tied to the adaptive input). Step, in
train mode (dropout on): loss = head.nll(model(x), y).mean() on random tokens in [0, V), then
loss.backward(); fp32 on CPU (the experiment's 16-mixed is a trainer setting, not applied here).
Memory: peak RSS, resource.getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux), read once after the
build (the build's peak) and once after the step (the run's peak); the resident set before the
step (/proc/self/statm) shows what the built model holds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from s4lab.checkpoint import build_task
from s4lab.data.base import DataSizes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "wt103_memory_cpu.json"
VOCAB = 267_735  # WikiText-103: <eos> + the train words


def peak_rss_mib() -> float:
    """Peak resident set of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident set."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        return next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l-max", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    start_rss = rss_mib()

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        overrides = ["experiment=lm/wt103", f"data.l_max={args.l_max}", "paths.data_dir=/none"]
        cfg = compose("train", overrides=overrides)
    start = time.perf_counter()
    task = build_task(cfg)
    task.build(DataSizes(d_input=VOCAB, d_output=VOCAB, l_max=args.l_max, vocab_size=VOCAB))
    build_s = time.perf_counter() - start
    build_peak, before_step = peak_rss_mib(), rss_mib()
    params = sum(p.numel() for p in task.parameters())

    task.train()
    x = torch.randint(0, VOCAB, (args.batch, args.l_max))
    y = torch.randint(0, VOCAB, (args.batch, args.l_max))
    start = time.perf_counter()
    loss = task.head.nll(task.model(x), y).mean()
    forward_s = time.perf_counter() - start
    loss.backward()
    step_s = time.perf_counter() - start
    result = {
        "run": f"python benchmarks/wt103_memory.py --l-max {args.l_max} --batch {args.batch}",
        "experiment": "lm/wt103",
        "l_max": args.l_max,
        "batch": args.batch,
        "dtype": "float32",
        "params": params,
        "loss": round(loss.item(), 4),
        "build_s": round(build_s, 1),
        "forward_s": round(forward_s, 2),
        "forward_backward_s": round(step_s, 2),
        "rss_at_start_mib": round(start_rss),
        "build_peak_rss_mib": round(build_peak),
        "rss_before_step_mib": round(before_step),
        "peak_rss_mib": round(peak_rss_mib()),
        "params_fp32_mib": round(params * 4 / 2**20),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "device": "cpu",
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""What every benchmark shares: its options, the device, one timed training step, peak memory,
and running rows (one subprocess per row on CPU).

    ms_fwd_bwd = wall time of one step() (forward + backward), mean of --repeats after --warmup
    peak_gb    = peak memory of the timed steps minus the memory in use before the row built
                 anything (its model, inputs and gradients count; the interpreter does not).
                 CUDA: torch.cuda.max_memory_allocated (tensors); CPU: the peak resident set
                 VmHWM, reset through /proc/self/clear_refs after the warm-up. One step of a
                 small copy of the row runs before that baseline (measure_step), so one-time
                 costs (an autograd thread's arena, ~35 MB on CPU) do not count.
On CPU each row runs in a fresh subprocess of the calling script (`--one SPEC`): freed memory
may stay with the allocator, and a row killed for memory must not end the run. On CUDA the rows
share one process, and a row that runs out of memory is recorded with status "oom".
Row keys: the spec's (what, shapes, precision, ...), backend (the option asked for: the SSM
kernels' `.backend`) and backend_used (what runs on the device), ms_fwd_bwd, peak_gb, status
(ok | oom | skipped | error), reason (unless ok), warmup and repeats, device, torch, threads
(CPU) or tf32 (CUDA).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path
from typing import Any

import torch

from s4lab.models.ssm_kernel import SSMKernel
from s4lab.ssm.backend import resolve_backend

Row = dict[str, Any]
Measure = Callable[[Row, argparse.Namespace], Row]
Prepare = Callable[[Row], tuple[Callable[[], None], Row]]  # spec -> (step, facts about it)
PRECISIONS = ("fp32", "bf16")  # bf16: torch.autocast(dtype=torch.bfloat16) around the step
REASON_CHARS = 300


def add_arguments(parser: argparse.ArgumentParser, warmup: int, repeats: int) -> None:
    """The options every benchmark takes; `warmup` and `repeats` are the script's defaults."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="JSON lines, one row each, written as they come")
    parser.add_argument("--markdown", type=Path, help="the rows as markdown, rewritten per row")
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--note", help="a line for the markdown, e.g. what else loaded the machine")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a row's spec, in a subprocess


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads, allow TF32 on CUDA (as train.py's `tf32: true`), return the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1).strip() if match else cpu
    return f"{cpu}, {torch.get_num_threads()} threads"


def base_row(device: torch.device) -> Row:
    """The keys that say where a row ran."""
    row: Row = {"device": device_name(device), "torch": torch.__version__}
    if device.type == "cuda":
        return row | {"tf32": torch.backends.cuda.matmul.allow_tf32}
    return row | {"threads": torch.get_num_threads()}


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The context a step runs in: nothing for fp32, bf16 autocast for bf16."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}: no CPU memory reading here")
    return int(match.group(1))


class Memory:
    """Peak memory above the memory in use at construction, i.e. before a row builds anything."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            self.baseline = torch.cuda.memory_allocated(device)
        else:
            self.baseline = _status_kib("VmRSS") * 1024
        self.reset_peak()

    def reset_peak(self) -> None:
        """Start the peak from the memory in use now."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        # "5" resets the peak resident set (Linux >= 4.0); where that is refused, VmHWM keeps
        # the peak since the process started, which the fresh subprocess of a row bounds
        with suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def peak_gb(self) -> float:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _status_kib("VmHWM") * 1024
        return max(0, peak - self.baseline) / 2**30


def time_step(
    step: Callable[[], None], device: torch.device, warmup: int, repeats: int, memory: Memory
) -> tuple[float, float]:
    """(ms per step, peak GB): the mean of `repeats` timed steps after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    memory.reset_peak()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync(device)
    ms = (time.perf_counter() - start) / repeats * 1e3
    return ms, memory.peak_gb()


def kernel_backend(model: torch.nn.Module, device: torch.device) -> Row:
    """The SSM kernels' `backend` option (their `.backend`) and the backend it runs on `device`;
    None for both when the model has no SSM kernel."""
    kernels = [m for m in model.modules() if isinstance(m, SSMKernel)]
    if not kernels:
        return {"backend": None, "backend_used": None}
    option = kernels[0].backend
    return {"backend": option, "backend_used": resolve_backend(option, device)}


def layer_step(layer: torch.nn.Module, spec: Row, device: torch.device) -> Callable[[], None]:
    """Forward + backward of one (B, L, H) -> (B, L, H) layer: x (B, L, H) random with
    requires_grad, y = layer(x) under the spec's precision, y.backward(dy) for a fixed random dy."""
    B, L, H = spec["B"], spec["L"], spec["H"]
    x = torch.randn(B, L, H, device=device, requires_grad=True)
    dy = {torch.float32: torch.randn(B, L, H, device=device)}
    if spec["precision"] == "bf16":
        dy[torch.bfloat16] = dy[torch.float32].bfloat16()

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        with autocast(device, spec["precision"]):
            y = layer(x)  # (B, L, H)
        y.backward(dy[y.dtype])

    return step


def measure_step(prepare: Prepare, spec: Row, primer: Row, args: argparse.Namespace) -> Row:
    """The row of `spec`: prepare(spec) builds its step (forward + backward) and the facts the
    row records. One step of `primer`, a small copy of the row, runs first, so that first-use
    costs (an autograd thread's arena, library workspaces) stay out of the peak."""
    device = torch.device(args.device)
    prepare(primer)[0]()
    memory = Memory(device)
    torch.manual_seed(0)
    step, facts = prepare(spec)
    ms, peak = time_step(step, device, args.warmup, args.repeats, memory)
    measured = {"ms_fwd_bwd": round(ms, 3), "peak_gb": round(peak, 4), "status": "ok"}
    measured |= {"warmup": args.warmup, "repeats": args.repeats}
    return spec | facts | measured | base_row(device)


def is_oom(error: BaseException) -> bool:
    """Whether an exception means the device ran out of memory."""
    if isinstance(error, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in str(error) or "out of memory" in str(error)
    )


def failed(spec: Row, device: torch.device, status: str, reason: str) -> Row:
    """A row that measured nothing: status oom, skipped or error, and why."""
    return spec | {"status": status, "reason": reason[-REASON_CHARS:]} | base_row(device)


def guarded(measure: Measure, spec: Row, args: argparse.Namespace) -> Row:
    """measure(spec, args), or a row saying that it ran out of memory or failed."""
    device = torch.device(args.device)
    try:
        return measure(spec, args)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        return failed(spec, device, "oom" if is_oom(error) else "error", reason)
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def child(measure: Measure, args: argparse.Namespace) -> None:
    """The subprocess side of a CPU row: measure the spec given by --one, print the row."""
    print(json.dumps(guarded(measure, json.loads(args.one), args)), flush=True)


def in_subprocess(command: list[str], spec: Row, device: torch.device) -> Row:
    """Run `command --one SPEC` and read its row (the last stdout line)."""
    out = subprocess.run([*command, "--one", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode == 0:
        return json.loads(out.stdout.strip().splitlines()[-1])
    if out.returncode == -9:  # SIGKILL: on Linux most often the kernel's out-of-memory killer
        return failed(spec, device, "oom", "killed (SIGKILL), most likely out of memory")
    if out.returncode < 0:
        return failed(spec, device, "error", f"killed by signal {-out.returncode}")
    return failed(spec, device, "error", out.stderr.strip() or f"exit status {out.returncode}")


def run_rows(
    specs: Iterable[Row], measure: Measure, args: argparse.Namespace, command: list[str]
) -> Iterator[Row]:
    """Each spec's row: rows already marked (status set) as they are; on CPU one subprocess of
    `command` (the script and its arguments) per row, on CUDA in this process."""
    device = torch.device(args.device)
    for spec in specs:
        if "status" in spec:
            yield spec | base_row(device)
        elif device.type == "cpu":
            yield in_subprocess(command, spec, device)
        else:
            yield guarded(measure, spec, args)


def script_command(script: str, argv: list[str] | None) -> list[str]:
    """The command that reruns `script` with these arguments (sys.argv's when None)."""
    return [sys.executable, os.path.abspath(script), *(sys.argv[1:] if argv is None else argv)]

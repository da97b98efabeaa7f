"""Autoregressive generation speed: tokens/s of our recurrent S4 and S4D language models beside a
Transformer with a KV cache, a Transformer that recomputes its prefix, and the official S4 step.

    python benchmarks/generation.py --device cuda --batch 16 --cuda-graph \
        --official ../shared/anchor/official-s4 --out generation.jsonl --markdown generation.md
    python benchmarks/generation.py --device cpu --threads 1 --batch 1 16 --steps 256 \
        --nocache-steps 64 --official ../shared/anchor/official-s4 \
        --out benchmarks/results/generation_cpu.jsonl \
        --markdown benchmarks/results/generation_cpu.md

The claim (S4, arXiv 2111.00396v3, WT103): S4 generates 48K tokens/s against a Transformer's
0.8K, 60x, the Transformer recomputing its whole prefix per token. Models (--models), each a
LanguageModel of vocabulary V: embedding -> n_layers prenorm residual layers of width H -> norm
-> linear head, fp32, eval mode, no grad:
  s4, s4d              one S4Block (GELU, GLU output) per layer around S4Kernel / S4DKernel of
                       state size N, stepped in recurrent mode: O(H N) per token
  transformer          [causal attention (8 heads), FFN 4H] per layer, sinusoidal positions,
                       stepped with its KV cache: O(t H) per token t
  transformer-nocache  the same model, each token from a forward pass over the whole prefix (the
                       paper's setting): O(t² H) per token, so it runs min(--steps,
                       --nocache-steps) tokens and its row is the mean over those
  official-s4          the official S4Block(H, d_state=N, mode="dplr", transposed=False) in the same
                       residual stack, through its setup_step() (dense Ā: O(H N²) per token) and
                       step(); from --official PATH (benchmarks/official.py), else a skipped row
Generation: greedy (s4lab.sampling.sample at temperature 0, as generate.py samples), from one
start token per sequence and the zero state:
    tokens_per_s = batch · steps / seconds,   ms_per_token = 1000 · seconds / steps
seconds: the mean of --repeats timed generations after an untimed one of --warmup tokens, between
CUDA synchronizations. peak_gb: memory above the process's before the model was built (weights,
state or KV cache). --compile adds rows with torch.compile of the per-token step of s4, s4d and
transformer; --cuda-graph (CUDA) adds rows for s4 and s4d where each token replays one CUDA graph
of step + greedy choice over static token and state buffers (a KV cache grows: no graph for it).
On CPU each row runs in its own subprocess (benchmarks/timing.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from official import load_official, official_problem
from rows import RowWriter, cell, heading, markdown_table, number, reasons
from timing import (
    Memory,
    Row,
    add_arguments,
    base_row,
    child,
    kernel_backend,
    run_rows,
    script_command,
    setup,
    sync,
)
from torch import Tensor

from s4lab.data.base import DataSizes
from s4lab.models import FeedForward, MultiheadAttention, S4Block, S4DKernel, S4Kernel
from s4lab.models.backbone import SequenceModel
from s4lab.models.heads import LinearHead
from s4lab.models.positional import SinusoidalPositions
from s4lab.sampling import sample
from s4lab.tasks.language_model import LanguageModel

MODELS = ("s4", "s4d", "transformer", "transformer-nocache", "official-s4")
COMPILABLE = ("s4", "s4d", "transformer")  # our per-token steps
GRAPHABLE = ("s4", "s4d")  # fixed-size state: one graph serves every token
SSMS = ("s4", "s4d", "official-s4")
ATTENTION_HEADS = 8
DTYPE = "fp32"
LABELS = {
    "s4": "S4 (ours)",
    "s4d": "S4D (ours)",
    "transformer": "Transformer, KV cache",
    "transformer-nocache": "Transformer, no cache",
    "official-s4": "official S4 (dense step)",
}
PAPER = (
    "Paper (S4, arXiv 2111.00396v3, WT103, A100): S4 48K tokens/s against a Transformer's 0.8K "
    "(60x), the Transformer recomputing its prefix per token, as the no-cache rows do here. "
    "Anchor (/work/shared/reference/anchor_timings.md, H100, 4 layers, H = 256, N = 64, batch "
    "16, 2,048 steps, fp32): official S4 step 15.3K tokens/s, KV-cached attention 24.2K."
)
Generate = Callable[[Tensor, int], Tensor]  # (first token (B,), steps) -> tokens (B, steps)


def language_model(spec: Row, official_path: Path | None = None) -> LanguageModel:
    """The row's language model (built, on CPU, train mode): width H, n_layers, vocab V."""
    what, H = spec["model"], spec["H"]
    position = None
    if what in ("s4", "s4d"):
        kernel = partial(S4Kernel if what == "s4" else S4DKernel, d_state=spec["N"])
        layer: Any = partial(S4Block, kernel=kernel)
    elif what == "official-s4":
        official = load_official(official_path)
        layer = partial(official.S4Block, d_state=spec["N"], mode="dplr", transposed=False)
    else:
        attention = partial(MultiheadAttention, n_heads=ATTENTION_HEADS, causal=True)
        layer = {"attention": attention, "ffn": FeedForward}  # configs/model/layer/transformer
        position = SinusoidalPositions
    model = partial(SequenceModel, layer=layer, d_model=H, n_layers=spec["n_layers"])
    task = LanguageModel(partial(model, position=position), LinearHead, torch.optim.AdamW)
    V = spec["vocab"]
    task.build(DataSizes(d_input=V, d_output=V, l_max=spec["steps"] + 1, vocab_size=V))
    return task


@torch.no_grad()
def recurrent_greedy(
    task: LanguageModel, first: Tensor, steps: int, step: Callable | None = None
) -> Tensor:
    """`steps` greedy tokens (B, steps) after `first` (B,), one `step` (task.step) per token
    from the zero state."""
    step = step or task.step
    state = task.default_state(first.shape[0])
    token, tokens = first, []
    for _ in range(steps):
        logits, state = step(token, state)  # (B, V)
        token = sample(logits, temperature=0)  # (B,)
        tokens.append(token)
    return torch.stack(tokens, dim=1)


@torch.no_grad()
def full_forward_greedy(task: LanguageModel, first: Tensor, steps: int) -> Tensor:
    """`steps` greedy tokens (B, steps) after `first` (B,), each from a forward pass over the
    whole prefix (no cache, no state)."""
    ids = first[:, None]  # (B, 1)
    for _ in range(steps):
        token = sample(task(ids)[:, -1], temperature=0)  # (B,)
        ids = torch.cat([ids, token[:, None]], dim=1)
    return ids[:, 1:]


def graphed_greedy(task: LanguageModel, batch: int, device: torch.device) -> Generate:
    """recurrent_greedy with each token one replay of a CUDA graph: step, greedy choice, and the
    copies into static token (B,) and state buffers, captured once (layer states: tensors)."""
    _, states = task.default_state(batch)
    if not all(isinstance(s, Tensor) for s in states):
        raise ValueError("a CUDA graph needs fixed-size tensor states (not a KV cache)")
    token = torch.zeros(batch, dtype=torch.long, device=device)

    def one_token() -> None:
        logits, (_, after) = task.step(token, (0, states))  # t is unused without positions
        for s, s_next in zip(states, after, strict=True):
            s.copy_(s_next)
        token.copy_(sample(logits, temperature=0))

    side = torch.cuda.Stream(device)  # warm up on a side stream before capture (torch docs)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(3):
            one_token()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        one_token()

    def generate(first: Tensor, steps: int) -> Tensor:
        token.copy_(first)
        for s in states:
            s.zero_()
        tokens = torch.empty(batch, steps, dtype=torch.long, device=device)
        for i in range(steps):
            graph.replay()
            tokens[:, i] = token
        return tokens

    return generate


def generator(task: LanguageModel, spec: Row, device: torch.device) -> Generate:
    """The row's way of generating: full forward passes, CUDA graph, compiled or eager steps."""
    if spec["model"] == "transformer-nocache":
        return partial(full_forward_greedy, task)
    if spec["step"] == "cuda-graph":
        return graphed_greedy(task, spec["batch"], device)
    step = torch.compile(task.step) if spec["step"] == "compiled" else task.step
    return partial(recurrent_greedy, task, step=step)


def measure(spec: Row, args: argparse.Namespace) -> Row:
    """Time the row's generation in this process: tokens/s, ms per token, peak memory."""
    device = torch.device(args.device)
    memory = Memory(device)
    torch.manual_seed(0)
    task = language_model(spec, args.official).to(device).eval()
    task.setup_step()
    generate = generator(task, spec, device)
    first = torch.zeros(spec["batch"], dtype=torch.long, device=device)
    if args.warmup:
        generate(first, args.warmup)
    sync(device)
    memory.reset_peak()
    start = time.perf_counter()
    for _ in range(args.repeats):
        tokens = generate(first, spec["steps"])
    sync(device)
    seconds = (time.perf_counter() - start) / args.repeats
    if tokens.shape != (spec["batch"], spec["steps"]):
        raise RuntimeError(f"generated {tuple(tokens.shape)} tokens, not (batch, steps)")
    measured = {
        "tokens_per_s": round(spec["batch"] * spec["steps"] / seconds, 1),
        "ms_per_token": round(seconds / spec["steps"] * 1e3, 4),
        "peak_gb": round(memory.peak_gb(), 4),
        "params": sum(p.numel() for p in task.parameters()),
        "status": "ok",
    }
    facts = kernel_backend(task, device) | {"threads": torch.get_num_threads()}
    if spec["model"] == "official-s4":  # its setup_step() default: 'dense' (Ā as a matrix)
        facts["official_step_mode"] = task.model.blocks[0].layer.layer.kernel._step_mode
    return spec | measured | facts | base_row(device)


def specs(args: argparse.Namespace, device: torch.device) -> list[Row]:
    """Every row, in order: per batch each model's eager row, then the CUDA-graph rows, then the
    compiled rows (compilation is slow: a time limit cuts those first)."""
    problem = official_problem(args.official) if "official-s4" in args.models else None
    if problem:
        print(problem, flush=True)
    steps = args.steps or (2048 if device.type == "cuda" else 256)
    shape = {"H": args.H, "n_layers": args.n_layers, "vocab": args.vocab, "dtype": DTYPE}
    eager, graphed, compiled = [], [], []
    for batch in args.batch:
        for what in args.models:
            spec = {"model": what, "step": "eager", "batch": batch, "steps": steps, **shape}
            if what in SSMS:
                spec["N"] = args.N
            if what == "transformer-nocache":
                n = min(steps, args.nocache_steps)
                note = f"recomputes the prefix per token (cost grows with t): {n} of {steps} steps"
                spec |= {"step": "full forward", "steps": n, "note": note}
            if what == "official-s4" and problem:
                spec |= {"status": "skipped", "reason": problem}
            eager.append(spec)
            if args.cuda_graph and what in GRAPHABLE:
                skip = {"status": "skipped", "reason": "CUDA graphs need --device cuda"}
                graphed.append(
                    spec | {"step": "cuda-graph"} | ({} if device.type == "cuda" else skip)
                )
            if args.compile and what in COMPILABLE:
                compiled.append(spec | {"step": "compiled"})
    return eager + graphed + compiled


def ratio(row: Row, reference: Row | None) -> str:
    """tokens/s of `row` over the reference row's, as `12.3x`."""
    if reference is None or "tokens_per_s" not in row or "tokens_per_s" not in reference:
        return "–"
    return f"{number(row['tokens_per_s'] / reference['tokens_per_s'])}x"


def render(rows: list[Row]) -> str:
    """One line per row, grouped by batch, with tokens/s relative to both Transformers."""
    ok = [r for r in rows if r.get("status") == "ok" and r["step"] in ("eager", "full forward")]
    kv = {r["batch"]: r for r in ok if r["model"] == "transformer"}
    full = {r["batch"]: r for r in ok if r["model"] == "transformer-nocache"}
    lines = [
        [
            LABELS[r["model"]],
            r["step"],
            str(r["batch"]),
            f"{r['steps']:,}",
            cell(r, "tokens_per_s", 0),
            cell(r, "ms_per_token", 3),
            cell(r, "peak_gb", 3),
            f"{r['params']:,}" if "params" in r else "–",
            ratio(r, kv.get(r["batch"])),
            ratio(r, full.get(r["batch"])),
        ]
        for r in sorted(rows, key=lambda r: r["batch"])
    ]
    header = ["model", "step", "batch", "steps", "tokens/s", "ms/token", "peak GB", "params"]
    first = rows[0]
    N = next((r["N"] for r in rows if "N" in r), "–")
    text = [
        heading("Autoregressive generation, greedy", rows),
        "",
        f"{first['n_layers']} layers, H = {first['H']}, N = {N}, vocabulary {first['vocab']:,}, "
        f"{first['dtype']}, eval mode, no grad; tokens/s = batch · steps / s, "
        "ms/token = s / steps.",
        "",
        markdown_table([*header, "vs KV cache", "vs no cache"], lines),
        "",
        "vs: tokens/s over the Transformer's (KV cache, or recomputing its prefix) at that batch.",
        *dict.fromkeys(
            f"No cache: {r['note']}; its tokens/s is the mean over them." for r in ok if "note" in r
        ),
        "",
        PAPER,
    ]
    notes = reasons(rows)
    return "\n".join(text + (["", "Not measured:", *notes] if notes else [])) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, warmup=16, repeats=1)  # warmup: tokens; repeats: timed generations
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--steps", type=int, help="tokens per sequence (2,048 on CUDA, 256 else)")
    parser.add_argument("--nocache-steps", type=int, default=256, help="cap of the no-cache rows")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--compile", action="store_true", help="add torch.compile'd steps")
    parser.add_argument("--cuda-graph", action="store_true", help="add CUDA-graph steps (CUDA)")
    parser.add_argument("--official", type=Path, help="the official S4 checkout (anchor)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    device = setup(args)
    if args.one:
        child(measure, args)
        return []
    writer = RowWriter(args.out, args.markdown, render)
    command = script_command(__file__, argv)
    for row in run_rows(specs(args, device), measure, args, command):
        writer.add(row)
    return writer.rows


if __name__ == "__main__":
    main()

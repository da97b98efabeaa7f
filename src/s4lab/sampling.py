"""Next-token sampling from logits as pure functions: temperature, top-k and top-p (nucleus).

    p = softmax(z / T)                       temperature T > 0; T = 0 is greedy (argmax z)
    top-k: keep the k largest z (ties with the k-th largest are kept too)
    top-p: keep the smallest set of largest p whose mass reaches p_top (at least one token)
Filters set the dropped logits to -inf; top-k runs before top-p, both before the softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """logits (..., V) with all but the k largest per row set to -inf."""
    if k < 1:
        raise ValueError(f"top_k = {k} must be >= 1 (or null: no top-k filter)")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, -torch.inf)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """logits (..., V) outside the nucleus of mass p set to -inf (0 < p <= 1)."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p = {p} must lie in (0, 1] (or null: no top-p filter)")
    if p == 1:
        return logits  # the whole vocabulary; a rounded cumsum could pass 1 before its end
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.double().softmax(dim=-1)  # float64: the mass sums up to V terms
    before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each one
    drop_sorted = before >= p  # the first token has before = 0 < p: never dropped
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, -torch.inf)


def sample(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row: logits (B, V) -> ids (B,) int64; temperature 0 takes the argmax."""
    if temperature < 0:
        raise ValueError(f"temperature = {temperature} must be >= 0 (0: greedy)")
    if top_k is not None:
        logits = top_k_filter(logits, top_k)  # checks top_k even when greedy
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]

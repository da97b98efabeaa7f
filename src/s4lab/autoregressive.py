"""Autoregressive sampling in recurrent mode: the prompt in parallel, then one step per token.

    logits, state = task.forward_with_state(prompt)     prompt (B, L₀): convolution mode
    w_{L₀} ~ sample(logits[:, -1])
    logits, state = task.step(w_t, state);  w_{t+1} ~ sample(logits)     recurrent mode, O(1) per
                                                                          token for SSMs and RNNs
A task can generate when it has setup_step, forward_with_state and step (LanguageModel).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from s4lab.sampling import sample

RECURRENT_METHODS = ("setup_step", "forward_with_state", "step")


class NoRecurrentModeError(ValueError):
    """The task or one of its layers cannot run token by token; the message names the fix."""


def require_recurrent(task: Any) -> None:
    """Raise NoRecurrentModeError unless `task` can generate; then switch it to recurrent mode."""
    missing = [m for m in RECURRENT_METHODS if not hasattr(task, m)]
    if missing:
        raise NoRecurrentModeError(
            f"{type(task).__name__} has no recurrent mode (no {', '.join(missing)}): generation "
            "needs a next-token task, e.g. task=language_model "
            "(s4lab.tasks.language_model.LanguageModel)"
        )
    try:
        task.setup_step()
    except ValueError as error:  # a bidirectional layer, or a layer without step()
        raise NoRecurrentModeError(f"{type(task).__name__} cannot generate: {error}") from error


@torch.no_grad()
def sample_sequences(
    task: Any,
    prompt: Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """prompt (B, L₀) ids, L₀ >= 1 -> (B, L₀ + length): the prompt and `length` sampled tokens."""
    if prompt.ndim != 2 or prompt.shape[1] == 0:
        raise ValueError(
            f"prompt must be (B, L0) token ids with L0 >= 1, got {tuple(prompt.shape)}"
        )
    if length < 0:
        raise ValueError(f"length = {length} must be >= 0")
    require_recurrent(task)
    logits, state = task.forward_with_state(prompt)  # (B, L₀, V)
    logits = logits[:, -1]
    tokens = []
    for t in range(length):
        token = sample(logits, temperature, top_k, top_p, generator)  # (B,)
        tokens.append(token)
        if t + 1 < length:
            logits, state = task.step(token, state)
    return torch.cat([prompt, *(w[:, None] for w in tokens)], dim=1)

"""Recurrent mode: the fast state updates equal the dense references, a whole model stepped over
1,024 tokens equals its forward pass (every layer with a step), forward_with_state returns the
state that stepping leaves, and a bidirectional model asked to step fails with the fix."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
from torch import Tensor

from s4lab.autoregressive import NoRecurrentModeError, require_recurrent
from s4lab.data.base import DataSizes
from s4lab.models.attention import MultiheadAttention
from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.ffn import FeedForward
from s4lab.models.heads import LinearHead
from s4lab.models.linear_attention import LinearAttention
from s4lab.models.lssl import LSSL
from s4lab.models.performer import Performer
from s4lab.models.positional import SinusoidalPositions
from s4lab.models.rnn import GRU, LSTM
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel
from s4lab.ssm.dplr import dplr_dense
from s4lab.ssm.recurrent import (
    dense_final_state,
    diag_final_state,
    dplr_step_matrices,
    dplr_transition,
)
from s4lab.ssm.reference import both_halves, ssm_step
from s4lab.tasks.language_model import LanguageModel

V, H, B = 7, 8, 2  # vocabulary, width, batch
LAYERS: dict[str, Any] = {
    "s4": functools.partial(S4Block, kernel=functools.partial(S4Kernel, d_state=4)),
    "s4d": functools.partial(S4Block, kernel=functools.partial(S4DKernel, d_state=4)),
    "lstm": LSTM,
    "gru": GRU,
    "attention": functools.partial(MultiheadAttention, n_heads=2),
    "linear_attention": functools.partial(LinearAttention, n_heads=2),
    "performer": functools.partial(Performer, n_heads=2, n_features=8),
    "lssl": functools.partial(LSSL, d_state=4),
    "s4_ffn": {
        "s4": functools.partial(S4Block, kernel=functools.partial(S4Kernel, d_state=4)),
        "ffn": functools.partial(FeedForward, expand=2),
    },
}


def lm(layer: Any, dtype: torch.dtype, l_max: int = 1024, **model: Any) -> LanguageModel:
    """A 2-block token model with its norms, residuals and linear head, in eval mode."""
    torch.manual_seed(0)
    position = SinusoidalPositions if layer is LAYERS["attention"] else None
    task = LanguageModel(
        model=functools.partial(
            SequenceModel, layer=layer, d_model=H, n_layers=2, position=position, **model
        ),
        head=LinearHead,
        optimizer=torch.optim.AdamW,
    )
    task.build(DataSizes(d_input=V, d_output=V, l_max=l_max, vocab_size=V))
    return task.to(dtype).eval()


def tokens(L: int, seed: int = 1) -> Tensor:
    return torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(seed))


def relative_error(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def stepped(task: LanguageModel, x: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Logits of step() over x (B, L) from `state`: (B, L, V), the state after."""
    logits = []
    for t in range(x.shape[1]):
        y, state = task.step(x[:, t], state)
        logits.append(y)
    return torch.stack(logits, dim=1), state


def leaves(state: Any) -> list[Any]:
    """The tensors and ints of a nested state, in order."""
    if isinstance(state, (tuple, list)):
        return [leaf for s in state for leaf in leaves(s)]
    return [] if state is None else [state]


# The fast updates against the dense references, float64


def _dplr(rank: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    Hc, N = 3, 4

    def c(*shape: int) -> Tensor:
        return torch.randn(*shape, dtype=torch.complex128, generator=g)

    Lambda = torch.complex(-torch.rand(Hc, N, dtype=torch.float64, generator=g), c(Hc, N).imag)
    dt = torch.rand(Hc, dtype=torch.float64, generator=g) * 0.5 + 0.01
    return dt, Lambda, c(rank, Hc, N), c(Hc, N)


@pytest.mark.parametrize("rank", [1, 2])
def test_dplr_step_equals_the_dense_bilinear_ssm(rank):
    dt, Lambda, P, Bm = _dplr(rank)
    dA, dB = dplr_dense(dt, Lambda, P, Bm)  # (H, M, M), (H, M)
    dC = both_halves(torch.randn(2, *Lambda.shape, dtype=torch.complex128))
    m = dplr_step_matrices(dt, *(both_halves(t) for t in (Lambda, P, Bm)), dC)
    x = torch.randn(5, *dB.shape, dtype=torch.complex128)  # (B, H, M)
    torch.testing.assert_close(dplr_transition(m, x), torch.einsum("hmn,bhn->bhm", dA, x))
    torch.testing.assert_close(m.dB, dB)


@pytest.mark.parametrize("L", [1, 5, 16, 37])
def test_final_states_equal_the_recurrence(L):
    dt, Lambda, P, Bm = _dplr(1)
    dA, dB = dplr_dense(dt, Lambda, P, Bm)
    dA_diag = torch.exp(dt[:, None] * both_halves(Lambda))  # a stable diagonal SSM
    u = torch.randn(2, dt.shape[0], L, dtype=torch.float64)  # (B, H, L)
    dC = torch.ones(1, *dB.shape, dtype=dB.dtype)
    for A, fast in ((dA, dense_final_state), (dA_diag, diag_final_state)):
        x = torch.zeros(2, *dB.shape, dtype=dB.dtype)
        for k in range(L):
            x = ssm_step(A, dB, dC, u[..., k], x)[1]
        torch.testing.assert_close(fast(A, dB, u), x)


# A whole model: step() over 1,024 tokens equals forward()


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_model_steps_equal_forward_over_1024_tokens(name, dtype, tol):
    task, x = lm(LAYERS[name], dtype), tokens(1024)
    with torch.no_grad():
        logits = task(x)
        require_recurrent(task)
        steps, (t, _) = stepped(task, x, task.default_state(B))
    assert t == 1024
    assert relative_error(steps, logits) <= tol


@pytest.mark.parametrize("name", list(LAYERS))
def test_prompt_state_equals_stepping_through_it(name):
    """forward_with_state(prompt) leaves the state that stepping leaves, and generation from
    it continues the forward pass of prompt + continuation."""
    task, x = lm(LAYERS[name], torch.float64, l_max=64), tokens(64)
    prompt, rest = x[:, :40], x[:, 40:]
    with torch.no_grad():
        full = task(x)
        require_recurrent(task)
        prompt_logits, state = task.forward_with_state(prompt)
        _, stepped_state = stepped(task, prompt, task.default_state(B))
        continued, _ = stepped(task, rest, state)
    torch.testing.assert_close(prompt_logits, full[:, :40], rtol=1e-10, atol=1e-10)
    for a, b in zip(leaves(state), leaves(stepped_state), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(continued, full[:, 40:], rtol=1e-9, atol=1e-10)


def test_s4_step_is_linear_time_not_dense():
    """The S4 step keeps Ā factored (diagonal + rank r), never an (H, N, N) matrix."""
    kernel = S4Kernel(H, d_state=64, l_max=16)
    m = kernel._cached_step()
    assert max(t.numel() for t in m) <= 64 * H * max(1, kernel.rank)


def test_bidirectional_model_asked_to_generate_names_the_fix():
    layer = functools.partial(LAYERS["s4"], bidirectional=True)
    task = lm(layer, torch.float32, l_max=16)
    with pytest.raises(NoRecurrentModeError, match="bidirectional=false"):
        require_recurrent(task)
    with pytest.raises(ValueError, match="bidirectional"):
        task.forward_with_state(tokens(16))
    attention = lm(functools.partial(MultiheadAttention, n_heads=2, causal=False), torch.float32)
    with pytest.raises(NoRecurrentModeError, match="causal"):
        require_recurrent(attention)

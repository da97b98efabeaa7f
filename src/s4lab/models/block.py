"""S4Block: the paper's S4 layer around any SSM kernel module, (B, L, H) -> (B, L, H).

    u = x · 1[l < length]              padded positions (suffix padding) are zeroed first
    y = K̄ * u + D u                    FFT convolution with the SSM kernel, D skip   (channels C)
    y = dropout(activation(y))         mask tied over the sequence unless tie_dropout=False (v3)
    y = GLU(W y + b)                   output linear H·C -> 2H, gated back to H (final_act="glu")
The kernel is a component: `kernel(d_model=H, l_max=L, channels=C')` builds it (S4Kernel,
S4DKernel, ...), with C' = 2C for bidirectional layers, which add an anti-causal kernel
(two-sided convolution). Kernel math and FFTs run in float32 even under bf16/fp16 autocast.
Recurrent mode: setup_step(), then step() per token; forward_with_state(x) runs a prompt as a
convolution and also returns the state that step() would hold after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from s4lab.ssm.fftconv import fft_conv, two_sided_kernel, with_skip

FINAL_ACTS = ("glu", "linear", None)


def make_activation(name: str) -> nn.Module:
    """The pointwise activation after the convolution, by its config name."""
    match name:
        case "gelu":
            return nn.GELU()
        case "silu":
            return nn.SiLU()
        case "relu":
            return nn.ReLU()
        case "tanh":
            return nn.Tanh()
        case "id":
            return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; accepted: gelu, silu, relu, tanh, id")


def length_mask(lengths: Tensor, L: int) -> Tensor:
    """Valid positions of suffix-padded sequences: lengths (B,) -> (B, L) bool."""
    return torch.arange(L, device=lengths.device) < lengths[:, None]


def masked_input(x: Tensor, lengths: Tensor | None, d_model: int) -> Tensor:
    """Check x (B, L, H) and lengths (B,), and zero the padded steps l >= length of x."""
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"expected input (B, L, H={d_model}), got {tuple(x.shape)}")
    if lengths is None:
        return x
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"expected lengths ({x.shape[0]},), got {tuple(lengths.shape)}")
    return x * length_mask(lengths, x.shape[1])[..., None]  # pads must not reach valid steps


class S4Block(nn.Module):
    """SSM convolution (kernel given as a component) with D skip, activation and output linear."""

    def __init__(
        self,
        d_model: int,
        kernel: Callable[..., nn.Module],
        l_max: int | None = None,
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        activation: Literal["gelu", "silu", "relu", "tanh", "id"] = "gelu",
        final_act: Literal["glu", "linear"] | None = "glu",
        tie_dropout: bool = True,
    ) -> None:
        super().__init__()
        if final_act not in FINAL_ACTS:
            raise ValueError(f"unknown final_act {final_act!r}; accepted: glu, linear, null")
        if final_act is None and channels != 1:
            raise ValueError("final_act=null keeps H·channels features; use channels=1 or 'linear'")
        self.d_model, self.channels, self.bidirectional = d_model, channels, bidirectional
        self.D = nn.Parameter(torch.randn(channels, d_model))  # drawn before the kernel's Δ, C
        self.kernel = kernel(
            d_model=d_model, l_max=l_max, channels=channels * (2 if bidirectional else 1)
        )
        self.activation = make_activation(activation)
        if dropout == 0:
            self.dropout: nn.Module = nn.Identity()
        else:  # tied: one mask per (example, channel) for the whole sequence, on (B, C·H, L)
            self.dropout = nn.Dropout1d(dropout) if tie_dropout else nn.Dropout(dropout)
        if final_act is None:
            self.output = nn.Identity()
        else:
            width = 2 * d_model if final_act == "glu" else d_model
            linear = nn.Linear(channels * d_model, width)
            self.output = nn.Sequential(linear, nn.GLU(dim=-1)) if final_act == "glu" else linear

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps -> (B, L, H). `rate` 2: input at half rate."""
        x = masked_input(x, lengths, self.d_model)
        batch, L, _ = x.shape
        with torch.autocast(x.device.type, enabled=False):
            u = x.transpose(1, 2).to(torch.promote_types(x.dtype, torch.float32))  # (B, H, L)
            K = self.kernel(L, rate)  # (C or 2C, H, L)
            if self.bidirectional:
                K = two_sided_kernel(*K.chunk(2, dim=0))  # (C, H, 2L)
            y = fft_conv(u, with_skip(K, self.D))  # (B, C, H, L): K̄ * u + D u
        y = self.dropout(self.activation(y.reshape(batch, -1, L)))  # (B, C·H, L)
        return self.output(y.transpose(1, 2))  # (B, L, H)

    def _require_causal(self) -> None:
        if self.bidirectional:
            raise ValueError(
                "a bidirectional layer sees the future; it has no recurrent mode (generation "
                "needs a causal model: train it with bidirectional=false)"
            )

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Any]:
        """forward(x) from the zero state, and the state step() holds after x.

        x (B, L, H) -> y (B, L, H), state: the kernel's x_{L-1}, computed without a loop over L.
        """
        self._require_causal()
        y = self(x)
        with torch.autocast(x.device.type, enabled=False):
            state = self.kernel.forward_state(x.transpose(1, 2))  # u (B, H, L)
        return y, state

    def setup_step(self) -> None:
        """Prepare recurrent mode from the current parameters."""
        self._require_causal()
        self.kernel.setup_step()

    def default_state(self, batch_size: int) -> Any:
        """The kernel's zero state for a batch, e.g. (B, H, M) complex."""
        return self.kernel.default_state(batch_size)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One token: x (B, H), state -> y (B, H), next state; matches forward() step by step."""
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        y, state = self.kernel.step(x, state)  # (B, C, H)
        y = y + self.D * x.to(y.dtype)[:, None]
        y = self.activation(y.reshape(x.shape[0], -1))  # (B, C·H); dropout is off at inference
        return self.output(y.to(x.dtype)), state

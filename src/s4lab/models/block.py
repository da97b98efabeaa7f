"""S4Block: the paper's S4 layer, (B, L, H) -> (B, L, H).

    y = K̄ * u + D u                    FFT convolution with the SSM kernel, D skip   (channels C)
    y = dropout(activation(y))         dropout mask tied over the sequence
    y = GLU(W y + b)                   output linear H·C -> 2H, gated back to H (final_act="glu")
Kernel math and FFTs run in float32 even under bf16/fp16 autocast. Bidirectional layers add an
anti-causal kernel (two-sided convolution). Recurrent mode: setup_step(), then step() per token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel
from s4lab.ssm.fftconv import fft_conv, two_sided_kernel

MODES = ("s4", "s4d")
ACTIVATIONS = {
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "id": nn.Identity,
}
FINAL_ACTS = ("glu", "linear", None)


class S4Block(nn.Module):
    """S4 (mode="s4", DPLR) or S4D (mode="s4d", diagonal) layer with D skip, GELU and GLU output."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        mode: str = "s4",
        init: str | None = None,
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        activation: str = "gelu",
        final_act: str | None = "glu",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float] | None = 1e-3,
        wd: float = 0.0,
        disc: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {', '.join(MODES)}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; accepted: {', '.join(ACTIVATIONS)}"
            )
        if final_act not in FINAL_ACTS:
            raise ValueError(f"unknown final_act {final_act!r}; accepted: glu, linear, null")
        if final_act is None and channels != 1:
            raise ValueError("final_act=null keeps H·channels features; use channels=1 or 'linear'")
        self.d_model, self.channels, self.bidirectional = d_model, channels, bidirectional
        kernel_channels = channels * (2 if bidirectional else 1)
        common = dict(
            d_model=d_model,
            d_state=d_state,
            l_max=l_max,
            channels=kernel_channels,
            dt_min=dt_min,
            dt_max=dt_max,
            lr=lr,
            wd=wd,
            backend=backend,
        )
        if mode == "s4":
            if disc not in (None, "bilinear"):
                raise ValueError(
                    f"mode 's4' discretizes bilinearly; disc={disc!r} needs mode 's4d'"
                )
            self.kernel = S4Kernel(init=init or "legs", **common)
        else:
            self.kernel = S4DKernel(init=init or "diag-legs", disc=disc or "zoh", **common)
        self.D = nn.Parameter(torch.randn(channels, d_model))
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout1d(dropout) if dropout > 0 else nn.Identity()
        if final_act is None:
            self.output = nn.Identity()
        else:
            width = 2 * d_model if final_act == "glu" else d_model
            linear = nn.Linear(channels * d_model, width)
            self.output = nn.Sequential(linear, nn.GLU(dim=-1)) if final_act == "glu" else linear

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:
        """x (B, L, H) -> (B, L, H). `rate` = sampling-rate change (2: input at half rate)."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, L, H={self.d_model}), got {tuple(x.shape)}")
        batch, L, _ = x.shape
        with torch.autocast(x.device.type, enabled=False):
            u = x.transpose(1, 2).to(torch.promote_types(x.dtype, torch.float32))  # (B, H, L)
            K = self.kernel(L, rate)  # (C or 2C, H, L)
            if self.bidirectional:
                K = two_sided_kernel(*K.chunk(2, dim=0))  # (C, H, 2L)
            y = fft_conv(u, K) + self.D[..., None] * u[:, None]  # (B, C, H, L)
        y = self.dropout(self.activation(y.reshape(batch, -1, L)))  # (B, C·H, L)
        return self.output(y.transpose(1, 2))  # (B, L, H)

    def setup_step(self) -> None:
        """Prepare recurrent mode from the current parameters."""
        if self.bidirectional:
            raise ValueError("a bidirectional layer sees the future; it has no recurrent mode")
        self.kernel.setup_step()

    def default_state(self, batch_size: int) -> Tensor:
        """Zero state (B, H, M) complex."""
        return self.kernel.default_state(batch_size)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One token: x (B, H), state -> y (B, H), next state; matches forward() step by step."""
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        y, state = self.kernel.step(x, state)  # (B, C, H)
        y = y + self.D * x.to(y.dtype)[:, None]
        y = self.activation(y.reshape(x.shape[0], -1))  # (B, C·H); dropout is off at inference
        return self.output(y.to(x.dtype)), state

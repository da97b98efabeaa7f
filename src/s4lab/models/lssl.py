"""LSSL: the dense-A state space layer (Gu et al. 2021), the S4 paper's Table 2 baseline.

Notation: H = d_model channels, N = d_state, M = channels (rows of C per channel).
    A = HiPPO(init) (N, N), B = HiPPO(init) (N,)      fixed, shared, or one copy per channel
    Δ_h log-uniform in [dt_min, dt_max], Δ · rate     one step size per channel
    Ā, B̄ = bilinear(Δ_h, A, B)                        dense (H, N, N), (H, N)
    K̄_{m,h,l} = C_{m,h} Ā_h^l B̄_h                     materialised powers (s4lab.ssm.lssl)
    u = x · 1[l < length];  y = K̄ * u + D u           FFT convolution, D skip
    y = Linear(dropout(activation(y)))                M·H -> H (output_linear), else M = 1
Recurrent mode: s_k = Ā s_{k-1} + B̄ u_k,  y_k = C s_k + D u_k  (dense state update, O(N²));
a prompt's final state by the pairwise reduction of s4lab.ssm.recurrent.dense_final_state.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from s4lab.models.block import make_activation, masked_input
from s4lab.ssm.discretize import discretize_dense
from s4lab.ssm.fftconv import fft_conv, with_skip
from s4lab.ssm.hippo import transition
from s4lab.ssm.lssl import lssl_kernel
from s4lab.ssm.recurrent import dense_final_state
from s4lab.ssm.reference import ssm_step

LEARN_A = ("none", "shared", "channel")


class LSSL(nn.Module):
    """Dense HiPPO state space layer: kernel by Krylov powers, FFT convolution, D skip."""

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        d_state: int = 64,
        channels: int = 1,
        init: Literal["legs", "legt", "lagt", "fout"] = "legs",
        learn_A: Literal["none", "shared", "channel"] = "none",
        learn_dt: bool = False,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        lr: float | None = 0.0001,
        dropout: float = 0.0,
        activation: Literal["gelu", "silu", "relu", "tanh", "id"] = "gelu",
        output_linear: bool = True,
    ) -> None:
        super().__init__()
        if learn_A not in LEARN_A:
            raise ValueError(f"unknown learn_A {learn_A!r}; accepted: {', '.join(LEARN_A)}")
        if not output_linear and channels != 1:
            raise ValueError("output_linear=false keeps H·channels features; use channels=1")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.d_model, self.d_state, self.channels = d_model, d_state, channels
        A, B = transition(init, d_state)  # (N, N), (N,) float64
        A, B = A.float(), B.float()
        if learn_A == "channel":  # one copy per channel: more parameters, same cost
            A, B = A.expand(d_model, -1, -1).clone(), B.expand(d_model, -1).clone()
        # The official LSSL gives the transition (A, B) its own small lr and Δ lr 1e-3.
        self._register("A", A, learn_A != "none", lr)
        self._register("B", B, learn_A != "none", lr)
        log_dt = torch.rand(d_model) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self._register("log_dt", log_dt, learn_dt, 0.001)
        self.C = nn.Parameter(torch.randn(channels, d_model, d_state))  # (M, H, N)
        self.D = nn.Parameter(torch.randn(channels, d_model))  # (M, H)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout1d(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(channels * d_model, d_model) if output_linear else nn.Identity()
        self._step_ssm: tuple[Tensor, Tensor] | None = None

    def _register(self, name: str, tensor: Tensor, learn: bool, lr: float | None) -> None:
        """A trainable SSM tensor gets its own lr and no weight decay; a fixed one is a buffer."""
        if not learn:
            self.register_buffer(name, tensor)
            return
        self.register_parameter(name, nn.Parameter(tensor))
        getattr(self, name)._optim = {"weight_decay": 0.0} | ({} if lr is None else {"lr": lr})

    def discretize(
        self, rate: float = 1.0, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor]:
        """Bilinear Ā (H, N, N), B̄ (H, N) with Δ = exp(log_dt) · rate."""
        dtype = dtype or self.C.dtype
        H, N = self.d_model, self.d_state
        dt = torch.exp(self.log_dt.to(dtype)) * rate  # (H,)
        A = self.A.to(dtype).expand(H, N, N)
        B = self.B.to(dtype).expand(H, N)
        return discretize_dense("bilinear", dt, A, B)

    def kernel(self, L: int, rate: float = 1.0, dtype: torch.dtype | None = None) -> Tensor:
        """K̄ (M, H, L) = C Ā^l B̄."""
        dtype = dtype or self.C.dtype
        dA, dB = self.discretize(rate, dtype)
        return lssl_kernel(dA, dB, self.C.to(dtype), L)

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps -> (B, L, H). `rate` scales Δ."""
        x = masked_input(x, lengths, self.d_model)
        batch, L, _ = x.shape
        with torch.autocast(x.device.type, enabled=False):
            dtype = torch.promote_types(x.dtype, torch.float32)
            u = x.transpose(1, 2).to(dtype)  # (B, H, L)
            K = self.kernel(L, rate, dtype)  # (M, H, L)
            y = fft_conv(u, with_skip(K, self.D.to(dtype)))  # (B, M, H, L): K̄ * u + D u
        y = self.dropout(self.activation(y.reshape(batch, -1, L)))  # (B, M·H, L)
        return self.output(y.transpose(1, 2).to(x.dtype))  # (B, L, H)

    def setup_step(self) -> None:
        """Discretize once for recurrent mode, from the current parameters."""
        with torch.no_grad():
            dtype = torch.promote_types(self.C.dtype, torch.float32)
            self._step_ssm = self.discretize(1.0, dtype)

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """forward(x) (B, L, H) and the state s (B, H, N) that L steps leave (setup_step first)."""
        if self._step_ssm is None:
            raise RuntimeError("call setup_step() before forward_with_state()")
        dA, dB = self._step_ssm
        return self(x), dense_final_state(dA, dB, x.transpose(1, 2).to(dA.dtype))

    def default_state(self, batch_size: int) -> Tensor:
        """Zero state s (B, H, N)."""
        dtype = torch.promote_types(self.C.dtype, torch.float32)
        return torch.zeros(
            batch_size, self.d_model, self.d_state, dtype=dtype, device=self.C.device
        )

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One token: x (B, H), s (B, H, N) -> y (B, H), next s; matches forward() step by step."""
        if self._step_ssm is None:
            raise RuntimeError("call setup_step() before step()")
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        dA, dB = self._step_ssm
        u = x.to(dA.dtype)
        y, state = ssm_step(dA, dB, self.C.to(dA.dtype), u, state)  # (B, M, H), (B, H, N)
        y = y + self.D.to(dA.dtype) * u[:, None]
        y = self.activation(y.reshape(x.shape[0], -1))  # (B, M·H); dropout is off at inference
        return self.output(y.to(x.dtype)), state

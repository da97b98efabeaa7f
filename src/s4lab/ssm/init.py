"""Initial SSM tensors of the S4 and S4D kernels, drawn in the official order, in float64.

    Δ_h = exp(U[log dt_min, log dt_max])            h = 1..H, log-uniform, one per channel
    Λ, P̃, B̃ = HiPPO-`init` in NPLR form (S4) or an S4D init, copied n_ssm times
    Im B̃ clipped to [-B_clip, B_clip]               official HEAD hippo.nplr(B_clip=2.0)
    C ~ CN(0, 1), (channels, H, N/2)                 the drawn C; S4 stores C̃ = C (I - Ā^L)
deterministic (the official debugging init): log Δ_h = exp(linspace(log dt_min, log dt_max, H)),
i.e. Δ_h ∈ [e^dt_min, e^dt_max] ≈ 1, exactly as the official computes it; C = V* e_1 (S4D: V = I).
Draws use torch's global generator in the official order (Δ as float32 uniforms, then C as
complex64 normals; S4Block draws D before the kernel, as the official layer does), so a seed
gives the official's random numbers. The DPLR system itself is the official one conjugated (see
s4lab.ssm.hippo.nplr), so the same C gives the conjugate basis's kernel, not the identical one.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from s4lab.ssm.diag_init import diag_init
from s4lab.ssm.hippo import nplr


class SSMInit(NamedTuple):
    """Δ (H,) real; Λ, B̃ (n_ssm, N/2); P̃ (rank, n_ssm, N/2); C (channels, H, N/2); float64."""

    dt: Tensor
    Lambda: Tensor
    P: Tensor
    B: Tensor
    C: Tensor


def init_dt(H: int, dt_min: float, dt_max: float, deterministic: bool) -> Tensor:
    """Δ (H,) float64: log-uniform in [dt_min, dt_max], or the official deterministic values."""
    lo, hi = math.log(dt_min), math.log(dt_max)
    if deterministic:
        log_dt = torch.exp(torch.linspace(lo, hi, H, dtype=torch.float64))
    else:
        log_dt = (torch.rand(H) * (hi - lo) + lo).double()  # float32 draw, as the official
    return torch.exp(log_dt)


def draw_C(channels: int, H: int, V_half: Tensor, deterministic: bool) -> Tensor:
    """C (channels, H, N/2) complex128: CN(0, 1), or V* e_1 for V_half (N, N/2)."""
    if deterministic:
        return V_half[0].conj().expand(channels, H, -1).clone()
    return torch.randn(channels, H, V_half.shape[1], dtype=torch.complex64).to(torch.complex128)


def clip_imag(B: Tensor, B_clip: float | None) -> Tensor:
    """B with Im B clamped to [-B_clip, B_clip]; None leaves B unchanged."""
    if B_clip is None:
        return B
    return torch.complex(B.real, B.imag.clamp(-B_clip, B_clip))


def init_s4(
    init: str,
    N: int,
    rank: int,
    H: int,
    n_ssm: int,
    channels: int,
    dt_min: float,
    dt_max: float,
    B_clip: float | None,
    deterministic: bool,
) -> SSMInit:
    """S4: HiPPO-`init` in DPLR form, one mode per conjugate pair, n_ssm copies."""
    dt = init_dt(H, dt_min, dt_max, deterministic)
    Lambda, P, B, V = nplr(init, N, rank)
    half = N // 2
    C = draw_C(channels, H, V[:, :half], deterministic)
    B = clip_imag(B[:half], B_clip)
    return SSMInit(
        dt,
        Lambda[:half].expand(n_ssm, half).clone(),
        P[:, None, :half].expand(-1, n_ssm, half).clone(),
        B.expand(n_ssm, half).clone(),
        C,
    )


def init_s4d(
    init: str,
    N: int,
    H: int,
    n_ssm: int,
    channels: int,
    dt_min: float,
    dt_max: float,
    B_clip: float | None,
    deterministic: bool,
) -> SSMInit:
    """S4D: diagonal Λ and B from `init`, n_ssm copies; V = I, so deterministic C = e_1."""
    dt = init_dt(H, dt_min, dt_max, deterministic)
    Lambda, B = diag_init(init, N)
    half = N // 2
    C = draw_C(channels, H, torch.eye(N, half, dtype=torch.complex128), deterministic)
    return SSMInit(
        dt,
        Lambda.expand(n_ssm, half).clone(),
        torch.zeros(0, n_ssm, half, dtype=torch.complex128),
        clip_imag(B, B_clip).expand(n_ssm, half).clone(),
        C,
    )

"""SSM convolution kernels as pure functions: parameters in, kernel K̄ (C, H, L) out.

Notation: H = d_model, N = modes kept (half the state size), C = channels, r = rank, L = length.
S4 (DPLR, bilinear), S4 paper Sec. 3.3 and Alg. 1:
    A = Λ - P P*,   C̃ = C (I - Ā^L)                   parameters; C̃ absorbs the truncation
    K̂(ω) = Σ_{l<L} K̄_l ω^l = C̃ (I - Ā ω)⁻¹ B̄          truncated generating function
         = 2/(1+ω) · C̃ (z - ΔA)⁻¹ ΔB,  z = 2(1-ω)/(1+ω)
    (z - ΔΛ + ΔP P*)⁻¹ = R - R ΔP (I + P* R ΔP)⁻¹ P* R,  R = (z - ΔΛ)⁻¹    Woodbury
    K̄ = iFFT(K̂ at ω_k = exp(-2πik/L))                  each term a Cauchy kernel
At ω = -1 (even L) z is infinite; there K̂(-1) = C̃ (I + Ā)⁻¹ B̄ = C̃ ΔB / 2 exactly.
S4D (diagonal): K̄_l = 2 Re Σ_n C_n B̄_n Ā_n^l, a log-Vandermonde product with x = log Ā.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from s4lab.ssm.cauchy import cauchy
from s4lab.ssm.discretize import discretize_diag
from s4lab.ssm.vandermonde import log_vandermonde


def s4_kernel(
    dt: Tensor, Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor, L: int, backend: str = "auto"
) -> Tensor:
    """DPLR kernel. dt (H,), Lambda (H, N), P (r, H, N), B (H, N), C = C̃ (C, H, N) -> (C, H, L)."""
    n_cauchy = L // 2 if L % 2 == 0 else L // 2 + 1  # rfft nodes except ω = -1
    k = torch.arange(n_cauchy, device=Lambda.device, dtype=dt.dtype)
    omega = torch.exp(-2j * math.pi * k / L)  # (n,)
    z = 2 * (1 - omega) / (1 + omega)
    w = dt[:, None] * Lambda  # (H, N)
    dB, dP = dt[:, None] * B, dt[:, None] * P  # (H, N), (r, H, N)
    left = torch.cat([C, P.conj()], dim=0)  # (C + r, H, N): rows C̃ and P*
    right = torch.cat([dB[None], dP], dim=0)  # (1 + r, H, N): columns ΔB and ΔP
    k_all = cauchy(left[:, None] * right[None], z, w, backend)  # (C + r, 1 + r, H, n)
    channels, r = C.shape[0], P.shape[0]
    k00 = k_all[:channels, 0]  # (C, H, n)
    k01 = k_all[:channels, 1:].permute(2, 3, 0, 1)  # (H, n, C, r)
    k10 = k_all[channels:, 0].permute(1, 2, 0)[..., None]  # (H, n, r, 1)
    k11 = k_all[channels:, 1:].permute(2, 3, 0, 1)  # (H, n, r, r)
    if r == 1:
        correction = k01[..., 0] * k10[..., 0, :] / (1 + k11[..., 0, :])  # (H, n, C)
    else:
        eye = torch.eye(r, dtype=k11.dtype, device=k11.device)
        correction = (k01 @ torch.linalg.solve(eye + k11, k10))[..., 0]
    K_hat = (k00 - correction.permute(2, 0, 1)) * 2 / (1 + omega)  # (C, H, n)
    if L % 2 == 0:
        K_last = (C * dB).sum(-1).real  # C̃ ΔB / 2 over both halves of each pair
        K_hat = torch.cat([K_hat, K_last[..., None].to(K_hat.dtype)], dim=-1)
    return torch.fft.irfft(K_hat, n=L)


def s4d_kernel(
    dt: Tensor, A: Tensor, B: Tensor, C: Tensor, L: int, disc: str = "zoh", backend: str = "auto"
) -> Tensor:
    """Diagonal kernel. dt (H,), A, B (H, N) complex, C (C, H, N) -> (C, H, L)."""
    dA, dB = discretize_diag(disc, dt, A, B)
    log_dA = dt[:, None] * A if disc == "zoh" else torch.log(dA)  # (H, N)
    return log_vandermonde(C * dB, log_dA, L, backend)

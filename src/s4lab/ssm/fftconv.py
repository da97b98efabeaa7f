"""Convolution y = K̄ * u through the FFT, causal or two-sided.

    causal:     y_t = Σ_{s ≤ t} K̄_{t-s} u_s
    two-sided:  y_t = Σ_{s ≤ t} K̄⁰_{t-s} u_s + Σ_{s > t} K̄¹_{s-t-1} u_s   (bidirectional layers)
Zero-padding to 2L makes the circular convolution linear: lags -L..L-1 never alias.
"""

from __future__ import annotations

import torch
from torch import Tensor


def two_sided_kernel(K0: Tensor, K1: Tensor) -> Tensor:
    """(..., L) causal and anti-causal halves -> (..., 2L), laid out for `fft_conv`."""
    return torch.cat([K0, K1.flip(-1)], dim=-1)


def fft_conv(u: Tensor, K: Tensor) -> Tensor:
    """u: (B, H, L), K: (C, H, L) causal or (C, H, 2L) two-sided -> y: (B, C, H, L)."""
    L = u.shape[-1]
    if K.shape[-1] not in (L, 2 * L):
        raise ValueError(f"kernel length {K.shape[-1]} must be L = {L} or 2L = {2 * L}")
    u_f = torch.fft.rfft(u, n=2 * L)[:, None]  # (B, 1, H, L + 1)
    K_f = torch.fft.rfft(K, n=2 * L)  # (C, H, L + 1)
    return torch.fft.irfft(u_f * K_f, n=2 * L)[..., :L]

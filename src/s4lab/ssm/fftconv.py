"""Convolution y = K̄ * u through the FFT, causal or two-sided.

    causal:     y_t = Σ_{s ≤ t} K̄_{t-s} u_s
    two-sided:  y_t = Σ_{s ≤ t} K̄⁰_{t-s} u_s + Σ_{s > t} K̄¹_{s-t-1} u_s   (bidirectional layers)
Causal: zero-padding to any n >= 2L - 1 makes the circular convolution linear (no lag aliases
onto the first L outputs); n is the smallest 2^a 3^b 5^c >= 2L - 1, a length the FFT runs
fast (2L = 1488 is 2^4·3·31: its FFT took about twice as long as one of 1500 here, on CPU).
Two-sided: the anti-causal half sits at the end of a length-2L kernel, so n = 2L exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def two_sided_kernel(K0: Tensor, K1: Tensor) -> Tensor:
    """(..., L) causal and anti-causal halves -> (..., 2L), laid out for `fft_conv`."""
    return torch.cat([K0, K1.flip(-1)], dim=-1)


def fast_length(n: int) -> int:
    """The smallest 5-smooth integer 2^a 3^b 5^c >= n (n >= 1)."""
    best, p5 = 2 * n, 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def fft_conv(u: Tensor, K: Tensor) -> Tensor:
    """u: (B, H, L), K: (C, H, L) causal or (C, H, 2L) two-sided -> y: (B, C, H, L)."""
    L = u.shape[-1]
    if K.shape[-1] not in (L, 2 * L):
        raise ValueError(f"kernel length {K.shape[-1]} must be L = {L} or 2L = {2 * L}")
    n = fast_length(2 * L - 1) if K.shape[-1] == L else 2 * L
    u_f = torch.fft.rfft(u, n=n)[:, None]  # (B, 1, H, n/2 + 1)
    K_f = torch.fft.rfft(K, n=n)  # (C, H, n/2 + 1)
    return torch.fft.irfft(u_f * K_f, n=n)[..., :L]

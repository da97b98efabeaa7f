"""Convolution y = K̄ * u through the FFT, causal or two-sided.

    causal:     y_t = Σ_{s ≤ t} K̄_{t-s} u_s
    two-sided:  y_t = Σ_{s ≤ t} K̄⁰_{t-s} u_s + Σ_{s > t} K̄¹_{s-t-1} u_s   (bidirectional layers)
Causal: zero-padding to any n >= 2L - 1 makes the circular convolution linear (no lag aliases
onto the first L outputs); n is the smallest 2^a 3^b 5^c >= 2L - 1, a length the FFT runs
fast (2L = 1488 is 2^4·3·31: its FFT took about twice as long as one of 1500 here, on CPU).
Two-sided: the anti-causal half sits at the end of a length-2L kernel, so n = 2L exactly.

`fft_conv` is the fast path: real FFTs with a hand-written backward. With P the zero-padding
to n, T the truncation to the first L (or kernel-length) entries and F the real FFT of length n,
    y = T F⁻¹(F(P u) · F(P K̄))                    forward: one FFT of u, one of K̄ for the batch
    ∂u = T F⁻¹(Σ_C F(P g) · conj F(P K̄))          correlations, the adjoints of the circular
    ∂K̄ = T F⁻¹(Σ_B F(P g) · conj F(P u))          convolution; the sums run before the inverse
so the backward is one FFT of g and two inverse FFTs of summed spectra, where autograd through
`fft_conv_ref` (the reference) differentiates each transform and the broadcast product apart.
"""

from __future__ import annotations

import torch
from torch import Tensor


def two_sided_kernel(K0: Tensor, K1: Tensor) -> Tensor:
    """(..., L) causal and anti-causal halves -> (..., 2L), laid out for `fft_conv`."""
    return torch.cat([K0, K1.flip(-1)], dim=-1)


def with_skip(K: Tensor, D: Tensor) -> Tensor:
    """K̄ (C, H, L or 2L), D (C, H) -> the kernel of y = K̄ * u + D u: D added at lag 0."""
    return torch.cat([K[..., :1] + D[..., None], K[..., 1:]], dim=-1)


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


def conv_length(L: int, L_kernel: int) -> int:
    """The FFT length of a convolution of L inputs with a causal (L) or two-sided (2L) kernel."""
    if L_kernel not in (L, 2 * L):
        raise ValueError(f"kernel length {L_kernel} must be L = {L} or 2L = {2 * L}")
    return fast_length(2 * L - 1) if L_kernel == L else 2 * L


def fft_conv(u: Tensor, K: Tensor) -> Tensor:
    """u: (B, H, L), K: (C, H, L) causal or (C, H, 2L) two-sided -> y: (B, C, H, L)."""
    n = conv_length(u.shape[-1], K.shape[-1])
    return _FFTConv.apply(u, K, n)


def fft_conv_ref(u: Tensor, K: Tensor) -> Tensor:
    """Reference: the same convolution with autograd through torch.fft. (B, C, H, L)."""
    L = u.shape[-1]
    n = conv_length(L, K.shape[-1])
    u_f = torch.fft.rfft(u, n=n)[:, None]  # (B, 1, H, n/2 + 1)
    K_f = torch.fft.rfft(K, n=n)  # (C, H, n/2 + 1)
    return torch.fft.irfft(u_f * K_f, n=n)[..., :L]


class _FFTConv(torch.autograd.Function):
    """The module docstring's forward and backward; saves the two spectra, not the inputs."""

    @staticmethod
    def forward(ctx, u: Tensor, K: Tensor, n: int) -> Tensor:
        L, L_kernel = u.shape[-1], K.shape[-1]
        u_f = torch.fft.rfft(u, n=n)  # (B, H, n/2 + 1)
        K_f = torch.fft.rfft(K, n=n)  # (C, H, n/2 + 1)
        ctx.save_for_backward(u_f, K_f)
        ctx.sizes, ctx.dtypes = (n, L, L_kernel), (u.dtype, K.dtype)
        return torch.fft.irfft(u_f[:, None] * K_f, n=n)[..., :L]  # (B, C, H, L)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        u_f, K_f = ctx.saved_tensors
        n, L, L_kernel = ctx.sizes
        g_f = torch.fft.rfft(g, n=n)  # (B, C, H, n/2 + 1)
        grad_u = grad_K = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.fft.irfft((g_f * K_f.conj()).sum(1), n=n)[..., :L]  # (B, H, L)
            grad_u = grad_u.to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            g_K = torch.einsum("bchf,bhf->chf", g_f, u_f.conj())  # (C, H, n/2 + 1)
            grad_K = torch.fft.irfft(g_K, n=n)[..., :L_kernel]  # (C, H, L or 2L)
            grad_K = grad_K.to(ctx.dtypes[1])
        return grad_u, grad_K, None

"""Log-Vandermonde kernel with conjugate symmetry, the core of the S4D kernel.

    log_vandermonde(v, x, L)_l = Σ_n v_n exp(x_n l) + c.c. = 2 Re Σ_n v_n exp(x_n l),  l < L
With x = log Ā (x = ΔA for ZOH) and v = C B̄ this is the diagonal SSM's kernel K̄_l = C Ā^l B̄.
The naive backend writes the gradient out and recomputes it chunk by chunk, so neither pass
holds more than (H, N, chunk) at once; the triton backend (s4lab.ssm.vandermonde_triton) fuses
the same sums into GPU kernels.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from s4lab.ssm.backend import chunks, keops, keops_failed, resolve_backend


def log_vandermonde(v: Tensor, x: Tensor, L: int, backend: str = "auto") -> Tensor:
    """v: (..., H, N), x: (H, N) complex -> K (..., H, L) real."""
    if v.shape[-2:] != x.shape:
        raise ValueError(f"v (..., H, N) {tuple(v.shape)} and x (H, N) {tuple(x.shape)} disagree")
    backend = resolve_backend(backend, v.device)
    if backend == "keops":
        return _vandermonde_keops(v, x.expand_as(v), L)
    batch = v.shape[:-2]
    v = v.reshape(-1, *x.shape)  # (K, H, N)
    if backend == "triton":
        from s4lab.ssm.vandermonde_triton import VandermondeTriton  # imports triton only if chosen

        K = VandermondeTriton.apply(v, x.to(v.dtype), L)  # (K, H, L)
    else:
        K = _VandermondeNaive.apply(v, x, L)
    return K.reshape(*batch, *K.shape[1:])


def log_vandermonde_ref(v: Tensor, x: Tensor, L: int) -> Tensor:
    """Reference: the (..., H, N, L) Vandermonde matrix materialized, autograd."""
    l = torch.arange(L, device=x.device, dtype=x.real.dtype)
    return 2 * (v[..., None] * torch.exp(x[..., None] * l)).sum(-2).real


class _VandermondeNaive(torch.autograd.Function):
    """out[k, h, l] = 2 Re Σ_n v[k, h, n] E[h, n, l],  E = exp(x l): per chunk one exp of
    (H, N, chunk) shared by all K rows, then a batched matmul.
    Gradients: ∂v = 2 g Ē, ∂x = 2 v̄ Σ_l g l Ē (g real).
    """

    @staticmethod
    def forward(ctx, v: Tensor, x: Tensor, L: int) -> Tensor:
        ctx.save_for_backward(v, x)
        vt = v.transpose(0, 1)  # (H, K, N)
        out = [2 * (vt @ E).real for E in _powers(x, L)]
        return torch.cat(out, dim=-1).transpose(0, 1)  # (K, H, L)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, None]:
        v, x = ctx.saved_tensors
        K, L = v.shape[0], g.shape[-1]
        l = torch.arange(L, device=x.device, dtype=x.real.dtype)
        g = g.transpose(0, 1).to(v.dtype)  # (H, K, L)
        G = torch.zeros(x.shape[0], 2 * K, x.shape[1], dtype=v.dtype, device=v.device)
        for s, E_conj in zip(chunks(x.numel(), L), _powers(x.conj(), L), strict=True):
            gc = g[..., s]
            G += torch.cat([gc, gc * l[s]], dim=1) @ E_conj.transpose(1, 2)  # (H, 2K, N)
        G = 2 * G.transpose(0, 1)  # (2K, H, N)
        return G[:K], (v.conj() * G[K:]).sum(0), None


def _powers(x: Tensor, L: int, fine: int = 64) -> Iterator[Tensor]:
    """exp(x l) for l < L, chunk by chunk (H, N, chunk), with few complex exps (they are slow):
    exp(x (l₀ + f·a + b)) = exp(x (l₀ + f·a)) · exp(x b), an outer product over a and b < f."""
    fine_powers = torch.exp(x[..., None] * torch.arange(fine, device=x.device))  # (H, N, f)
    for s in chunks(x.numel(), L):
        n = s.stop - s.start
        starts = s.start + fine * torch.arange(-(-n // fine), device=x.device)
        coarse = torch.exp(x[..., None] * starts)  # (H, N, ⌈n/f⌉)
        yield (coarse[..., None] * fine_powers[..., None, :]).flatten(-2)[..., :n]


def _vandermonde_keops(v: Tensor, x: Tensor, L: int) -> Tensor:
    """pykeops backend: 2 Σ e^{l Re x} (Re v cos(l Im x) - Im v sin(l Im x)), reduced lazily."""
    LazyTensor = keops().LazyTensor
    batch, N = v.shape[:-1], v.shape[-1]
    v, x = v.reshape(-1, N), x.reshape(-1, N)

    def per_mode(t: Tensor) -> LazyTensor:  # (Bt, N) -> (Bt, 1, N, 1), a j-variable
        return LazyTensor(t.contiguous()[:, None, :, None])

    vr, vi, xr, xi = per_mode(v.real), per_mode(v.imag), per_mode(x.real), per_mode(x.imag)
    l = LazyTensor(torch.arange(L, device=v.device, dtype=v.real.dtype)[None, :, None, None])
    try:
        K = ((xr * l).exp() * (vr * (xi * l).cos() - vi * (xi * l).sin())).sum(dim=2)
    except Exception as err:
        raise keops_failed(err) from err
    return 2 * K[..., 0].reshape(*batch, L)

"""Cauchy kernel with conjugate symmetry, the core of the S4 (DPLR) kernel.

    cauchy(v, z, w)_l = Σ_n v_n / (z_l - w_n) + v̄_n / (z_l - w̄_n)
                      = Σ_n (2 z_l Re v_n - 2 Re(v_n w̄_n)) / (z_l² - 2 z_l Re w_n + |w_n|²)
Only one mode of each conjugate pair is stored, so N here is half the state size.
The naive backend never holds more than (H, N, chunk) at once, forward or backward: its
gradient is written out and recomputed chunk by chunk, so memory is O(H·N·chunk), not O(H·N·L).
The triton backend (s4lab.ssm.cauchy_triton) fuses the same sums into GPU kernels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.ssm.backend import chunks, keops, keops_failed, resolve_backend


def cauchy(v: Tensor, z: Tensor, w: Tensor, backend: str = "auto") -> Tensor:
    """v: (..., H, N), w: (H, N) complex; z: (L,) complex nodes, no gradient -> (..., H, L)."""
    if v.shape[-2:] != w.shape:
        raise ValueError(f"v (..., H, N) {tuple(v.shape)} and w (H, N) {tuple(w.shape)} disagree")
    backend = resolve_backend(backend, v.device)
    if backend == "keops":
        return _cauchy_keops(v, z, w.expand_as(v))
    batch = v.shape[:-2]
    v = v.reshape(-1, *w.shape)  # (K, H, N)
    if backend == "triton":
        from s4lab.ssm.cauchy_triton import CauchyTriton  # imports triton only if chosen

        out = CauchyTriton.apply(v, z.to(v.dtype), w.to(v.dtype))  # (K, H, L)
    else:
        a, b = 2 * v.real, 2 * (v * w.conj()).real  # numerator z a - b
        c, d = 2 * w.real, w.real**2 + w.imag**2  # denominator z² - z c + d
        out = _CauchyNaive.apply(a, b, c, d, z.to(v.dtype))  # (K, H, L)
    return out.reshape(*batch, *w.shape[:-1], -1)


def cauchy_ref(v: Tensor, z: Tensor, w: Tensor) -> Tensor:
    """Reference: both halves of each conjugate pair, materialized, autograd. (..., H, L)."""
    v2 = torch.cat([v, v.conj()], dim=-1)[..., None, :]  # (..., H, 1, 2N)
    w2 = torch.cat([w, w.conj()], dim=-1)[..., None, :]
    return (v2 / (z[:, None] - w2)).sum(-1)


class _CauchyNaive(torch.autograd.Function):
    """out[k, h, l] = Σ_n (z_l a - b)[k, h, n] q[h, n, l],  q = 1 / (z_l² - z_l c + d).

    The modes' denominators q are shared by all K numerators, so each chunk is one reciprocal
    of (H, N, chunk) and batched matmuls. Gradients (for real a, b, c, d: Re(ḡ·∂out)):
    ∂a = z q, ∂b = -q, ∂c = (z a - b) z q², ∂d = -(z a - b) q².
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, c: Tensor, d: Tensor, z: Tensor) -> Tensor:
        ctx.save_for_backward(a, b, c, d, z)
        K = a.shape[0]
        ab = torch.cat([a, b], dim=0).transpose(0, 1).to(z.dtype)  # (H, 2K, N)
        out = []
        for s in chunks(c.numel(), z.shape[-1]):
            zc = z[s]  # (chunk,)
            q = 1 / (zc * (zc - c[..., None]) + d[..., None])  # (H, N, chunk)
            p = ab @ q  # (H, 2K, chunk)
            out.append(zc * p[:, :K] - p[:, K:])
        return torch.cat(out, dim=-1).transpose(0, 1)  # (K, H, L)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, None]:
        a, b, c, d, z = ctx.saved_tensors
        K = a.shape[0]
        g = g.transpose(0, 1)  # (H, K, L)
        G_q = torch.zeros(c.shape[0], 2 * K, c.shape[1], dtype=z.dtype, device=z.device)
        G_q2 = torch.zeros(c.shape[0], 3 * K, c.shape[1], dtype=z.dtype, device=z.device)
        for s in chunks(c.numel(), z.shape[-1]):
            zc = z[s].conj()
            gc = g[..., s]
            q = 1 / (zc * (zc - c[..., None]) + d[..., None])  # conj(q): (H, N, chunk)
            gz = gc * zc
            G_q += torch.cat([gz, gc], dim=1) @ q.transpose(1, 2)
            G_q2 += torch.cat([gz * zc, gz, gc], dim=1) @ (q * q).transpose(1, 2)
        G_q, G_q2 = G_q.real.transpose(0, 1), G_q2.real.transpose(0, 1)  # (2K | 3K, H, N)
        grad_a, grad_b = G_q[:K], -G_q[K:]
        grad_c = (a * G_q2[:K] - b * G_q2[K : 2 * K]).sum(0)
        grad_d = -(a * G_q2[K : 2 * K] - b * G_q2[2 * K :]).sum(0)
        return grad_a, grad_b, grad_c, grad_d, None


def _cauchy_keops(v: Tensor, z: Tensor, w: Tensor) -> Tensor:
    """pykeops backend: the real-arithmetic form of the symmetric sum, reduced over N lazily."""
    LazyTensor = keops().LazyTensor
    batch, N = v.shape[:-1], v.shape[-1]
    v, w = v.reshape(-1, N), w.reshape(-1, N)

    def per_mode(x: Tensor) -> LazyTensor:  # (Bt, N) -> (Bt, 1, N, 1), a j-variable
        return LazyTensor(x.contiguous()[:, None, :, None])

    a, b = per_mode(2 * v.real), per_mode(2 * (v * w.conj()).real)
    c, d = per_mode(2 * w.real), per_mode(w.real**2 + w.imag**2)
    zr = LazyTensor(
        z.real.to(v.real.dtype).contiguous()[None, :, None, None]
    )  # (1, L, 1, 1), i-variable
    zi = LazyTensor(z.imag.to(v.real.dtype).contiguous()[None, :, None, None])
    num_r, num_i = zr * a - b, zi * a
    den_r, den_i = zr * zr - zi * zi - zr * c + d, 2 * zr * zi - zi * c
    den2 = den_r * den_r + den_i * den_i
    try:
        real = ((num_r * den_r + num_i * den_i) / den2).sum(dim=2)  # (Bt, L, 1)
        imag = ((num_i * den_r - num_r * den_i) / den2).sum(dim=2)
    except Exception as err:
        raise keops_failed(err) from err
    return torch.complex(real[..., 0], imag[..., 0]).reshape(*batch, -1)

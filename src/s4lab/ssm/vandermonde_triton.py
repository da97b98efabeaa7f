"""Triton backend of the log-Vandermonde kernel (s4lab.ssm.vandermonde), forward and backward.

    out_l = 2 Re Σ_n v_n E_nl = 2 Σ_n e^{l Re x_n} (Re v_n cos(l Im x_n) - Im v_n sin(l Im x_n))
    E_nl = exp(x_n l),   ∂v_n = 2 Σ_l g_l Ē_nl,   ∂x_n = 2 v̄_n Σ_l g_l l Ē_nl      (g real)
Only one mode of each conjugate pair is stored (the 2 Re), as in the naive backend; ∂ follows
PyTorch's convention for complex leaves (∂/∂Re + i ∂/∂Im). E is formed from exp, cos and sin
directly; the (real, imag) layout, the grids and the CPU interpreter are as in
s4lab.ssm.cauchy_triton, with ∂x summed over k in PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from s4lab.ssm.backend import as_real_pairs

BLOCK_N = 32  # modes per tile
BLOCK_L = 64  # positions per tile


@triton.jit
def _powers(xr, xi, l, valid):
    """E = exp(x l) as (real, imag), zero on padded lanes (e^{l Re x} may overflow there)."""
    lx = l.to(xr.dtype)
    e = tl.where(valid, tl.exp(xr * lx), 0.0)
    return e * tl.cos(xi * lx), e * tl.sin(xi * lx)


@triton.jit
def _vandermonde_fwd(v_ptr, x_ptr, out_ptr, H, N, L, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr):
    """out[row, l] = 2 Re Σ_n v E for one row and one block of positions; v (R, N), out (R, L)."""
    row = tl.program_id(0).to(tl.int64)
    h = row % H
    l = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    l_in = l < L
    acc = tl.zeros((BLOCK_N, BLOCK_L), dtype=out_ptr.dtype.element_ty)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_in = n < N
        vr = tl.load(v_ptr + 2 * (row * N + n), mask=n_in, other=0.0)[:, None]  # (BLOCK_N, 1)
        vi = tl.load(v_ptr + 2 * (row * N + n) + 1, mask=n_in, other=0.0)[:, None]
        xr = tl.load(x_ptr + 2 * (h * N + n), mask=n_in, other=0.0)[:, None]
        xi = tl.load(x_ptr + 2 * (h * N + n) + 1, mask=n_in, other=0.0)[:, None]
        er, ei = _powers(xr, xi, l[None, :], n_in[:, None] & l_in[None, :])  # (BLOCK_N, BLOCK_L)
        acc += vr * er - vi * ei
    tl.store(out_ptr + row * L + l, 2 * tl.sum(acc, axis=0), mask=l_in)


@triton.jit
def _vandermonde_bwd(
    v_ptr,
    x_ptr,
    g_ptr,
    dv_ptr,
    dx_ptr,
    H,
    N,
    L,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
):
    """For one row and one block of modes: dv = 2 Σ_l g Ē, dx = 2 v̄ Σ_l g l Ē; (R, N)."""
    row = tl.program_id(0).to(tl.int64)
    h = row % H
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_in = n < N
    vr = tl.load(v_ptr + 2 * (row * N + n), mask=n_in, other=0.0)
    vi = tl.load(v_ptr + 2 * (row * N + n) + 1, mask=n_in, other=0.0)
    xr = tl.load(x_ptr + 2 * (h * N + n), mask=n_in, other=0.0)[:, None]  # (BLOCK_N, 1)
    xi = tl.load(x_ptr + 2 * (h * N + n) + 1, mask=n_in, other=0.0)[:, None]
    sr = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)  # Σ_l g Ē
    si = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)
    tr = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)  # Σ_l g l Ē
    ti = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)
    for l0 in range(0, L, BLOCK_L):
        l = l0 + tl.arange(0, BLOCK_L)
        l_in = l < L
        g = tl.load(g_ptr + row * L + l, mask=l_in, other=0.0)[None, :]  # (1, BLOCK_L)
        er, ei = _powers(xr, xi, l[None, :], n_in[:, None] & l_in[None, :])  # (BLOCK_N, BLOCK_L)
        pr, pi = g * er, -g * ei  # g Ē
        gl = l[None, :].to(vr.dtype)
        sr += pr
        si += pi
        tr += gl * pr
        ti += gl * pi
    sr, si = 2 * tl.sum(sr, axis=1), 2 * tl.sum(si, axis=1)  # (BLOCK_N,)
    tr, ti = 2 * tl.sum(tr, axis=1), 2 * tl.sum(ti, axis=1)
    dv = dv_ptr + 2 * (row * N + n)
    tl.store(dv, sr, mask=n_in)
    tl.store(dv + 1, si, mask=n_in)
    dx = dx_ptr + 2 * (row * N + n)
    tl.store(dx, vr * tr + vi * ti, mask=n_in)  # v̄ t
    tl.store(dx + 1, vr * ti - vi * tr, mask=n_in)


class VandermondeTriton(torch.autograd.Function):
    """v: (K, H, N), x: (H, N) complex64 or complex128, one dtype; L: int -> (K, H, L) real."""

    @staticmethod
    def forward(ctx, v: Tensor, x: Tensor, L: int) -> Tensor:
        if v.dtype not in (torch.complex64, torch.complex128) or v.dtype != x.dtype:
            raise TypeError(
                f"Triton log_vandermonde takes complex64 or complex128 of one dtype, got v "
                f"{v.dtype}, x {x.dtype}"
            )
        K, H, N = v.shape
        v_r, x_r = as_real_pairs(v), as_real_pairs(x)
        out = torch.empty(K, H, L, dtype=v_r.dtype, device=v.device)
        grid = (K * H, triton.cdiv(L, BLOCK_L))
        _vandermonde_fwd[grid](v_r, x_r, out, H, N, L, BLOCK_N=BLOCK_N, BLOCK_L=BLOCK_L)
        ctx.save_for_backward(v_r, x_r)
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, None]:
        v_r, x_r = ctx.saved_tensors
        K, H, N = v_r.shape[:3]
        L = g.shape[-1]
        dv = torch.empty_like(v_r)  # (K, H, N, 2)
        dx = torch.empty_like(v_r)  # per row, summed over k below
        grid = (K * H, triton.cdiv(N, BLOCK_N))
        _vandermonde_bwd[grid](
            v_r, x_r, g.contiguous(), dv, dx, H, N, L, BLOCK_N=BLOCK_N, BLOCK_L=BLOCK_L
        )
        return torch.view_as_complex(dv), torch.view_as_complex(dx).sum(0), None

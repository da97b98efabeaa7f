"""Triton backend of the Cauchy kernel (s4lab.ssm.cauchy), forward and backward.

    out_l = Σ_n v_n α_nl + v̄_n β_nl,   α = 1 / (z_l - w_n),   β = 1 / (z_l - w̄_n)
    ∂v_n = Σ_l g_l ᾱ_nl + ḡ_l β_nl,   ∂w_n = v̄_n Σ_l g_l ᾱ_nl² + ḡ_l β_nl²
g is the upstream gradient and ∂ PyTorch's convention for complex leaves (∂/∂Re + i ∂/∂Im).
Only one mode of each conjugate pair is stored (N is half the state size), as in the naive
backend; each pair's two terms are summed separately rather than over a common denominator.
Triton has no complex type: tensors travel as torch.view_as_real (..., 2) views and the
arithmetic is written out on (real, imag) pairs. The forward grid is (row = (k, h), L block),
looping over N; the backward grid is (row, N block), looping over L, so every sum over L stays
in one program (deterministic, no atomics), and ∂w sums the rows' v̄ Σ_l (...) over k in PyTorch.
For CUDA tensors; on CPU only in Triton's interpreter, for tests (s4lab.ssm.backend says how).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from s4lab.ssm.backend import as_real_pairs

BLOCK_N = 32  # modes per tile
BLOCK_L = 64  # nodes per tile


@triton.jit
def _reciprocals(zr, zi, wr, wi, valid):
    """α = 1 / (z - w) and β = 1 / (z - w̄) as (real, imag) pairs, by broadcasting.

    Padded lanes (not `valid`) get a finite dummy, so they never make inf or nan: there v = 0
    or g = 0, or the result is not stored.
    """
    dr, di = zr - wr, zi - wi
    s = 1 / tl.where(valid, dr * dr + di * di, 1.0)
    ar, ai = dr * s, -di * s
    di = zi + wi
    s = 1 / tl.where(valid, dr * dr + di * di, 1.0)
    return ar, ai, dr * s, -di * s


@triton.jit
def _cauchy_fwd(
    v_ptr, w_ptr, z_ptr, out_ptr, H, N, L, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr
):
    """out[row, l] = Σ_n v α + v̄ β for one row and one block of nodes; v (R, N), out (R, L)."""
    row = tl.program_id(0).to(tl.int64)
    h = row % H
    l = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    l_in = l < L
    zr = tl.load(z_ptr + 2 * l, mask=l_in, other=0.0)[None, :]  # (1, BLOCK_L)
    zi = tl.load(z_ptr + 2 * l + 1, mask=l_in, other=0.0)[None, :]
    acc_r = tl.zeros((BLOCK_N, BLOCK_L), dtype=zr.dtype)
    acc_i = tl.zeros((BLOCK_N, BLOCK_L), dtype=zr.dtype)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_in = n < N
        vr = tl.load(v_ptr + 2 * (row * N + n), mask=n_in, other=0.0)[:, None]  # (BLOCK_N, 1)
        vi = tl.load(v_ptr + 2 * (row * N + n) + 1, mask=n_in, other=0.0)[:, None]
        wr = tl.load(w_ptr + 2 * (h * N + n), mask=n_in, other=0.0)[:, None]
        wi = tl.load(w_ptr + 2 * (h * N + n) + 1, mask=n_in, other=0.0)[:, None]
        ar, ai, br, bi = _reciprocals(zr, zi, wr, wi, n_in[:, None] & l_in[None, :])
        acc_r += vr * (ar + br) - vi * (ai - bi)  # (BLOCK_N, BLOCK_L)
        acc_i += vr * (ai + bi) + vi * (ar - br)
    out = out_ptr + 2 * (row * L + l)
    tl.store(out, tl.sum(acc_r, axis=0), mask=l_in)
    tl.store(out + 1, tl.sum(acc_i, axis=0), mask=l_in)


@triton.jit
def _cauchy_bwd(
    v_ptr,
    w_ptr,
    z_ptr,
    g_ptr,
    dv_ptr,
    dw_ptr,
    H,
    N,
    L,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
):
    """For one row and one block of modes: dv = Σ_l g ᾱ + ḡ β, dw = v̄ Σ_l g ᾱ² + ḡ β² (R, N)."""
    row = tl.program_id(0).to(tl.int64)
    h = row % H
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_in = n < N
    vr = tl.load(v_ptr + 2 * (row * N + n), mask=n_in, other=0.0)
    vi = tl.load(v_ptr + 2 * (row * N + n) + 1, mask=n_in, other=0.0)
    wr = tl.load(w_ptr + 2 * (h * N + n), mask=n_in, other=0.0)[:, None]  # (BLOCK_N, 1)
    wi = tl.load(w_ptr + 2 * (h * N + n) + 1, mask=n_in, other=0.0)[:, None]
    sr = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)  # Σ_l g ᾱ + ḡ β
    si = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)
    tr = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)  # Σ_l g ᾱ² + ḡ β²
    ti = tl.zeros((BLOCK_N, BLOCK_L), dtype=vr.dtype)
    for l0 in range(0, L, BLOCK_L):
        l = l0 + tl.arange(0, BLOCK_L)
        l_in = l < L
        zr = tl.load(z_ptr + 2 * l, mask=l_in, other=0.0)[None, :]  # (1, BLOCK_L)
        zi = tl.load(z_ptr + 2 * l + 1, mask=l_in, other=0.0)[None, :]
        gr = tl.load(g_ptr + 2 * (row * L + l), mask=l_in, other=0.0)[None, :]
        gi = tl.load(g_ptr + 2 * (row * L + l) + 1, mask=l_in, other=0.0)[None, :]
        ar, ai, br, bi = _reciprocals(zr, zi, wr, wi, n_in[:, None] & l_in[None, :])
        pr, pi = gr * ar + gi * ai, gi * ar - gr * ai  # g ᾱ: (BLOCK_N, BLOCK_L)
        qr, qi = gr * br + gi * bi, gr * bi - gi * br  # ḡ β
        sr += pr + qr
        si += pi + qi
        tr += pr * ar + pi * ai + qr * br - qi * bi  # (g ᾱ) ᾱ + (ḡ β) β
        ti += pi * ar - pr * ai + qr * bi + qi * br
    sr, si = tl.sum(sr, axis=1), tl.sum(si, axis=1)  # (BLOCK_N,)
    tr, ti = tl.sum(tr, axis=1), tl.sum(ti, axis=1)
    dv = dv_ptr + 2 * (row * N + n)
    tl.store(dv, sr, mask=n_in)
    tl.store(dv + 1, si, mask=n_in)
    dw = dw_ptr + 2 * (row * N + n)
    tl.store(dw, vr * tr + vi * ti, mask=n_in)  # v̄ t
    tl.store(dw + 1, vr * ti - vi * tr, mask=n_in)


class CauchyTriton(torch.autograd.Function):
    """v: (K, H, N), w: (H, N), z: (L,) complex64 or complex128, one dtype -> (K, H, L)."""

    @staticmethod
    def forward(ctx, v: Tensor, z: Tensor, w: Tensor) -> Tensor:
        if v.dtype not in (torch.complex64, torch.complex128) or not v.dtype == z.dtype == w.dtype:
            raise TypeError(
                f"Triton cauchy takes complex64 or complex128 of one dtype, got v {v.dtype}, "
                f"z {z.dtype}, w {w.dtype}"
            )
        (K, H, N), L = v.shape, z.shape[-1]
        v_r, z_r, w_r = as_real_pairs(v), as_real_pairs(z), as_real_pairs(w)
        out = torch.empty(K, H, L, 2, dtype=v_r.dtype, device=v.device)
        grid = (K * H, triton.cdiv(L, BLOCK_L))
        _cauchy_fwd[grid](v_r, w_r, z_r, out, H, N, L, BLOCK_N=BLOCK_N, BLOCK_L=BLOCK_L)
        ctx.save_for_backward(v_r, z_r, w_r)
        return torch.view_as_complex(out)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None, Tensor]:
        v_r, z_r, w_r = ctx.saved_tensors
        K, H, N = v_r.shape[:3]
        L = z_r.shape[0]
        dv = torch.empty_like(v_r)  # (K, H, N, 2)
        dw = torch.empty_like(v_r)  # per row, summed over k below
        grid = (K * H, triton.cdiv(N, BLOCK_N))
        _cauchy_bwd[grid](
            v_r, w_r, z_r, as_real_pairs(g), dv, dw, H, N, L, BLOCK_N=BLOCK_N, BLOCK_L=BLOCK_L
        )
        return torch.view_as_complex(dv), None, torch.view_as_complex(dw).sum(0)

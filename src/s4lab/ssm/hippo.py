"""HiPPO transition matrices and their normal-plus-low-rank (NPLR) form, in float64.

Notation (S4 paper, Sec. 3): N = state size, r = rank of the correction.
    x'(t) = A x(t) + B u(t)                           HiPPO ODE for measure `init`
    A = S - P Pᵀ,  S normal (c·I + skew-symmetric)    each HiPPO matrix is NPLR
    S = V Λ V*,  V unitary                            diagonalize the normal part stably
    A = V (Λ - P̃ P̃*) V*,  P̃ = V* P,  B̃ = V* B          the DPLR form S4 parameterizes
LegS: A_nk = -√(2n+1)√(2k+1) (n > k), -(n+1) (n = k), 0 (n < k); B_n = √(2n+1); P_n = √(n+½).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

HIPPO_INITS = ("legs", "legt", "lagt", "fout")


def _check_init(init: str) -> None:
    if init not in HIPPO_INITS:
        raise ValueError(f"unknown HiPPO init {init!r}; accepted: {', '.join(HIPPO_INITS)}")


def transition(init: str, N: int) -> tuple[Tensor, Tensor]:
    """HiPPO matrices of measure `init`: A (N, N), B (N,), real float64."""
    _check_init(init)
    n = torch.arange(N, dtype=torch.float64)
    i, k = n[:, None], n[None, :]
    if init == "legs":
        s = torch.sqrt(2 * n + 1)
        A = -torch.where(i > k, s[:, None] * s[None, :], torch.diag(n + 1))
        B = s.clone()
    elif init == "legt":
        s = torch.sqrt(2 * n + 1)
        sign = torch.where(i >= k, 1.0, (-1.0) ** (i - k))
        A = -s[:, None] * s[None, :] * sign
        B = s.clone()
    elif init == "lagt":
        A = torch.eye(N, dtype=torch.float64) / 2 - torch.tril(
            torch.ones(N, N, dtype=torch.float64)
        )
        B = torch.ones(N, dtype=torch.float64)
    else:  # fout: cos/sin pairs (2j-1, 2j) rotating at frequency 2πj, index 0 the constant
        P = rank_correction("fout", N)[0]
        S = torch.zeros(N, N, dtype=torch.float64)
        for j in range(1, (N - 1) // 2 + 1):
            S[2 * j, 2 * j - 1] = 2 * math.pi * j
            S[2 * j - 1, 2 * j] = -2 * math.pi * j
        A = S - P[:, None] * P[None, :]
        B = math.sqrt(2) * P
    return A, B


def rank_correction(init: str, N: int) -> Tensor:
    """Low-rank P (r, N) with A + Pᵀ P normal: rank 1 for legs/lagt/fout, 2 for legt."""
    _check_init(init)
    n = torch.arange(N, dtype=torch.float64)
    if init == "legs":
        return torch.sqrt(n + 0.5)[None]
    if init == "legt":
        s = torch.sqrt(2 * n + 1)
        even = (n % 2 == 0).double()
        return torch.stack([s * even, s * (1 - even)])
    if init == "lagt":
        return torch.full((1, N), math.sqrt(0.5), dtype=torch.float64)
    P = torch.zeros(1, N, dtype=torch.float64)  # fout
    P[0, 0] = math.sqrt(2)
    P[0, 1::2] = 2.0
    return P


def nplr(init: str, N: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Diagonalize the normal part: A = V (diag(Λ) - P̃ᵀ P̃.conj()) V*, all N modes.

    Returns Λ (N,), P̃ (r, N), B̃ (N,), V (N, N), complex128. N must be even: the first N/2 modes
    hold one of each conjugate pair (Im Λ ≥ 0, descending), the last N/2 their conjugates.
    """
    if N % 2:
        raise ValueError(f"N = {N} must be even: S4 keeps one mode of each conjugate pair")
    A, B = transition(init, N)
    P = rank_correction(init, N)
    S = A + P.T @ P  # (N, N) normal: c I + skew
    c = torch.diagonal(S).mean()
    skew = S - c * torch.eye(N, dtype=torch.float64)
    if not torch.allclose(skew, -skew.T, atol=1e-9 * N):
        raise RuntimeError(f"HiPPO-{init}: A + PᵀP is not c·I + skew-symmetric")
    # -i·skew is Hermitian: eigh is backward stable, unlike eig on a non-normal A
    w, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    V_half, w_half = _conjugate_half(w, V)
    V = torch.cat([V_half, V_half.conj()], dim=1)  # (N, N): second half = conjugate modes
    Lambda = c + 1j * torch.cat([w_half, -w_half])
    V_inv = V.conj().T
    return Lambda, (V_inv @ P.T.to(V.dtype)).T, V_inv @ B.to(V.dtype), V


def _conjugate_half(w: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
    """One eigenvector of each conjugate pair of a real skew matrix: V_half (N, N/2), w_half (N/2,).

    Modes with w > 0 pair with their conjugates (w < 0). The null space (FouT's constant and
    unpaired cosine) is real: split it into pairs (a ± i b)/√2, which are conjugates too.
    """
    N = V.shape[0]
    tol = 1e-9 * max(1.0, w.abs().max().item())
    pos = w > tol
    order = torch.argsort(w[pos], descending=True)
    V_half, w_half = V[:, pos][:, order], w[pos][order]
    zero = w.abs() <= tol
    if zero.any():
        Z = V[:, zero]
        U, sv, _ = torch.linalg.svd(torch.cat([Z.real, Z.imag], dim=1))
        R = U[:, : int(zero.sum())]  # (N, 2m) real orthonormal basis of the null space
        pairs = (R[:, 0::2] + 1j * R[:, 1::2]) / math.sqrt(2)
        V_half = torch.cat([V_half, pairs], dim=1)
        w_half = torch.cat([w_half, torch.zeros(pairs.shape[1], dtype=w.dtype)])
    if V_half.shape[1] != N // 2:
        raise RuntimeError("spectrum is not closed under conjugation (odd N?)")
    return V_half, w_half

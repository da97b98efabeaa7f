"""HiPPO transition matrices and their normal-plus-low-rank (NPLR) form, in float64.

Notation (S4 paper, Sec. 3): N = state size, r = rank of the correction.
    x'(t) = A x(t) + B u(t)                           HiPPO ODE for measure `init`
    A = S - Pᵀ P,  S normal (c·I + skew-symmetric)    each HiPPO matrix is NPLR
    S = V Λ V*,  V unitary                            diagonalize the normal part stably
    A = V (Λ - P̃ᵀ P̃̄) V*,  P̃ = P V̄,  B̃ = V* B        the DPLR form S4 parameterizes
Matrices (n, k = 0..N-1; the official `hippo.transition` formulas, state-spaces/s4 HEAD and v3):
    legs: A_nk = -√(2n+1)√(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);  B_n = √(2n+1);  P_n = √(n+½)
    legt: A_nk = -½ √(2n+1)√(2k+1) · (1 if n ≥ k else (-1)^(n-k));  B_n = ½ √(2n+1)
          P = (√(2n+1) at odd n, √(2n+1) at even n) / √2, rank 2
    lagt: A_nk = -1 (n > k), -½ (n = k), 0 (n < k);  B_n = 1;  P_n = √½
    fout: A = R - B Bᵀ, R_{2j,2j+1} = -πj, R_{2j+1,2j} = πj (j ≥ 1);  B = (1, 0, √2, 0, √2, 0, ...)
          P = B, rank 1; index 0 is the constant, index 1 an inert zero mode
Convention: legt and fout are half the published matrices (HiPPO paper LegT with θ = 1:
-√(2n+1)√(2k+1)(…), B_n = √(2n+1); HTTYH FouT: B = (2, 2√2, 0, 2√2, …), frequencies 2πj).
The official halves both ("for timescale correctness", i.e. window θ = 2), while its `lmu`
keeps LegT at full scale; we follow the official `legt`/`fout`, which S4 experiments use.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

HippoInit = Literal["legs", "legt", "lagt", "fout"]
HIPPO_INITS: tuple[str, ...] = get_args(HippoInit)
HIPPO_RANK = {"legs": 1, "legt": 2, "lagt": 1, "fout": 1}  # rank of P in A = S - PᵀP


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
        A = -0.5 * s[:, None] * s[None, :] * sign
        B = 0.5 * s
    elif init == "lagt":
        A = torch.eye(N, dtype=torch.float64) / 2 - torch.tril(
            torch.ones(N, N, dtype=torch.float64)
        )
        B = torch.ones(N, dtype=torch.float64)
    else:  # fout
        B = _fout_B(N)
        R = torch.zeros(N, N, dtype=torch.float64)
        for j in range(1, (N - 1) // 2 + 1):  # the pair (2j, 2j + 1) turns at πj
            if 2 * j + 1 < N:
                R[2 * j, 2 * j + 1] = -math.pi * j
                R[2 * j + 1, 2 * j] = math.pi * j
        A = R - B[:, None] * B[None, :]
    return A, B


def _fout_B(N: int) -> Tensor:
    B = torch.zeros(N, dtype=torch.float64)
    B[0::2] = math.sqrt(2)
    B[0] = 1.0
    return B


def rank_correction(init: str, N: int, rank: int | None = None) -> Tensor:
    """Low-rank P (rank, N) with A + PᵀP normal; rows past the measure's own rank are zero."""
    _check_init(init)
    rank = HIPPO_RANK[init] if rank is None else rank
    if rank < HIPPO_RANK[init]:
        raise ValueError(
            f"rank = {rank} is too small for init {init!r}: it needs rank >= {HIPPO_RANK[init]}"
        )
    n = torch.arange(N, dtype=torch.float64)
    if init == "legs":
        P = torch.sqrt(n + 0.5)[None]
    elif init == "legt":
        s = torch.sqrt(2 * n + 1) / math.sqrt(2)
        odd = (n % 2 == 1).double()
        P = torch.stack([s * odd, s * (1 - odd)])
    elif init == "lagt":
        P = torch.full((1, N), math.sqrt(0.5), dtype=torch.float64)
    else:
        P = _fout_B(N)[None]
    return torch.cat([P, torch.zeros(rank - P.shape[0], N, dtype=torch.float64)])


def nplr(init: str, N: int, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Diagonalize the normal part: A = V (diag(Λ) - P̃ᵀ P̃.conj()) V*, all N modes.

    Returns Λ (N,), P̃ (rank, N), B̃ (N,), V (N, N), complex128. N must be even: the first N/2
    modes hold one of each conjugate pair (Im Λ ≥ 0, |Im Λ| descending), the last N/2 their
    conjugates. V's first N/2 columns are the conjugates of the eigenvectors the official
    `hippo.nplr` keeps (same eigh, Im Λ ≤ 0), so every init is the official one conjugated.
    """
    if N % 2:
        raise ValueError(f"N = {N} must be even: S4 keeps one mode of each conjugate pair")
    A, B = transition(init, N)
    P = rank_correction(init, N, rank)
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

    The eigenvectors of w < 0 (ascending), conjugated, are those of -w > 0. The null space (FouT's
    constant and inert mode) is real: its basis, from the standard basis vectors in order, pairs
    up as (a - i b)/√2, conjugate to the official's (a + i b)/√2.
    """
    N = V.shape[0]
    tol = 1e-9 * max(1.0, w.abs().max().item())
    neg = w < -tol
    V_half, w_half = V[:, neg].conj(), -w[neg]  # eigh sorts w ascending: |w| descending here
    zero = w.abs() <= tol
    if zero.any():
        Z = V[:, zero]
        basis = _real_basis((Z @ Z.conj().T).real)  # (N, 2m) of the real null space
        pairs = (basis[:, 0::2] - 1j * basis[:, 1::2]) / math.sqrt(2)
        V_half = torch.cat([V_half, pairs], dim=1)
        w_half = torch.cat([w_half, torch.zeros(pairs.shape[1], dtype=w.dtype)])
    if V_half.shape[1] != N // 2:
        raise RuntimeError("spectrum is not closed under conjugation (odd N?)")
    return V_half, w_half


def _real_basis(projector: Tensor) -> Tensor:
    """Orthonormal basis (N, m) of a real projector's range: Gram-Schmidt of its columns."""
    basis: list[Tensor] = []
    for v in projector.T:  # column i = projection of e_i
        for b in basis:
            v = v - (b @ v) * b
        if v.norm() > 1e-6:
            basis.append(v / v.norm())
    return torch.stack(basis, dim=1)

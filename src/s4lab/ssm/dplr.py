"""The DPLR SSM of S4 as dense matrices, and the length-L factor in S4's C̃. Slow, exact.

    A = Λ - P P*,  over both halves of each conjugate pair     (M = 2·(N/2) = d_state)
    Ā = (I - Δ/2 A)⁻¹ (I + Δ/2 A),  B̄ = (I - Δ/2 A)⁻¹ ΔB         bilinear
    C̃ = C (I - Ā^L)                 what S4 stores: its kernel is then K̄_l = C Ā^l B̄, l < L
    C̃ (I + Ā^L) = C (I - Ā^{2L})    doubling the length keeps the same C
C is a row (y = C x, as in the official code); the paper's column form is C̃* = (I - Ā^L)* C*.
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.ssm.discretize import discretize_dense
from s4lab.ssm.reference import both_halves


def dplr_dense(dt: Tensor, Lambda: Tensor, P: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinear dA (H, M, M), dB (H, M) of A = Λ - P P*. dt (H,), Λ, B (H, N/2), P (r, H, N/2)."""
    P = both_halves(P)
    A = torch.diag_embed(both_halves(Lambda)) - torch.einsum("rhm,rhn->hmn", P, P.conj())
    return discretize_dense("bilinear", dt, A, both_halves(B))


def _times(C: Tensor, M: Tensor) -> Tensor:
    """C M for C (c, H, N/2) one mode per pair and M (H, 2·N/2, 2·N/2) -> (c, H, N/2)."""
    return torch.einsum("chm,hmn->chn", both_halves(C), M)[..., : C.shape[-1]]


def truncate_C(C: Tensor, dA_L: Tensor) -> Tensor:
    """C̃ = C (I - Ā^L) from C (c, H, N/2) and Ā^L (H, M, M)."""
    return C - _times(C, dA_L)


def double_C(C_tilde: Tensor, dA_L: Tensor) -> Tensor:
    """C̃ at 2L from C̃ at L: C̃ (I + Ā^L)."""
    return C_tilde + _times(C_tilde, dA_L)


def untruncate_C(C_tilde: Tensor, dA_L: Tensor) -> Tensor:
    """C = C̃ (I - Ā^L)⁻¹, over both halves of each pair: (c, H, N/2) -> (c, H, M)."""
    I = torch.eye(dA_L.shape[-1], dtype=dA_L.dtype, device=dA_L.device)
    C = both_halves(C_tilde)[..., None, :]  # (c, H, 1, M)
    return torch.linalg.solve(I - dA_L, C, left=False)[..., 0, :]

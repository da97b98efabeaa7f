"""Discretizations of x' = A x + B u with step Δ (dt), diagonal (elementwise) and dense.

ZOH:      Ā = exp(ΔA),                  B̄ = (ΔA)⁻¹ (exp(ΔA) - I) ΔB
bilinear: Ā = (I - Δ/2 A)⁻¹ (I + Δ/2 A),  B̄ = (I - Δ/2 A)⁻¹ ΔB
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

Discretization = Literal["zoh", "bilinear"]
DISCRETIZATIONS: tuple[str, ...] = get_args(Discretization)


def discretize_diag(disc: str, dt: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """Diagonal A. dt: (H,), A, B: (H, N) complex -> dA, dB: (H, N)."""
    dtA = dt[:, None] * A
    if disc == "zoh":
        dA = torch.exp(dtA)
        return dA, (dA - 1) / A * B
    if disc == "bilinear":
        return (1 + dtA / 2) / (1 - dtA / 2), dt[:, None] * B / (1 - dtA / 2)
    raise ValueError(f"unknown discretization {disc!r}; accepted: {', '.join(DISCRETIZATIONS)}")


def discretize_dense(disc: str, dt: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """Dense A (slow reference). dt: (H,), A: (H, N, N), B: (H, N) -> dA (H, N, N), dB (H, N)."""
    I = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    dtA = dt[:, None, None] * A
    dtB = (dt[:, None] * B)[..., None]  # (H, N, 1)
    if disc == "zoh":
        dA = torch.linalg.matrix_exp(dtA)
        return dA, torch.linalg.solve(dtA, (dA - I) @ dtB)[..., 0]
    if disc == "bilinear":
        left = I - dtA / 2
        return torch.linalg.solve(left, I + dtA / 2), torch.linalg.solve(left, dtB)[..., 0]
    raise ValueError(f"unknown discretization {disc!r}; accepted: {', '.join(DISCRETIZATIONS)}")

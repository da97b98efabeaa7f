"""Slow, exact references: the SSM as matrices and its recurrence. For tests and recurrent mode.

    x_k = Ā x_{k-1} + B̄ u_k,   y_k = Re(C x_k)       recurrence, x_{-1} = 0
    K̄_l = Re(C Ā^l B̄)                              its impulse response
Ā is dense (M, M) or diagonal (M,): `dA.ndim` of the per-channel block tells which.
"""

from __future__ import annotations

import torch
from torch import Tensor


def both_halves(x: Tensor) -> Tensor:
    """(..., N/2) one mode per conjugate pair -> (..., N) with the conjugates appended."""
    return torch.cat([x, x.conj()], dim=-1)


def _apply(dA: Tensor, x: Tensor) -> Tensor:
    """Ā x for dA (H, M, M) or (H, M) and x (..., H, M)."""
    if dA.ndim == 3:
        return torch.einsum("hmn,...hn->...hm", dA, x)
    return dA * x


def ssm_kernel_ref(dA: Tensor, dB: Tensor, dC: Tensor, L: int) -> Tensor:
    """K̄ by repeated multiplication. dB (H, M), dC (C, H, M) -> (C, H, L)."""
    x, K = dB, []
    for _ in range(L):
        K.append(torch.einsum("chm,hm->ch", dC, x).real)
        x = _apply(dA, x)
    return torch.stack(K, dim=-1)


def ssm_step(dA: Tensor, dB: Tensor, dC: Tensor, u: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """One step: u (B, H), state x (B, H, M) -> y (B, C, H), next state."""
    x = _apply(dA, x) + dB * u[..., None]
    return torch.einsum("chm,bhm->bch", dC, x).real, x


def ssm_scan(dA: Tensor, dB: Tensor, dC: Tensor, u: Tensor) -> Tensor:
    """The recurrence over u (B, H, L) from a zero state -> y (B, C, H, L)."""
    x = torch.zeros(u.shape[0], *dB.shape, dtype=dB.dtype, device=u.device)  # (B, H, M)
    ys = []
    for k in range(u.shape[-1]):
        y, x = ssm_step(dA, dB, dC, u[..., k], x)
        ys.append(y)
    return torch.stack(ys, dim=-1)

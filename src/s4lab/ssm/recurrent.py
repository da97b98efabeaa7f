"""The SSM's recurrent view as pure functions: fast state updates and the state after a sequence.

Notation: B batch, H channels, M state size per channel, r rank, L length, C output channels.
    x_k = Ā x_{k-1} + B̄ u_k,   y_k = Re(C x_k),   x_{-1} = 0
Diagonal Ā (S4D): elementwise, O(M) per step (s4lab.ssm.reference.ssm_step with a diagonal dA).
DPLR Ā (S4, bilinear), A = Λ - P Pᴴ over both halves of each conjugate pair:
    Ā = (I - Δ/2 A)⁻¹ (I + Δ/2 A),   B̄ = (I - Δ/2 A)⁻¹ ΔB
    (I + Δ/2 A) x = x + Δ/2 (Λ x - P (Pᴴ x))                                   O(M r)
    (I - Δ/2 A)⁻¹ = E - E P W Pᴴ E,   E = (1 - Δ/2 Λ)⁻¹,   W = Δ/2 (I_r + Δ/2 Pᴴ E P)⁻¹
the second by Woodbury's identity, so a step costs O(M r + r²) instead of the dense O(M²).
State after L inputs:   x_{L-1} = Σ_k Ā^{L-1-k} B̄ u_k
    diagonal Ā:  B̄ ⊙ Σ_j Ā^j u_{L-1-j}, one Vandermonde product, O(B H M L)
    dense Ā:     s_j = B̄ u_{L-1-j};  s ← s_even + Ā s_odd, Ā ← Ā², log₂ L rounds, O(B H M² L)
The dense reduction needs no eigendecomposition of Ā: HiPPO's eigenvectors are exponentially
ill-conditioned (the reason S4 keeps A in DPLR form), so diagonalizing it would lose the state.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class DiagStep(NamedTuple):
    """Diagonal recurrence: dA, dB (H, M), dC (C, H, M); y = Re(dC x)."""

    dA: Tensor
    dB: Tensor
    dC: Tensor


class DPLRStep(NamedTuple):
    """DPLR bilinear recurrence, the factors of Ā (see the module docstring); y = Re(dC x).

    dB (H, M), dC (C, H, M), half_dtLambda = Δ/2 Λ (H, M), half_dtP = Δ/2 P (r, H, M),
    P (r, H, M), E (H, M), W (H, r, r).
    """

    dB: Tensor
    dC: Tensor
    half_dtLambda: Tensor
    half_dtP: Tensor
    P: Tensor
    E: Tensor
    W: Tensor


def output(dC: Tensor, x: Tensor) -> Tensor:
    """y = Re(dC x): dC (C, H, M), x (B, H, M) -> (B, C, H)."""
    return torch.einsum("chm,bhm->bch", dC, x).real


def dplr_step_matrices(dt: Tensor, Lambda: Tensor, P: Tensor, B: Tensor, dC: Tensor) -> DPLRStep:
    """Factors of the bilinear DPLR step. dt (H,), Λ, B (H, M), P (r, H, M), dC (C, H, M)."""
    half_dt = dt[:, None] / 2  # (H, 1)
    E = 1 / (1 - half_dt * Lambda)  # (H, M)
    PEP = torch.einsum("rhm,hm,shm->hrs", P.conj(), E, P)  # (H, r, r): Pᴴ E P
    I = torch.eye(P.shape[0], dtype=PEP.dtype, device=PEP.device)
    W = half_dt[..., None] * torch.linalg.inv(I + half_dt[..., None] * PEP)  # (H, r, r)
    factors = DPLRStep(torch.zeros_like(B), dC, half_dt * Lambda, half_dt * P, P, E, W)
    return factors._replace(dB=backward_solve(factors, dt[:, None] * B))  # B̄ = (I - Δ/2 A)⁻¹ ΔB


def backward_solve(m: DPLRStep, z: Tensor) -> Tensor:
    """(I - Δ/2 A)⁻¹ z = E z - E P W Pᴴ E z for z (..., H, M)."""
    Ez = m.E * z
    t = torch.einsum("rhm,...hm->...hr", m.P.conj(), Ez)  # (..., H, r): Pᴴ E z
    t = torch.einsum("hrs,...hs->...hr", m.W, t)
    return Ez - m.E * torch.einsum("rhm,...hr->...hm", m.P, t)


def dplr_transition(m: DPLRStep, x: Tensor) -> Tensor:
    """Ā x = (I - Δ/2 A)⁻¹ (I + Δ/2 A) x in O(M r): x (..., H, M) -> (..., H, M)."""
    Px = torch.einsum("rhm,...hm->...hr", m.P.conj(), x)  # (..., H, r): Pᴴ x
    z = x + m.half_dtLambda * x - torch.einsum("rhm,...hr->...hm", m.half_dtP, Px)
    return backward_solve(m, z)


def dplr_step(m: DPLRStep, u: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the DPLR SSM: u (B, H), x (B, H, M) -> y (B, C, H), next x."""
    x = dplr_transition(m, x) + m.dB * u[..., None]
    return output(m.dC, x), x


def diag_final_state(dA: Tensor, dB: Tensor, u: Tensor) -> Tensor:
    """x_{L-1} of a diagonal SSM from x_{-1} = 0: dA, dB (H, M), u (B, H, L) -> (B, H, M)."""
    j = torch.arange(u.shape[-1], device=u.device, dtype=dA.real.dtype)
    powers = torch.exp(torch.log(dA)[..., None] * j)  # (H, M, L): Ā^j
    return dB * torch.einsum("bhl,hml->bhm", u.flip(-1).to(dA.dtype), powers)


def dense_final_state(dA: Tensor, dB: Tensor, u: Tensor) -> Tensor:
    """x_{L-1} of an SSM with dense Ā from x_{-1} = 0: dA (H, M, M), dB (H, M), u (B, H, L)
    -> (B, H, M), by the pairwise reduction (log₂ L rounds, no loop over L). Memory: the
    (B, H, M, 2^⌈log₂ L⌉) complex terms at once (about 2 GB at B 16, H 256, M 64, L 1K)."""
    L = u.shape[-1]
    s = dB[..., None] * u.flip(-1).to(dB.dtype)[:, :, None, :]  # (B, H, M, L): B̄ u_{L-1-j}
    s = torch.nn.functional.pad(s, (0, (1 << max(L - 1, 0).bit_length()) - L))  # L -> 2^a
    while s.shape[-1] > 1:
        s = s[..., 0::2] + torch.einsum("hmn,bhnl->bhml", dA, s[..., 1::2])
        dA = dA @ dA
    return s[..., 0]

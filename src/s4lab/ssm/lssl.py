"""The LSSL kernel: materialised powers of a dense discrete state matrix (Gu et al. 2021).

Notation: H channels, N state size, M output channels (C rows), L length.
    Ā = (I - Δ/2 A)⁻¹ (I + Δ/2 A),  B̄ = (I - Δ/2 A)⁻¹ Δ B      bilinear, dense A (N, N)
    𝒦_L(Ā, B̄) = [B̄, Ā B̄, Ā² B̄, ..., Ā^{L-1} B̄]                 Krylov matrix (N, L)
    K̄_l = C Ā^l B̄ = (C 𝒦_L)_l                                 the kernel, O(N² L) per channel
Doubling: 𝒦_{2k} = [𝒦_k, Ā^k 𝒦_k], then Ā^{2k} = (Ā^k)²; ⌈log₂ L⌉ rounds, O(N·L) memory.
This is the cost S4 removes; s4lab.ssm.reference.ssm_kernel_ref is its slow reference.
"""

from __future__ import annotations

import torch
from torch import Tensor


def krylov(dA: Tensor, dB: Tensor, L: int) -> Tensor:
    """Columns Ā^l B̄, l = 0..L-1, by doubling. dA (H, N, N), dB (H, N) -> (H, N, L)."""
    if L < 1:
        raise ValueError(f"L = {L} must be positive")
    K = dB[..., None]  # (H, N, 1)
    power = dA  # Ā^k for k = current number of columns
    while K.shape[-1] < L:
        K = torch.cat([K, power @ K], dim=-1)  # (H, N, 2k)
        if K.shape[-1] < L:
            power = power @ power
    return K[..., :L]


def lssl_kernel(dA: Tensor, dB: Tensor, C: Tensor, L: int) -> Tensor:
    """K̄_l = C Ā^l B̄. dA (H, N, N), dB (H, N), C (M, H, N) -> K̄ (M, H, L)."""
    return torch.einsum("mhn,hnl->mhl", C, krylov(dA, dB, L))

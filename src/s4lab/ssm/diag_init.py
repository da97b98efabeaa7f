"""S4D initializations of the diagonal A (S4D paper, Sec. 4), one mode per conjugate pair.

    diag-lin:  Λ_n = -½ + iπn                     (S4D-Lin)
    diag-inv:  Λ_n = -½ + i(N/π)(N/(2n+1) - 1)     (S4D-Inv)
    diag-legs: Λ = the diagonal part of HiPPO-LegS's NPLR form, B = its B̃  (S4D-LegS)
n = 0..N/2-1; B = 1 for lin and inv. diag-legs is the official HEAD one (dplr.py, which also
clips Im B̃ to ±2: B_clip=2.0 in the kernel); v3's `diag-legs` kept B = 1 and Im Λ from `legsd`.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from s4lab.ssm.hippo import nplr

DiagInit = Literal["diag-lin", "diag-inv", "diag-legs"]
DIAG_INITS: tuple[str, ...] = get_args(DiagInit)


def diag_init(init: str, N: int) -> tuple[Tensor, Tensor]:
    """Λ (N/2,) and B (N/2,), complex128, for a real SSM of state size N (even)."""
    if init not in DIAG_INITS:
        raise ValueError(f"unknown S4D init {init!r}; accepted: {', '.join(DIAG_INITS)}")
    if N % 2:
        raise ValueError(f"d_state = {N} must be even: S4D keeps one mode of each conjugate pair")
    n = torch.arange(N // 2, dtype=torch.float64)
    if init == "diag-legs":
        Lambda, _, B, _ = nplr("legs", N)
        return Lambda[: N // 2], B[: N // 2]
    imag = math.pi * n if init == "diag-lin" else (N / math.pi) * (N / (2 * n + 1) - 1)
    return torch.complex(-0.5 * torch.ones_like(n), imag), torch.ones(
        N // 2, dtype=torch.complex128
    )

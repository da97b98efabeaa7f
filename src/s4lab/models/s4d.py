"""S4DKernel: the diagonal SSM kernel's parameters; the math is s4lab.ssm.kernels.s4d_kernel.

    A = diag(Λ), Re Λ = -exp(log_A_real) < 0;  B, C complex, one mode per conjugate pair;  Δ
    init: diag-lin, diag-inv, diag-legs (s4lab.ssm.diag_init);  disc: zoh or bilinear.
Works at any length; `rate` scales Δ, which for ZOH is exact: K̄'_l = K̄_{2l} + K̄_{2l+1} at rate 2.
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.models.ssm_kernel import SSMKernel, as_complex, as_real
from s4lab.ssm.diag_init import diag_init
from s4lab.ssm.discretize import DISCRETIZATIONS, discretize_diag
from s4lab.ssm.kernels import s4d_kernel
from s4lab.ssm.reference import both_halves


class S4DKernel(SSMKernel):
    """K̄ (channels, H, L) of H independent diagonal SSMs of state size d_state."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        channels: int = 1,
        init: str = "diag-legs",
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float] | None = 1e-3,
        wd: float = 0.0,
        backend: str = "auto",
    ) -> None:
        if disc not in DISCRETIZATIONS:
            raise ValueError(f"unknown disc {disc!r}; accepted: {', '.join(DISCRETIZATIONS)}")
        super().__init__(d_model, d_state, l_max, channels, dt_min, dt_max, lr, wd, backend)
        Lambda, B = diag_init(init, d_state)
        H, half = d_model, d_state // 2
        self.disc = disc
        self.register_ssm(
            "log_A_real", torch.log(-Lambda.real).expand(H, half).float().clone(), "A"
        )
        self.register_ssm("A_imag", Lambda.imag.expand(H, half).float().clone(), "A")
        self.register_ssm("B", as_real(B.expand(H, half)), "B")
        self.register_ssm("C", as_real(torch.randn(channels, H, half, dtype=torch.complex128)), "C")

    def A(self) -> Tensor:
        """Diagonal of A, (H, N/2) complex."""
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def forward(self, L: int | None = None, rate: float = 1.0) -> Tensor:
        """K̄ (channels, H, L); L defaults to l_max."""
        if L is None and self.l_max is None:
            raise ValueError("pass L: this kernel was built without l_max")
        L = self.l_max if L is None else L
        self._check_length(L)
        return s4d_kernel(
            self.dt(rate),
            self.A(),
            as_complex(self.B),
            as_complex(self.C),
            L,
            self.disc,
            self.backend,
        )

    def _diag_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        A, B, C = self.A().to(torch.complex128), as_complex(self.B), as_complex(self.C)
        dA, dB = discretize_diag(self.disc, self.dt().double(), A, B.to(torch.complex128))
        return dA, dB, C.to(torch.complex128)

    def ssm_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """The discrete SSM densely, complex128: dA (H, M, M), dB (H, M), dC (channels, H, M).

        M = d_state: both halves of each conjugate pair, so K̄[c, h, l] = Re(dC dA^l dB).
        """
        dA, dB, dC = self._diag_matrices()
        return torch.diag_embed(both_halves(dA)), both_halves(dB), both_halves(dC)

    def step_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """Diagonal dA (H, N/2), dB, and 2·dC: one mode per pair, y = 2 Re(C x)."""
        dA, dB, dC = self._diag_matrices()
        return dA, dB, 2 * dC

"""S4Kernel: the S4 (DPLR) convolution kernel's parameters; the math is s4lab.ssm.kernels.s4_kernel.

    A = Λ - P P*  (Λ: N/2 modes, one per conjugate pair; P: rank r),  B, C̃ = C (I - Ā^L), Δ
    init: HiPPO measure (legs, legt, lagt, fout) diagonalized by s4lab.ssm.hippo.nplr.
Re Λ = -exp(log_A_real) keeps A stable; measures with Re Λ = 0 (legt, fout) start at -1e-4.
C̃ is tied to L = l_max. A sampling-rate change computes the kernel at l_max / rate with Δ·rate
and the same C̃, which is exact only at rate 1 (as in the official implementation).
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.models.ssm_kernel import SSMKernel, as_complex, as_real
from s4lab.ssm.discretize import discretize_dense
from s4lab.ssm.hippo import HIPPO_INITS, nplr
from s4lab.ssm.kernels import s4_kernel
from s4lab.ssm.reference import both_halves


class S4Kernel(SSMKernel):
    """K̄ (channels, H, L) of H independent DPLR SSMs of state size d_state (bilinear)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        channels: int = 1,
        init: str = "legs",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | dict[str, float] | None = 1e-3,
        wd: float = 0.0,
        backend: str = "auto",
    ) -> None:
        if init not in HIPPO_INITS:
            raise ValueError(f"unknown S4 init {init!r}; accepted: {', '.join(HIPPO_INITS)}")
        if l_max is None:
            raise ValueError(
                "mode 's4' needs l_max: its C̃ = C(I - Ā^L) is tied to a length; pass the "
                "dataset's l_max (or use mode 's4d', which works at any length)"
            )
        super().__init__(d_model, d_state, l_max, channels, dt_min, dt_max, lr, wd, backend)
        Lambda, P, B, _ = nplr(init, d_state)
        H, half = d_model, d_state // 2
        Lambda, P, B = Lambda[:half], P[:, :half], B[:half]
        log_A_real = torch.log(Lambda.real.neg().clamp(min=1e-4))
        self.register_ssm("log_A_real", log_A_real.expand(H, half).float().clone(), "A")
        self.register_ssm("A_imag", Lambda.imag.expand(H, half).float().clone(), "A")
        self.register_ssm("P", as_real(P[:, None].expand(-1, H, half)), "P")
        self.register_ssm("B", as_real(B.expand(H, half)), "B")
        C = torch.randn(channels, H, half, dtype=torch.complex128)
        self.register_ssm("C", as_real(C), "C")

    def Lambda(self) -> Tensor:
        """Λ (H, N/2) complex."""
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def forward(self, L: int | None = None, rate: float = 1.0) -> Tensor:
        """K̄ (channels, H, L); L defaults to l_max."""
        L = self.l_max if L is None else L
        self._check_length(L)
        L_kernel = max(L, round(self.l_max / rate))
        K = s4_kernel(
            self.dt(rate),
            self.Lambda(),
            as_complex(self.P),
            as_complex(self.B),
            as_complex(self.C),
            L_kernel,
            self.backend,
        )
        return K[..., :L]

    def ssm_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """The discrete SSM densely, complex128: dA (H, M, M), dB (H, M), dC (channels, H, M).

        M = d_state: both halves of each conjugate pair, so K̄[c, h, l] = Re(dC dA^l dB).
        """
        f64 = torch.complex128
        Lambda, P = self.Lambda().to(f64), as_complex(self.P).to(f64)
        B, C_tilde = as_complex(self.B).to(f64), as_complex(self.C).to(f64)
        P = both_halves(P)
        A = torch.diag_embed(both_halves(Lambda)) - torch.einsum("rhm,rhn->hmn", P, P.conj())
        dA, dB = discretize_dense("bilinear", self.dt().double(), A, both_halves(B))
        I = torch.eye(self.N, dtype=f64, device=dA.device)
        dA_L = torch.linalg.matrix_power(dA, self.l_max)
        C_tilde = both_halves(C_tilde)[..., None, :]  # (channels, H, 1, M)
        dC = torch.linalg.solve(I - dA_L, C_tilde, left=False)[..., 0, :]  # C̃ (I - Ā^L)⁻¹
        return dA, dB, dC

    step_matrices = ssm_matrices  # dense state update, O(N²) per channel and step

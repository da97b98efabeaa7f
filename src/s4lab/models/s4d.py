"""S4DKernel: the diagonal SSM kernel's parameters; the math is s4lab.ssm.kernels.s4d_kernel.

    A = diag(Λ), Re Λ = -f_re(A_real) < 0;  B, C complex, one mode per conjugate pair;  Δ
    init: diag-lin, diag-inv, diag-legs (s4lab.ssm.diag_init);  disc: zoh or bilinear.
Works at any length, as the official SSMKernelDiag: l_max (passed by the layer) bounds nothing.
`rate` scales Δ, which for ZOH is exact: K̄'_l = K̄_{2l} + K̄_{2l+1} at rate 2.
Recurrent mode: one mode per conjugate pair, x_k = Ā x_{k-1} + B̄ u_k, y_k = 2 Re(C x_k), O(N).
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.models.ssm_kernel import SSMKernel, as_complex, as_real
from s4lab.ssm.backend import Backend
from s4lab.ssm.diag_init import DIAG_INITS, DiagInit
from s4lab.ssm.discretize import DISCRETIZATIONS, Discretization, discretize_diag
from s4lab.ssm.init import init_s4d
from s4lab.ssm.kernels import s4d_kernel
from s4lab.ssm.recurrent import DiagStep, diag_final_state
from s4lab.ssm.reference import both_halves, ssm_step
from s4lab.ssm.transforms import DtTransform, Transform


class S4DKernel(SSMKernel):
    """K̄ (channels, H, L) of H diagonal SSMs of state size d_state, n_ssm of them distinct.

    Defaults are v3's (configs/model/layer/kernel/s4d.yaml names the HEAD values), except
    lr = None (every SSM tensor at the optimizer's lr), which the YAML replaces by v3's dict.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        channels: int = 1,
        n_ssm: int | None = 1,
        init: DiagInit = "diag-lin",
        disc: Discretization = "bilinear",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_transform: DtTransform = "exp",
        real_transform: Transform = "exp",
        real_tolerance: float = 1e-4,
        B_clip: float | None = None,
        deterministic: bool = False,
        lr: float | dict[str, float | None] | None = None,
        wd: float | dict[str, float | None] | None = 0.0,
        backend: Backend = "auto",
    ) -> None:
        if init not in DIAG_INITS:
            raise ValueError(f"unknown S4D init {init!r}; accepted: {', '.join(DIAG_INITS)}")
        if disc not in DISCRETIZATIONS:
            raise ValueError(f"unknown disc {disc!r}; accepted: {', '.join(DISCRETIZATIONS)}")
        super().__init__(
            d_model=d_model,
            d_state=d_state,
            l_max=l_max,
            channels=channels,
            n_ssm=n_ssm,
            dt_min=dt_min,
            dt_max=dt_max,
            dt_transform=dt_transform,
            real_transform=real_transform,
            real_tolerance=real_tolerance,
            B_clip=B_clip,
            deterministic=deterministic,
            lr=lr,
            wd=wd,
            backend=backend,
        )
        self.disc = disc
        x = init_s4d(
            init=init,
            N=d_state,
            H=d_model,
            n_ssm=self.n_ssm,
            channels=channels,
            dt_min=dt_min,
            dt_max=dt_max,
            B_clip=B_clip,
            deterministic=deterministic,
        )
        self.register_dt(x.dt)
        self.register_Lambda(x.Lambda)
        self.register_ssm("B", as_real(x.B), "B")
        self.register_ssm("C", as_real(x.C), "C")

    def forward(self, L: int, rate: float = 1.0) -> Tensor:
        """K̄ (channels, H, L) at sampling rate `rate` (Δ·rate)."""
        B = self.tile(as_complex(self.B))
        return s4d_kernel(
            self.dt(rate), self.Lambda(), B, as_complex(self.C), L, self.disc, self.backend
        )

    def _diag_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        c128 = torch.complex128
        A, B = self.Lambda().to(c128), self.tile(as_complex(self.B)).to(c128)
        dA, dB = discretize_diag(self.disc, self.dt().double(), A, B)
        return dA, dB, as_complex(self.C).to(c128)

    def ssm_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """The discrete SSM densely, complex128: dA (H, M, M), dB (H, M), dC (channels, H, M).

        M = d_state: both halves of each conjugate pair, so K̄[c, h, l] = Re(dC dA^l dB).
        """
        dA, dB, dC = self._diag_matrices()
        return torch.diag_embed(both_halves(dA)), both_halves(dB), both_halves(dC)

    def step_matrices(self) -> DiagStep:
        """Diagonal dA (H, N/2), dB, and 2·dC: one mode per pair, y = 2 Re(C x)."""
        dA, dB, dC = self._diag_matrices()
        return DiagStep(dA, dB, 2 * dC)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One recurrent step: u (B, H), state (B, H, N/2) -> y (B, C, H), next state."""
        m = self._cached_step()
        return ssm_step(m.dA, m.dB, m.dC, u.to(m.dB.real.dtype), state)  # diagonal dA

    def forward_state(self, u: Tensor) -> Tensor:
        """The state after u (B, H, L) from zero: B̄ ⊙ Σ_j Ā^j u_{L-1-j} -> (B, H, N/2)."""
        m = self._cached_step()
        return diag_final_state(m.dA, m.dB, u.to(m.dB.real.dtype))

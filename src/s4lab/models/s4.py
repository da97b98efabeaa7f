"""S4Kernel: the S4 (DPLR) convolution kernel's parameters; the math is s4lab.ssm.kernels.s4_kernel.

    A = Λ - P P*  (Λ: N/2 modes, one per conjugate pair; P: rank r),  B, Δ   bilinear
    C̃ = C (I - Ā^ℓ) for the drawn C ~ CN(0, 1)    ℓ = l_kernel, the length C̃ is attuned to
    C̃ ← C̃ (I + Ā^ℓ), ℓ ← 2ℓ                        when a longer kernel is asked for
    init: HiPPO measure (legs, legt, lagt, fout) diagonalized by s4lab.ssm.hippo.nplr.
As the official (v3 `SSKernelNPLR._setup_C`, HEAD `SSMKernelDPLR._setup_C`): with l_max, C̃ is
set at l_max at construction; without, at the first call's length. A call at rate r needs
ℓ >= r·L and computes the kernel at length ℓ/r with Δ·r and the same C̃ (exact at r = 1 only).
C̃ is computed in float64 from the stored parameters and written back under no_grad.
Recurrent mode: the bilinear DPLR step in O(N r) per token (Woodbury, s4lab.ssm.recurrent)
with the untruncated C = C̃ (I - Ā^ℓ)⁻¹, over both halves of each pair; a prompt's final
state by the pairwise reduction with the dense Ā.
"""

from __future__ import annotations

import torch
from torch import Tensor

from s4lab.models.ssm_kernel import SSMKernel, as_complex, as_real
from s4lab.ssm.backend import Backend
from s4lab.ssm.dplr import double_C, dplr_dense, truncate_C, untruncate_C
from s4lab.ssm.hippo import HIPPO_INITS, HIPPO_RANK, HippoInit
from s4lab.ssm.init import init_s4
from s4lab.ssm.kernels import s4_kernel
from s4lab.ssm.recurrent import DPLRStep, dense_final_state, dplr_step, dplr_step_matrices
from s4lab.ssm.reference import both_halves
from s4lab.ssm.transforms import DtTransform, Transform

POWER_CHUNK = 1 << 22  # complex entries of one (H, M, M) block while computing Ā^ℓ


class S4Kernel(SSMKernel):
    """K̄ (channels, H, L) of H DPLR SSMs of state size d_state (bilinear), n_ssm of them distinct.

    Defaults are v3's (configs/model/layer/kernel/s4.yaml names the HEAD values), except
    lr = None (every SSM tensor at the optimizer's lr), which the YAML replaces by v3's dict.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        channels: int = 1,
        rank: int = 1,
        n_ssm: int | None = 1,
        init: HippoInit = "legs",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_transform: DtTransform = "exp",
        real_transform: Transform = "exp",
        real_tolerance: float = 1e-3,
        B_clip: float | None = None,
        deterministic: bool = False,
        lr: float | dict[str, float | None] | None = None,
        wd: float | dict[str, float | None] | None = 0.0,
        backend: Backend = "auto",
    ) -> None:
        if init not in HIPPO_INITS:
            raise ValueError(f"unknown S4 init {init!r}; accepted: {', '.join(HIPPO_INITS)}")
        if not isinstance(rank, int) or rank < HIPPO_RANK[init]:
            raise ValueError(
                f"rank = {rank!r} is invalid for init {init!r}: accepted integers >= "
                f"{HIPPO_RANK[init]}"
            )
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
        self.rank = rank
        x = init_s4(
            init=init,
            N=d_state,
            rank=rank,
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
        self.register_ssm("P", as_real(x.P), "A")
        self.register_ssm("B", as_real(x.B), "B")
        self.register_ssm("C", as_real(x.C), "C")  # C until attuned to a length, then C̃
        self.l_kernel = 0  # a Python int (no device sync per forward), saved as extra state
        if l_max is not None:
            self.attune(l_max)

    def params(self, rate: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Δ (H,), Λ (H, N/2), P (r, H, N/2), B (H, N/2), C̃ (channels, H, N/2)."""
        P, B = self.tile(as_complex(self.P)), self.tile(as_complex(self.B))
        return self.dt(rate), self.Lambda(), P, B, as_complex(self.C)

    def _dense(self) -> tuple[Tensor, Tensor]:
        """Bilinear dA (H, M, M), dB (H, M) in complex128 from the current parameters."""
        dt, Lambda, P, B, _ = self.params()
        c128 = torch.complex128
        return dplr_dense(dt.double(), Lambda.to(c128), P.to(c128), B.to(c128))

    def _power(self, dA: Tensor, ell: int) -> Tensor:
        """Ā^ℓ (H, M, M), by repeated squaring over chunks of channels."""
        size = max(1, POWER_CHUNK // dA[0].numel())
        return torch.cat([torch.linalg.matrix_power(d, ell) for d in dA.split(size)])

    @torch.no_grad()
    def attune(self, L: int) -> None:
        """Make C̃ valid up to length L: C̃ = C (I - Ā^L) the first time, then doublings."""
        ell = self.l_kernel
        if ell >= L:
            return
        dA = self._dense()[0]
        C = as_complex(self.C).to(torch.complex128)
        if ell == 0:
            C, ell = truncate_C(C, self._power(dA, L)), L
        else:
            dA_ell = self._power(dA, ell)
            while ell < L:
                C, ell = double_C(C, dA_ell), 2 * ell
                dA_ell = dA_ell @ dA_ell
        self.C.copy_(torch.view_as_real(C.to(as_complex(self.C).dtype)))
        self.l_kernel = ell

    def get_extra_state(self) -> Tensor:
        """ℓ travels with the checkpoint: C̃ is only meaningful together with it."""
        return torch.tensor(self.l_kernel)  # a CPU tensor, like every other state_dict entry

    def set_extra_state(self, state: Tensor) -> None:
        self.l_kernel = int(state)

    def forward(self, L: int, rate: float = 1.0) -> Tensor:
        """K̄ (channels, H, L) at sampling rate `rate` (Δ·rate); grows C̃'s length on demand."""
        needed = round(rate * L)
        if needed > self.l_kernel and self.training and torch.distributed.is_initialized():
            raise ValueError(
                f"length {needed} exceeds the {self.l_kernel} that C̃ is set for; growing C̃ "
                "in a distributed run would desynchronize the ranks: set the layer's l_max >= "
                f"{needed} (the datamodule's l_max)"
            )
        self.attune(needed)
        L_kernel = max(L, round(self.l_kernel / rate))
        K = s4_kernel(*self.params(rate), L_kernel, self.backend)
        return K[..., :L]

    def ssm_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """The discrete SSM densely, complex128: dA (H, M, M), dB (H, M), dC (channels, H, M).

        M = d_state: both halves of each conjugate pair, so K̄[c, h, l] = Re(dC dA^l dB);
        dC = C̃ (I - Ā^ℓ)⁻¹ recovers C (C̃ itself before the first length is set).
        """
        dA, dB = self._dense()
        C_tilde = as_complex(self.C).to(torch.complex128)
        ell = self.l_kernel
        dC = both_halves(C_tilde) if ell == 0 else untruncate_C(C_tilde, self._power(dA, ell))
        return dA, dB, dC

    def step_matrices(self) -> DPLRStep:
        """The DPLR step's factors in complex128, state size M = d_state (both halves)."""
        dt, Lambda, P, B, _ = self.params()
        c128 = torch.complex128
        dC = self.ssm_matrices()[2]
        halves = (both_halves(t.to(c128)) for t in (Lambda, P, B))
        return dplr_step_matrices(dt.double(), *halves, dC)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One recurrent step: u (B, H), state (B, H, M) -> y (B, C, H), next state."""
        m = self._cached_step()
        return dplr_step(m, u.to(m.dB.real.dtype), state)

    def forward_state(self, u: Tensor) -> Tensor:
        """The state after u (B, H, L) from zero, Σ_k Ā^{L-1-k} B̄ u_k -> (B, H, M)."""
        dtype = self.step_dtype
        with torch.no_grad():
            dA, dB = (t.to(dtype) for t in self._dense())
        return dense_final_state(dA, dB, u.to(dB.real.dtype))

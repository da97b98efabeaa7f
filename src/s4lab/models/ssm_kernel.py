"""What S4Kernel and S4DKernel share: option checks, Δ, Re Λ, tagged parameters, recurrent cache.

    Δ_h = f_dt(inv_dt_h) · rate,   Re Λ = -f_re(A_real)      f: s4lab.ssm.transforms
    n_ssm copies of (Λ, P, B) are tiled over the H channels: channel h uses copy h mod n_ssm;
    Δ and C are per channel, as in the official (HEAD `inv_dt` (H, 1), v3 `log_dt` (H,)).
Optimizer hints (`_optim`, read by s4lab.optim.param_groups), over the groups dt, A, B, C
(P follows A), the official HEAD rule (src/models/sequence/kernels/kernel.py `Kernel.__init__`):
    lr float: every group, C included;  wd float: every group but C (C keeps the global wd)
    dict: the groups it names (None = the global value), the others the global value
    lr = 0: the tensor is a buffer (frozen)
HEAD ignores wd["C"] (C always takes the global weight decay); here a dict naming it applies.
v3's rule (ss/kernel.py `OptimModule.register`: dt, A, B, P at the SSM lr and wd 0, C global)
is the dicts lr = {dt, A, B: lr_ssm} and wd = {dt, A, B: 0}.
Parameters are stored real (complex ones as (..., 2) views) so every optimizer, DDP bucket and
checkpoint handles them. The recurrent step's matrices are cached and recomputed whenever a
parameter or buffer changes (in-place optimizer step, load_state_dict, .to()); writes through
`p.data` bypass the version counter that this relies on, so call setup_step() after those.
Recurrent mode (s4lab.ssm.recurrent): step(u, x) per token, forward_state(u) for a whole
prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import torch
from torch import Tensor, nn

from s4lab.ssm.backend import resolve_backend
from s4lab.ssm.recurrent import DiagStep, DPLRStep
from s4lab.ssm.transforms import (
    DT_TRANSFORMS,
    TRANSFORMS,
    check_transform,
    positive,
    positive_inverse,
)

SSM_GROUPS = ("A", "B", "C", "dt")
Hint = float | Mapping[str, float | None] | None
StepMatrices = DiagStep | DPLRStep


class SSMKernel(nn.Module):
    """Base of the kernel modules: validates options, owns Δ, registers tagged SSM tensors."""

    def __init__(
        self,
        d_model: int,
        d_state: int,
        l_max: int | None,
        channels: int,
        n_ssm: int | None,
        dt_min: float,
        dt_max: float,
        dt_transform: str,
        real_transform: str,
        real_tolerance: float,
        B_clip: float | None,
        deterministic: bool,
        lr: Hint,
        wd: Hint,
        backend: str,
    ) -> None:
        super().__init__()
        if d_state <= 0 or d_state % 2:
            raise ValueError(
                f"d_state = {d_state} must be a positive even number: the real SSM's modes come "
                "in conjugate pairs and one of each pair is stored"
            )
        if d_model <= 0 or channels <= 0:
            raise ValueError(f"d_model = {d_model} and channels = {channels} must be positive")
        if l_max is not None and l_max <= 0:
            raise ValueError(f"l_max = {l_max} must be a positive length or null")
        n_ssm = d_model if n_ssm is None else n_ssm
        if n_ssm <= 0 or d_model % n_ssm:
            raise ValueError(
                f"n_ssm = {n_ssm} must divide d_model = {d_model} (or be null = d_model)"
            )
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        check_transform("dt_transform", dt_transform, DT_TRANSFORMS)
        check_transform("real_transform", real_transform, TRANSFORMS)
        if real_tolerance <= 0:
            raise ValueError(f"real_tolerance = {real_tolerance} must be positive")
        if B_clip is not None and B_clip <= 0:
            raise ValueError(f"B_clip = {B_clip} must be positive or null (no clip)")
        if deterministic and dt_transform != "exp":
            raise ValueError(
                "deterministic=true needs dt_transform='exp' (as the official asserts), got "
                f"{dt_transform!r}"
            )
        self.H, self.N, self.l_max, self.channels = d_model, d_state, l_max, channels
        self.n_ssm = n_ssm
        self.dt_transform, self.real_transform = dt_transform, real_transform
        self.real_tolerance = real_tolerance
        self.lr, self.wd = _hint("lr", lr), _hint("wd", wd)
        self.backend = resolve_backend(backend)
        self._step_cache: tuple[tuple, StepMatrices] | None = None

    def register_ssm(self, name: str, tensor: Tensor, group: str) -> None:
        """Register a tensor of `group` (A, B, C or dt; P passes A) with its optimizer hints."""
        lr, wd = self._group_hint(self.lr, group, True), self._group_hint(self.wd, group, False)
        if lr == 0:
            self.register_buffer(name, tensor)
            return
        self.register_parameter(name, nn.Parameter(tensor))
        hints = ({} if lr is None else {"lr": lr}) | ({} if wd is None else {"weight_decay": wd})
        if hints:
            getattr(self, name)._optim = hints

    @staticmethod
    def _group_hint(hint: Hint, group: str, scalar_covers_C: bool) -> float | None:
        if isinstance(hint, Mapping):
            return hint.get(group)
        return hint if scalar_covers_C or group != "C" else None

    def register_dt(self, dt: Tensor) -> None:
        """Store Δ (H,) as inv_dt = f_dt⁻¹(Δ), float32; HEAD clamps Δ >= 1e-4 unless f_dt = exp."""
        tol = 0.0 if self.dt_transform == "exp" else 1e-4
        self.register_ssm("inv_dt", positive_inverse(dt, self.dt_transform, tol).float(), "dt")

    def register_Lambda(self, Lambda: Tensor) -> None:
        """Store Λ (n_ssm, N/2): A_real = f_re⁻¹(max(-Re Λ, real_tolerance)), A_imag = Im Λ."""
        A_real = positive_inverse(-Lambda.real, self.real_transform, self.real_tolerance)
        self.register_ssm("A_real", A_real.float(), "A")
        self.register_ssm("A_imag", Lambda.imag.float(), "A")

    def dt(self, rate: float = 1.0) -> Tensor:
        """Δ per channel (H,); a sampling-rate change `rate` scales it."""
        return positive(self.inv_dt, self.dt_transform) * rate

    def Lambda(self) -> Tensor:
        """Λ (H, N/2) complex: the n_ssm copies tiled over the channels."""
        Lambda = torch.complex(-positive(self.A_real, self.real_transform), self.A_imag)
        return self.tile(Lambda)

    def tile(self, x: Tensor) -> Tensor:
        """(..., n_ssm, N/2) -> (..., H, N/2): channel h takes copy h mod n_ssm."""
        return x.repeat(*([1] * (x.ndim - 2)), self.H // self.n_ssm, 1)

    def step_matrices(self) -> StepMatrices:
        """The recurrence `step` runs, in complex128; the subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define step_matrices()")

    def setup_step(self) -> None:
        """Compute the recurrent step's matrices now (step() also does it when they are stale).

        They are kept in complex64, or complex128 when the module is float64.
        """
        self._cached_step()

    def _cached_step(self) -> StepMatrices:
        tensors = [*self.parameters(), *self.buffers()]
        key = tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors)
        if self._step_cache is None or self._step_cache[0] != key:
            with torch.no_grad():
                matrices = self.step_matrices()
                matrices = type(matrices)(*(m.to(self.step_dtype) for m in matrices))
            self._step_cache = (key, matrices)
        return self._step_cache[1]

    @property
    def step_dtype(self) -> torch.dtype:
        """complex128 for a float64 module, else complex64."""
        return torch.complex128 if self.inv_dt.dtype == torch.float64 else torch.complex64

    def default_state(self, batch_size: int) -> Tensor:
        """Zero recurrent state (B, H, M) complex, M the state size the step uses."""
        dB = self._cached_step().dB
        return torch.zeros(batch_size, *dB.shape, dtype=dB.dtype, device=dB.device)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One recurrent step: u (B, H), state (B, H, M) -> y (B, C, H), next state."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def forward_state(self, u: Tensor) -> Tensor:
        """The state after u (B, H, L) from the zero state, as L calls of step() leave it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward_state()")


def _hint(option: str, value: Hint) -> float | dict[str, float | None] | None:
    """Check an lr/wd option: None, a number, or a dict over SSM_GROUPS (a DictConfig too)."""
    if value is None or (isinstance(value, Real) and not isinstance(value, bool)):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{option} = {value!r} must be a number, null, or a dict over {', '.join(SSM_GROUPS)}"
        )
    unknown = sorted(set(value) - set(SSM_GROUPS))
    if unknown:
        raise ValueError(
            f"{option} keys {unknown} unknown; accepted: {', '.join(SSM_GROUPS)} (P follows A)"
        )
    for key, v in value.items():
        if v is not None and (not isinstance(v, Real) or isinstance(v, bool)):
            raise ValueError(f"{option}.{key} = {v!r} must be a number or null")
    return dict(value)


def as_complex(x: Tensor) -> Tensor:
    """(..., 2) real view -> (...) complex."""
    return torch.view_as_complex(x.contiguous())


def as_real(x: Tensor) -> Tensor:
    """(...) complex128 -> (..., 2) float32 parameter storage."""
    return torch.view_as_real(x.to(torch.complex64)).clone()

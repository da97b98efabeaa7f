"""What S4Kernel and S4DKernel share: Δ (dt) parameters and optimizer hints on SSM parameters.

Parameters are stored real (complex ones as (..., 2) views) so every optimizer, DDP bucket and
checkpoint handles them; `_optim` hints give them their own lr and no weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from s4lab.ssm.backend import resolve_backend
from s4lab.ssm.reference import ssm_step

SSM_GROUPS = ("A", "B", "P", "C", "dt")


class SSMKernel(nn.Module):
    """Base of the kernel modules: validates sizes, owns log Δ, registers tagged parameters."""

    def __init__(
        self,
        d_model: int,
        d_state: int,
        l_max: int | None,
        channels: int,
        dt_min: float,
        dt_max: float,
        lr: float | dict[str, float] | None,
        wd: float,
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
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if isinstance(lr, Mapping) and not set(lr) <= set(SSM_GROUPS):
            raise ValueError(f"lr keys {sorted(lr)} must be among {', '.join(SSM_GROUPS)}")
        self.H, self.N, self.l_max, self.channels = d_model, d_state, l_max, channels
        self.lr = dict(lr) if isinstance(lr, Mapping) else lr  # a DictConfig from Hydra too
        self.wd = wd
        self.backend = resolve_backend(backend)
        log_dt = torch.rand(d_model) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.register_ssm("log_dt", log_dt, "dt")
        self._step: tuple[Tensor, Tensor, Tensor] | None = None  # (dA, dB, dC) after setup_step

    def register_ssm(self, name: str, tensor: Tensor, group: str) -> None:
        """Register an SSM tensor: a float `lr` tags A, B, P, dt; a dict tags the groups it names.

        lr = 0 freezes the tensor (a buffer); C takes the global optimizer settings unless named.
        """
        lr = (
            self.lr.get(group)
            if isinstance(self.lr, Mapping)
            else (None if group == "C" else self.lr)
        )
        if lr == 0.0:
            self.register_buffer(name, tensor)
            return
        self.register_parameter(name, nn.Parameter(tensor))
        if lr is not None or group != "C":
            getattr(self, name)._optim = {"weight_decay": self.wd} | ({"lr": lr} if lr else {})

    def dt(self, rate: float = 1.0) -> Tensor:
        """Δ per channel (H,); a sampling-rate change `rate` scales it."""
        return torch.exp(self.log_dt) * rate

    def setup_step(self) -> None:
        """Cache the subclass's `step_matrices()` for `step`; redo after the parameters change.

        They are kept in complex64, or complex128 when the module is float64.
        """
        dtype = torch.complex128 if self.log_dt.dtype == torch.float64 else torch.complex64
        with torch.no_grad():
            self._step = tuple(m.to(dtype) for m in self.step_matrices())

    def _step_cache(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._step is None:
            raise RuntimeError("call setup_step() before step() or default_state()")
        return self._step

    def default_state(self, batch_size: int) -> Tensor:
        """Zero recurrent state (B, H, M) complex, M the state size the step uses."""
        dB = self._step_cache()[1]
        return torch.zeros(batch_size, *dB.shape, dtype=dB.dtype, device=dB.device)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One recurrent step: u (B, H), state (B, H, M) -> y (B, C, H), next state."""
        dA, dB, dC = self._step_cache()
        return ssm_step(dA, dB, dC, u.to(dB.real.dtype), state)

    def _check_length(self, L: int) -> None:
        if self.l_max is not None and self.l_max < L:
            raise ValueError(
                f"sequence length {L} exceeds l_max = {self.l_max}; build the layer with "
                f"l_max >= {L}"
            )


def as_complex(x: Tensor) -> Tensor:
    """(..., 2) real view -> (...) complex."""
    return torch.view_as_complex(x.contiguous())


def as_real(x: Tensor) -> Tensor:
    """(...) complex128 -> (..., 2) float32 parameter storage."""
    return torch.view_as_real(x.to(torch.complex64)).clone()

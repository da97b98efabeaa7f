"""Continuous delay (How to Train Your HiPPO, Gu et al. 2022; S4 `delay`).

Input: band-limited white noise u of l_seq samples at step dt (period T = l_seq·dt). Its rfft
coefficients c_k ~ N(0, rms²/2) + i·N(0, rms²/2) for 0 < f_k ≤ freq, zero above freq and at DC,
rescaled by √(1 − n_zeroed/n) so the rms stays `rms`, then u = irfft(c)·√(2n) − u_0 (starts at 0).
Targets: the input delayed by multiples of l_lag, zero before the start:
    y_t^(j) = u_{t − j·l_lag}  for j = 1 … n_lag   (chance MSE ≈ var(u) ≈ rms²)
Batch convention (sequence-to-sequence regression, read by the forecasting task with
horizon = l_seq, i.e. every step is scored; x has no zeroed future rows here):
    x (B, l_seq, 1) float32, y (B, l_seq, n_lag) float32; mean = 0, std = 1 (n_lag,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from s4lab.data.synthetic.base import SyntheticDataModule


def check_band(l_seq: int, dt: float, freq: float) -> None:
    """Raise unless 1/period <= freq <= Nyquist, the band where the signal is nonzero."""
    period, nyquist = l_seq * dt, 0.5 / dt
    if not 1.0 / period <= freq <= nyquist:
        raise ValueError(
            f"freq={freq} must lie in [1/period, Nyquist] = [{1.0 / period:g}, {nyquist:g}] "
            f"for l_seq={l_seq}, dt={dt}"
        )


def white_signal(
    n: int, l_seq: int, dt: float, freq: float, rms: float, generator: torch.Generator
) -> Tensor:
    """n band-limited white-noise signals (n, l_seq) starting at 0 (see the module docstring)."""
    check_band(l_seq, dt, freq)
    n_coef = math.ceil(l_seq / 2)
    sigma = rms * math.sqrt(0.5)
    real = torch.randn(n, n_coef + 1, generator=generator, dtype=torch.float64) * sigma
    imag = torch.randn(n, n_coef + 1, generator=generator, dtype=torch.float64) * sigma
    imag[:, -1] = 0.0  # the Nyquist bin of a real signal is real
    c = torch.complex(real, imag)  # (n, n_coef + 1)
    c[:, 0] = 0.0
    cut = torch.fft.rfftfreq(2 * n_coef, d=dt) > freq  # (n_coef + 1,)
    c[:, cut] = 0.0
    c = c / math.sqrt(1.0 - cut.sum().item() / n_coef) * math.sqrt(2 * n_coef)
    u = torch.fft.irfft(c, n=2 * n_coef)[:, :l_seq]  # (n, l_seq)
    return (u - u[:, :1]).float()


class Delay(SyntheticDataModule):
    """Reproduce a white-noise input delayed by l_lag (and by 2·l_lag … n_lag·l_lag)."""

    def __init__(
        self,
        l_seq: int = 4000,
        l_lag: int = 1000,
        n_lag: int = 1,
        dt: float = 2.5e-4,
        freq: float = 1000.0,
        rms: float = 0.5,
        n_train: int = 16_384,
        n_val: int = 1_024,
        n_test: int = 1_024,
        batch_size: int = 64,
        batch_size_eval: int | None = None,
        num_workers: int | None = None,
        seed: int = 42,
        track_test: bool = False,
    ) -> None:
        super().__init__(
            n_train, n_val, n_test, batch_size, batch_size_eval, num_workers, seed, track_test
        )
        if not 0 < n_lag * l_lag <= l_seq:
            raise ValueError(f"n_lag·l_lag = {n_lag}·{l_lag} must lie in [1, l_seq={l_seq}]")
        self.l_seq, self.l_lag, self.n_lag = l_seq, l_lag, n_lag
        self.dt, self.freq, self.rms = dt, freq, rms
        check_band(l_seq, dt, freq)  # fail at construction, not in a loader worker
        self.horizon = l_seq
        self.mean, self.std = torch.zeros(n_lag), torch.ones(n_lag)
        self.d_input, self.d_output, self.l_max = 1, n_lag, l_seq
        self.vocab_size = None

    def generate(self, n: int, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
        u = white_signal(n, self.l_seq, self.dt, self.freq, self.rms, generator)  # (B, L)
        lags = [j * self.l_lag for j in range(1, self.n_lag + 1)]
        y = torch.stack([F.pad(u[:, : self.l_seq - lag], (lag, 0)) for lag in lags], dim=-1)
        return u.unsqueeze(-1), y  # (B, L, 1), (B, L, n_lag)

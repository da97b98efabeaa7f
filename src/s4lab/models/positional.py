"""Position encodings added to the encoder's output, for layers that do not see order (attention).

Sinusoidal (Vaswani et al. 2017), t the position, i < H/2:
    PE[t, 2i] = sin(t / 10000^(2i/H)),   PE[t, 2i+1] = cos(t / 10000^(2i/H))
Learned: PE[t] is a trained vector per position t < l_max (init N(0, std²)).
Both add PE[offset : offset + L] to x (B, L, H); a recurrent step at time t uses offset t.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(L: int, d_model: int, offset: int = 0) -> Tensor:
    """PE (L, H) for positions offset … offset + L − 1 (H even)."""
    if d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")
    t = torch.arange(offset, offset + L, dtype=torch.float64)[:, None]  # (L, 1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)  # (H/2,)
    angle = t * inv_freq.double()  # (L, H/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1).float()  # (L, H)


class SinusoidalPositions(nn.Module):
    """x + PE with fixed sinusoids: no parameters, any length (the table grows on demand)."""

    def __init__(self, d_model: int, l_max: int | None = None) -> None:
        super().__init__()
        self.d_model = d_model
        # a buffer (moved by .to(), not saved): no host-to-device copy per forward or step
        self.register_buffer("PE", sinusoidal_positions(l_max or 1, d_model), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, L, H), positions starting at offset -> (B, L, H)."""
        end = offset + x.shape[1]
        if end > self.PE.shape[0]:  # double until it covers the positions asked for
            size = max(end, 2 * self.PE.shape[0])
            self.PE = sinusoidal_positions(size, self.d_model).to(self.PE.device)
        return x + self.PE[offset:end].to(x.dtype)


class LearnedPositions(nn.Module):
    """x + PE with one trained vector per position, up to l_max positions."""

    def __init__(self, d_model: int, l_max: int | None = None, std: float = 0.02) -> None:
        super().__init__()
        if l_max is None:
            raise ValueError("learned positions need the data's l_max; use sinusoidal positions")
        self.l_max = l_max
        self.PE = nn.Parameter(torch.randn(l_max, d_model) * std)  # (l_max, H)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (B, L, H), positions starting at offset -> (B, L, H)."""
        L = x.shape[1]
        if offset + L > self.l_max:
            raise ValueError(
                f"position {offset + L - 1} is past l_max={self.l_max} of the learned positions"
            )
        return x + self.PE[offset : offset + L]

"""FeedForward: the Transformer's position-wise MLP as a sequence layer, (B, L, H) -> (B, L, H).

    y_t = W_2 dropout(σ(W_1 x_t + b_1)) + b_2      W_1: H -> expand·H, W_2: expand·H -> H
σ is GELU (the official S4 `ff` layer) or ReLU (Vaswani et al.; Baevski & Auli).
Each position is mapped alone, so padded positions never reach valid ones (no mask needed), a
change of sampling rate changes nothing, and the recurrent step is forward on one position.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from s4lab.models.block import make_activation


class FeedForward(nn.Module):
    """Linear H -> expand·H, activation, dropout, Linear back to H; the same map everywhere."""

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        expand: int = 4,
        dropout: float = 0.0,
        activation: Literal["gelu", "relu"] = "gelu",
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.linear1 = nn.Linear(d_model, expand * d_model)  # W_1
        if activation not in ("gelu", "relu"):
            raise ValueError(f"FeedForward activation must be 'gelu' or 'relu', got {activation!r}")
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear2 = nn.Linear(expand * d_model, d_model)  # W_2

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H) or one step (B, H) -> same shape; lengths and rate change nothing here."""
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (..., H={self.d_model}), got {tuple(x.shape)}")
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def setup_step(self) -> None:
        """Nothing to prepare: the layer has no state."""

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, None]:
        """forward(x) (B, L, H); no state."""
        return self(x), None

    def default_state(self, batch_size: int) -> None:
        """No state."""
        return None

    def step(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        """One position: x (B, H) -> (B, H), state unchanged (None)."""
        return self(x), state

"""FeedForward: the Transformer's position-wise MLP as a sequence layer, (B, L, H) -> (B, L, H).

    y_t = W_2 dropout(GELU(W_1 x_t + b_1)) + b_2      W_1: H -> expand·H, W_2: expand·H -> H
Each position is mapped alone, so padded positions never reach valid ones (no mask needed), a
change of sampling rate changes nothing, and the recurrent step is forward on one position.
"""

from __future__ import annotations

from torch import Tensor, nn


class FeedForward(nn.Module):
    """Linear H -> expand·H, GELU, dropout, Linear back to H; the same map at every position."""

    def __init__(
        self, d_model: int, l_max: int | None = None, expand: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.linear1 = nn.Linear(d_model, expand * d_model)  # W_1
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear2 = nn.Linear(expand * d_model, d_model)  # W_2

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H) or one step (B, H) -> same shape; lengths and rate change nothing here."""
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (..., H={self.d_model}), got {tuple(x.shape)}")
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def setup_step(self) -> None:
        """Nothing to prepare: the layer has no state."""

    def default_state(self, batch_size: int) -> None:
        """No state."""
        return None

    def step(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        """One position: x (B, H) -> (B, H), state unchanged (None)."""
        return self(x), state

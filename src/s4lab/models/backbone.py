"""SequenceModel: encoder -> n_layers residual blocks -> final norm; features (B, L, H).

Block (prenorm):  x <- x + Dropout(layer(Norm(x), lengths))
Block (postnorm): x <- Norm(x + Dropout(layer(x, lengths)))
Dropout masks are tied over the sequence (one per channel and example), as the official
experiments' `tie_dropout`. Pooling and decoding belong to the task's head
(s4lab.models.heads), so any layer and any head combine by config.
The layer is any module built as `layer(d_model=H, l_max=L)` with
`forward(x (B, L, H), lengths (B,) | None, rate) -> (B, L, H)`, which keeps padded positions
(suffix padding, l >= length) from reaching valid ones; for recurrent use it also has
`setup_step()`, `default_state(batch_size)` and `step(x (B, H), state) -> ((B, H), state)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from torch import Tensor, nn


class SequenceNorm(nn.Module):
    """LayerNorm over H, or BatchNorm over (B, L) per channel, on (B, L, H) tensors."""

    def __init__(self, d_model: int, kind: str) -> None:
        super().__init__()
        if kind not in ("layer", "batch"):
            raise ValueError(f"norm must be 'layer' or 'batch', got {kind!r}")
        self.kind = kind
        self.norm = nn.LayerNorm(d_model) if kind == "layer" else nn.BatchNorm1d(d_model)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "layer" or x.dim() == 2:  # (B, L, H), or one step (B, H)
            return self.norm(x)
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d wants (B, H, L)


class ResidualBlock(nn.Module):
    """One layer with its norm, dropout and residual connection."""

    def __init__(
        self, layer: nn.Module, d_model: int, norm: str, prenorm: bool, dropout: float
    ) -> None:
        super().__init__()
        self.layer = layer
        self.norm = SequenceNorm(d_model, norm)
        self.prenorm = prenorm
        self.dropout = nn.Dropout1d(dropout)  # on (B, H, L): zeroes whole channels

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) -> (B, L, H)."""
        z = self.norm(x) if self.prenorm else x
        y = self.layer(z, lengths=lengths, rate=rate)  # (B, L, H)
        x = x + self.dropout(y.transpose(1, 2)).transpose(1, 2)
        return x if self.prenorm else self.norm(x)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: x (B, H), state -> (B, H), next state."""
        z = self.norm(x) if self.prenorm else x
        z, state = self.layer.step(z, state)  # (B, H)
        x = x + z
        return (x if self.prenorm else self.norm(x)), state


class SequenceModel(nn.Module):
    """Residual stack of sequence layers with an encoder and recurrent steps; no pooling or decoder.

    Input: (B, L, d_input) floats, or (B, L) token ids when `vocab_size` is set (embedding).
    Output: features (B, L, d_model), the last norm applied (prenorm stacks).
    """

    def __init__(
        self,
        d_input: int,
        layer: Callable[..., nn.Module],
        l_max: int | None = None,
        vocab_size: int | None = None,
        d_model: int = 128,
        n_layers: int = 4,
        norm: Literal["layer", "batch"] = "layer",
        prenorm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model)
        else:
            self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(
            ResidualBlock(layer(d_model=d_model, l_max=l_max), d_model, norm, prenorm, dropout)
            for _ in range(n_layers)
        )
        # postnorm blocks end normalized already; prenorm stacks need a last norm
        self.norm = SequenceNorm(d_model, norm) if prenorm else nn.Identity()

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, d_input) or (B, L) ids, lengths (B,) valid steps -> features (B, L, H)."""
        x = self.encoder(x)  # (B, L, H)
        for block in self.blocks:
            x = block(x, lengths=lengths, rate=rate)
        return self.norm(x)

    def setup_step(self) -> None:
        """Prepare every layer for recurrent stepping (e.g. discretize its SSM once)."""
        for block in self.blocks:
            block.layer.setup_step()

    def default_state(self, batch_size: int) -> list[Any]:
        """Initial recurrent state: one entry per layer."""
        return [block.layer.default_state(batch_size) for block in self.blocks]

    def step(self, x: Tensor, state: list[Any]) -> tuple[Tensor, list[Any]]:
        """One time step: x (B, d_input) or (B,) token ids -> features (B, H), next state."""
        x = self.encoder(x)  # (B, H)
        next_state = []
        for block, s in zip(self.blocks, state, strict=True):
            x, s = block.step(x, s)
            next_state.append(s)
        return self.norm(x), next_state

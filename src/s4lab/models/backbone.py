"""SequenceModel: encoder (+ positions) -> n_layers blocks of residual layers -> final norm.

Block: an ordered list of layers, e.g. [S4, S4, FFN] (WT103) or [attention, FFN] (Transformer);
each layer of each block is wrapped in its own residual connection and norm, as the official:
    prenorm:   x <- x + Dropout(layer(Norm(x), lengths))
    postnorm:  x <- Norm(x + Dropout(layer(x, lengths)))
The stack holds n_layers · len(block) residual layers. Residual dropout masks are tied over the
sequence (one per channel and example, the official `tie_dropout`) unless tie_dropout=False.
Pooling and decoding belong to the task's head (s4lab.models.heads), so layers and heads combine
by config. A layer is any module built as `layer(d_model=H, l_max=L)` with
`forward(x (B, L, H), lengths (B,) | None, rate) -> (B, L, H)`, which keeps padded positions
(suffix padding, l >= length) from reaching valid ones; for recurrent use it also has
`setup_step()`, `default_state(batch_size)`, `step(x (B, H), state) -> ((B, H), state)` and
`forward_with_state(x (B, L, H)) -> ((B, L, H), state)`: forward from the zero state plus the
state that L steps leave, so a prompt runs in parallel and generation continues step by step.
Recurrent state of the stack: (t, [state of each residual layer]), t the steps taken so far.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from torch import Tensor, nn

StackState = tuple[int, list[Any]]  # (t, one state per residual layer)


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
        self,
        layer: nn.Module,
        d_model: int,
        norm: str,
        prenorm: bool,
        dropout: float,
        tie_dropout: bool = True,
    ) -> None:
        super().__init__()
        self.layer = layer
        self.norm = SequenceNorm(d_model, norm)
        self.prenorm, self.tie_dropout = prenorm, tie_dropout
        # tied: nn.Dropout1d on (B, H, L) zeroes whole channels; untied: every element alone
        self.dropout = nn.Dropout1d(dropout) if tie_dropout else nn.Dropout(dropout)

    def _residual(self, x: Tensor, y: Tensor) -> Tensor:
        """x + dropout(y) (B, L, H), then the norm for postnorm."""
        tied = self.tie_dropout  # Dropout1d wants (B, H, L)
        y = self.dropout(y.transpose(1, 2)).transpose(1, 2) if tied else self.dropout(y)
        x = x + y
        return x if self.prenorm else self.norm(x)

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) -> (B, L, H)."""
        z = self.norm(x) if self.prenorm else x
        return self._residual(x, self.layer(z, lengths=lengths, rate=rate))

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Any]:
        """forward(x) from the zero state and the layer's state after x: (B, L, H) -> (B, L, H)."""
        self._require_recurrent("forward_with_state")
        z = self.norm(x) if self.prenorm else x
        y, state = self.layer.forward_with_state(z)
        return self._residual(x, y), state

    def _require_recurrent(self, method: str) -> None:
        if not hasattr(self.layer, method):
            raise ValueError(f"{type(self.layer).__name__} has no recurrent mode (no {method}())")

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: x (B, H), state -> (B, H), next state."""
        self._require_recurrent("step")
        z = self.norm(x) if self.prenorm else x
        z, state = self.layer.step(z, state)  # (B, H)
        x = x + z
        return (x if self.prenorm else self.norm(x)), state


def _block_layers(layer: Callable[..., nn.Module] | Mapping[str, Any]) -> dict[str, Callable]:
    """The block as {name: layer constructor}: one layer, or an ordered mapping of them."""
    block = dict(layer) if isinstance(layer, Mapping) else {"layer": layer}
    if not block:
        raise ValueError("model.layer is an empty block; give one layer or a mapping of layers")
    for name, constructor in block.items():
        if not callable(constructor):
            raise TypeError(
                f"model.layer.{name} is not a layer (got {type(constructor).__name__}); every "
                "entry of a block must be a layer config with _target_ and _partial_: true, "
                "e.g. a file of configs/model/layer/"
            )
    return block


class SequenceModel(nn.Module):
    """Residual stack of sequence layers with an encoder and recurrent steps; no pooling or decoder.

    Input: (B, L, d_input) floats, or (B, L) token ids when `vocab_size` is set (`embedding`,
    built as embedding(vocab_size=, d_model=), nn.Embedding when not given).
    `layer`: one layer constructor, or a block {name: constructor} repeated n_layers times.
    `position`: positions added after the encoder, built as position(d_model=, l_max=).
    Output: features (B, L, d_model), the last norm applied (prenorm stacks).
    """

    def __init__(
        self,
        d_input: int,
        layer: Callable[..., nn.Module] | Mapping[str, Callable[..., nn.Module]],
        l_max: int | None = None,
        vocab_size: int | None = None,
        d_model: int = 128,
        n_layers: int = 4,
        norm: Literal["layer", "batch"] = "layer",
        prenorm: bool = True,
        dropout: float = 0.0,
        tie_dropout: bool = True,
        embedding: Callable[..., nn.Module] | None = None,
        position: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        if vocab_size is not None:
            self.encoder: nn.Module = (
                nn.Embedding(vocab_size, d_model)
                if embedding is None
                else embedding(vocab_size=vocab_size, d_model=d_model)
            )
        elif embedding is not None:
            raise ValueError(
                "model.embedding needs token inputs, but this dataset gives features "
                f"(d_input={d_input}); set model.embedding=null"
            )
        else:
            self.encoder = nn.Linear(d_input, d_model)
        self.position = None if position is None else position(d_model=d_model, l_max=l_max)
        block = _block_layers(layer)
        self.block_names = list(block)  # the layer names of one block, in order
        self.blocks = nn.ModuleList(
            ResidualBlock(
                make(d_model=d_model, l_max=l_max), d_model, norm, prenorm, dropout, tie_dropout
            )
            for _ in range(n_layers)
            for make in block.values()
        )
        # postnorm blocks end normalized already; prenorm stacks need a last norm
        self.norm = SequenceNorm(d_model, norm) if prenorm else nn.Identity()

    def encode(self, x: Tensor, offset: int = 0) -> Tensor:
        """Encoder and positions: (B, L, d_input) or (B, L) ids -> (B, L, H)."""
        x = self.encoder(x)  # (B, L, H)
        return x if self.position is None else self.position(x, offset=offset)

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, d_input) or (B, L) ids, lengths (B,) valid steps -> features (B, L, H)."""
        x = self.encode(x)  # (B, L, H)
        for block in self.blocks:
            x = block(x, lengths=lengths, rate=rate)
        return self.norm(x)

    def setup_step(self) -> None:
        """Prepare every layer for recurrent stepping (e.g. discretize its SSM once)."""
        for block in self.blocks:
            if not hasattr(block.layer, "setup_step"):
                raise ValueError(f"{type(block.layer).__name__} has no recurrent mode (no step())")
            block.layer.setup_step()

    def default_state(self, batch_size: int) -> StackState:
        """Initial recurrent state: t = 0 and one entry per residual layer."""
        return 0, [block.layer.default_state(batch_size) for block in self.blocks]

    def step(self, x: Tensor, state: StackState) -> tuple[Tensor, StackState]:
        """One time step: x (B, d_input) or (B,) token ids -> features (B, H), next state."""
        t, states = state
        x = self.encode(x[:, None], offset=t)[:, 0]  # (B, H)
        next_states = []
        for block, s in zip(self.blocks, states, strict=True):
            x, s = block.step(x, s)
            next_states.append(s)
        return self.norm(x), (t + 1, next_states)

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, StackState]:
        """forward(x) from the zero state, and the state that L calls of step() leave.

        x (B, L, d_input) or (B, L) ids -> features (B, L, H), (L, [state of each layer]).
        """
        x = self.encode(x)  # (B, L, H)
        states = []
        for block in self.blocks:
            x, s = block.forward_with_state(x)
            states.append(s)
        return self.norm(x), (x.shape[1], states)

"""LSTM and GRU layers around torch's cuDNN modules, (B, L, H) -> (B, L, H).

One recurrent layer per module with hidden size H = d_model (the backbone stacks them):
    GRU:   h_t = GRUCell(x_t, h_{t-1})                        state h (B, H)
    LSTM:  (h_t, c_t) = LSTMCell(x_t, (h_{t-1}, c_{t-1}))     state (h, c), each (B, H)
    y_t = h_t,  h_{-1} = c_{-1} = 0
forward_with_state(x) also returns the final state, what step() holds after the last input.
Padding: sequences are packed by `lengths` (pack_padded_sequence), so the recurrence stops at
each sequence's end, valid outputs never see pads and outputs at pads are zero. Causal by nature.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class _TorchRNN(nn.Module):
    """Shared forward/step of a one-layer, batch-first torch RNN with hidden size d_model."""

    rnn: nn.RNNBase

    def __init__(self, d_model: int, l_max: int | None = None) -> None:
        super().__init__()
        self.d_model = d_model

    def _check(self, x: Tensor, ndim: int) -> None:
        shape = "(B, L, H=" if ndim == 3 else "(B, H="
        if x.ndim != ndim or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input {shape}{self.d_model}), got {tuple(x.shape)}")

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps -> (B, L, H), zero at pads."""
        self._check(x, 3)
        if rate != 1.0:
            raise ValueError(f"{type(self).__name__} has no sampling rate; got rate = {rate}")
        if lengths is None:
            return self.rnn(x)[0]
        batch, L, _ = x.shape
        if lengths.shape != (batch,):
            raise ValueError(f"expected lengths ({batch},), got {tuple(lengths.shape)}")
        # pack wants lengths >= 1 on the CPU; a length-0 row runs one (discarded) step
        lens = lengths.detach().to("cpu", torch.int64).clamp(1, L)
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        y, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=L)
        return y * (lengths[:, None, None] > 0)  # (B, L, H)

    def setup_step(self) -> None:
        """Nothing to prepare: the recurrence is the module itself."""

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Any]:
        """forward(x) (B, L, H) and the final state in step()'s form."""
        self._check(x, 3)
        y, state = self.rnn(x)
        return y, (tuple(s[0] for s in state) if isinstance(state, tuple) else state[0])

    def _zeros(self, batch_size: int) -> Tensor:
        p = self.rnn.weight_hh_l0
        return torch.zeros(batch_size, self.d_model, dtype=p.dtype, device=p.device)

    def _run_step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        self._check(x, 2)
        y, state = self.rnn(x[:, None], state)  # (B, 1, H)
        return y[:, 0], state


class LSTM(_TorchRNN):
    """One torch.nn.LSTM layer, H -> H; state (h, c), each (B, H)."""

    def __init__(self, d_model: int, l_max: int | None = None) -> None:
        super().__init__(d_model, l_max)
        self.rnn = nn.LSTM(d_model, d_model, batch_first=True)

    def default_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(h, c) = zeros, each (B, H)."""
        return self._zeros(batch_size), self._zeros(batch_size)

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token: x (B, H), (h, c) -> y = h' (B, H), (h', c')."""
        h, c = state
        y, (h, c) = self._run_step(x, (h[None], c[None]))  # torch wants (1, B, H)
        return y, (h[0], c[0])


class GRU(_TorchRNN):
    """One torch.nn.GRU layer, H -> H; state h (B, H)."""

    def __init__(self, d_model: int, l_max: int | None = None) -> None:
        super().__init__(d_model, l_max)
        self.rnn = nn.GRU(d_model, d_model, batch_first=True)

    def default_state(self, batch_size: int) -> Tensor:
        """h = zeros (B, H)."""
        return self._zeros(batch_size)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One token: x (B, H), h -> y = h' (B, H), h'."""
        y, h = self._run_step(x, state[None])
        return y, h[0]

"""Heads: backbone features (B, L, H) -> task outputs. Built by the task as head(d_model, d_output).

pool "mean":  z = (1/n) Σ_{l < n} x_l       over the n valid positions (suffix padding)
pool "last":  z = x_{n-1}                    the last valid position
ClassificationHead:  logits = W z + b                                        (B, D)
RetrievalHead:       logits = W₂ GELU(W₁ [u, v, u − v, u ⊙ v] + b₁) + b₂       (B, D)
                     u, v: pooled features of the two documents of each pair
LinearHead:          y_l = W x_l + b at every position                       (B, L, D)
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

Pool = Literal["mean", "last"]
POOLS: tuple[str, ...] = get_args(Pool)


def masked_pool(x: Tensor, lengths: Tensor | None, mode: str) -> Tensor:
    """x (B, L, H) pooled over each sequence's valid steps (all L if lengths is None) -> (B, H)."""
    L = x.shape[1]
    if lengths is None:
        return x.mean(dim=1) if mode == "mean" else x[:, -1]
    lengths = lengths.clamp(1, L)
    if mode == "last":
        return x[torch.arange(x.shape[0], device=x.device), lengths - 1]
    mask = torch.arange(L, device=x.device) < lengths[:, None]  # (B, L) valid positions
    return (x * mask[..., None]).sum(1) / lengths[:, None].to(x.dtype)


def _check_pool(mode: str) -> None:
    if mode not in POOLS:
        raise ValueError(f"pool must be 'mean' or 'last', got {mode!r}")


class ClassificationHead(nn.Module):
    """Pool over valid positions, then one linear layer: (B, L, H) -> (B, d_output)."""

    def __init__(self, d_model: int, d_output: int, pool: Pool = "mean") -> None:
        super().__init__()
        _check_pool(pool)
        self.pool = pool
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, L, H), lengths (B,) -> logits (B, d_output)."""
        return self.decoder(masked_pool(x, lengths, self.pool))


class RetrievalHead(nn.Module):
    """Document pairs: x (2B, L, H) holds all first documents, then all second ones -> (B, D).

    The two-layer MLP on [u, v, u − v, u ⊙ v] is the official retrieval decoder's (nli=True).
    """

    def __init__(self, d_model: int, d_output: int, pool: Pool = "mean") -> None:
        super().__init__()
        _check_pool(pool)
        self.pool = pool
        self.mlp = nn.Sequential(nn.Linear(4 * d_model, d_model), nn.GELU())
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (2B, L, H), lengths (2B,) -> logits (B, d_output)."""
        if x.shape[0] % 2:
            raise ValueError(f"expected features of 2B documents, got {x.shape[0]}")
        u, v = masked_pool(x, lengths, self.pool).chunk(2, dim=0)  # (B, H) each
        return self.decoder(self.mlp(torch.cat([u, v, u - v, u * v], dim=-1)))


class LinearHead(nn.Module):
    """One linear map at every position: (..., H) -> (..., d_output); (B, H) works for steps."""

    def __init__(self, d_model: int, d_output: int) -> None:
        super().__init__()
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, L, H) -> (B, L, d_output); padded positions are left to the loss to ignore."""
        return self.decoder(x)

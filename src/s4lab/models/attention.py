"""MultiheadAttention: multi-head self-attention as a sequence layer, (B, L, H) -> (B, L, H).

Notation: H = d_model, n_heads heads of width d = H / n_heads, X (L, H) one sequence.
    Q = X W_Q + b_Q,  K = X W_K + b_K,  V = X W_V + b_V      one input projection H -> 3H
    A_h = softmax(Q_h K_hᵀ / √d + M)                          per head h, M ∈ {0, −∞}^(L×L)
    Y = concat_h(A_h V_h) W_O + b_O                           output projection H -> H
M masks a key s for a query t when s > t (causal) or s >= length (bidirectional with suffix
padding). Causal attention needs no padding mask: a valid query t < length sees keys s <= t,
all valid, so it keeps the fused causal kernel. The products run in
torch.nn.functional.scaled_dot_product_attention (flash / memory-efficient kernels on GPU).
Recurrent mode (causal only): a KV cache. Step t appends k_t, v_t to the cache and attends
y_t = softmax(q_t [k_0 … k_t]ᵀ / √d) [v_0 … v_t], which equals row t of the causal forward;
forward_with_state(x) fills the cache with the keys and values of a whole prompt at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s4lab.models.block import length_mask

KVCache = tuple[Tensor, Tensor]  # keys, values: (B, n_heads, t, d) after t steps


class MultiheadAttention(nn.Module):
    """Self-attention over the sequence, causal or bidirectional, padding-aware, KV-cache steps."""

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        n_heads: int = 8,
        dropout: float = 0.0,
        causal: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if n_heads < 1 or d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout, self.causal = dropout, causal  # dropout: on the attention weights A_h
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # [W_Q W_K W_V]
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W_O

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q, K, V split into heads: x (B, L, H) -> three (B, n_heads, L, d)."""
        batch, L, _ = x.shape
        qkv = self.in_proj(x).view(batch, L, 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, n_heads, L, d)
        return q, k, v

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps (suffix padding) -> (B, L, H)."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, L, H={self.d_model}), got {tuple(x.shape)}")
        if rate != 1.0:
            raise ValueError(f"attention has no sampling rate to change; got rate={rate}")
        batch, L, _ = x.shape
        mask = None
        if lengths is not None:
            if lengths.shape != (batch,):
                raise ValueError(f"expected lengths ({batch},), got {tuple(lengths.shape)}")
            if not self.causal:
                # (B, 1, 1, L): pad keys masked for every query. An empty sequence keeps key 0
                # so that no row is fully masked: some SDPA kernels return NaN for such rows
                # (pytorch#103963, #110213); an empty sequence has no valid outputs anyway.
                mask = length_mask(lengths.clamp(min=1), L)[:, None, None, :]
        q, k, v = self._heads(x)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal,
        )  # (B, n_heads, L, d)
        return self.out_proj(y.transpose(1, 2).reshape(batch, L, self.d_model))

    def _require_causal(self) -> None:
        if not self.causal:
            raise ValueError(
                "bidirectional attention (causal=false) sees the future; it has no recurrent mode"
            )

    def setup_step(self) -> None:
        """Check that the layer can step; the KV cache needs no precomputation."""
        self._require_causal()

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, KVCache]:
        """forward(x) (B, L, H) and the KV cache of its L steps, each (B, n_heads, L, d)."""
        self._require_causal()
        _, k, v = self._heads(x)
        return self(x), (k, v)

    def default_state(self, batch_size: int) -> KVCache:
        """An empty KV cache: keys and values (B, n_heads, 0, d)."""
        self._require_causal()
        w = self.in_proj.weight
        empty = w.new_zeros(batch_size, self.n_heads, 0, self.d_head)
        return empty, empty.clone()

    def step(self, x: Tensor, state: KVCache) -> tuple[Tensor, KVCache]:
        """One token: x (B, H), cache of t steps -> y (B, H), cache of t + 1 steps."""
        self._require_causal()
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        q, k, v = self._heads(x[:, None])  # each (B, n_heads, 1, d)
        k_cache, v_cache = state
        k = torch.cat([k_cache.to(k.dtype), k], dim=2)  # (B, n_heads, t + 1, d)
        v = torch.cat([v_cache.to(v.dtype), v], dim=2)
        # one query after every cached key: nothing to mask (is_causal would align top-left)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, n_heads, 1, d)
        return self.out_proj(y.reshape(x.shape[0], self.d_model)), (k, v)

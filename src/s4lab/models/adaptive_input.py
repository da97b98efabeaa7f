"""AdaptiveEmbedding: adaptive input representations (Baevski & Auli), (B, L) ids -> (B, L, H).

Notation: V = vocab_size, H = d_model, cutoffs c_0 < … < c_{k-1} split the ids (sorted by
frequency) into k + 1 clusters [l_i, r_i) = [0, c_0), [c_0, c_1), …, [c_{k-1}, V), n_i = r_i − l_i.
    d_i = H / div_val^i                          rarer clusters get narrower embeddings
    E_i ∈ R^(n_i × d_i),  E_i ~ N(0, (init_scale / √d_i)²)
    P_i ∈ R^(H × d_i),    P_i ~ N(0, (init_scale / √H)²)        only when div_val > 1
    emb(x) = √H · P_i dropout(E_i[x − l_i])     for x in cluster i (no P_i when div_val = 1)
With div_val = 1 every d_i = H and the clusters are one table split in rows, which is what lets
AdaptiveSoftmax tie its output weights W_i to E_i cluster by cluster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cluster_bounds(
    vocab_size: int, d_model: int, cutoffs: Sequence[int], div_val: int
) -> list[int]:
    """Validate the cluster layout; return [c_0, …, c_{k-1}, V], the right ends r_i."""
    cutoffs = [int(c) for c in cutoffs]
    if any(b <= a for a, b in zip(cutoffs[:-1], cutoffs[1:], strict=True)):
        raise ValueError(f"cutoffs must be strictly increasing, got {cutoffs}")
    if any(not 0 < c < vocab_size for c in cutoffs):
        raise ValueError(
            f"cutoffs must lie in (0, vocab_size={vocab_size}) (V itself is implied), got {cutoffs}"
        )
    if div_val < 1:
        raise ValueError(f"div_val must be a positive integer, got {div_val}")
    if d_model % div_val ** len(cutoffs) != 0:
        raise ValueError(
            f"d_model={d_model} must be divisible by div_val^n_clusters = {div_val}^{len(cutoffs)}"
            f" = {div_val ** len(cutoffs)} so that every cluster width d_i = d_model / div_val^i"
            " is an integer; change d_model, div_val or the number of cutoffs"
        )
    return [*cutoffs, vocab_size]


def check_ids(ids: Tensor, vocab_size: int, what: str = "token ids") -> None:
    """Raise ValueError unless every entry of the integer tensor ids lies in [0, vocab_size)."""
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"{what} must be an integer tensor, got dtype {ids.dtype}")
    if ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(
            f"{what} must lie in [0, {vocab_size}) for vocab_size={vocab_size}; "
            f"got ids in [{lo}, {hi}]"
        )


class AdaptiveEmbedding(nn.Module):
    """Token embedding whose width shrinks by div_val per frequency cluster, projected back to H."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        cutoffs: Sequence[int],
        div_val: int = 1,
        init_scale: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.cutoffs = cluster_bounds(vocab_size, d_model, cutoffs, div_val)  # [c_0, …, V]
        self.lefts = [0, *self.cutoffs[:-1]]  # l_i
        self.vocab_size, self.d_model, self.div_val = vocab_size, d_model, div_val
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)  # on the looked-up rows E_i[x − l_i]
        self.weights = nn.ParameterList()  # E_i (n_i, d_i)
        self.projections = nn.ParameterList()  # P_i (H, d_i); empty when div_val = 1
        for i, (left, right) in enumerate(zip(self.lefts, self.cutoffs, strict=True)):
            d_i = d_model // div_val**i
            self.weights.append(nn.Parameter(torch.empty(right - left, d_i)))
            nn.init.normal_(self.weights[i], std=init_scale / math.sqrt(d_i))
            if div_val > 1:
                self.projections.append(nn.Parameter(torch.empty(d_model, d_i)))
                nn.init.normal_(self.projections[i], std=init_scale / math.sqrt(d_model))

    def _embed_cluster(self, i: int, ids: Tensor) -> Tensor:
        """Ids local to cluster i (n,) -> P_i dropout(E_i[ids]) (n, H), before the √H scale."""
        emb = self.dropout(F.embedding(ids, self.weights[i]))  # (n, d_i)
        return F.linear(emb, self.projections[i]) if self.div_val > 1 else emb  # (n, H)

    def forward(self, x: Tensor) -> Tensor:
        """Token ids x (B, L) or (B,) -> embeddings (B, L, H) or (B, H)."""
        check_ids(x, self.vocab_size)
        flat = x.reshape(-1)  # (N,)
        if len(self.cutoffs) == 1:
            return self.scale * self._embed_cluster(0, flat).view(*x.shape, self.d_model)
        # Each cluster embeds only its own tokens; the rows are then put back in token order by
        # one out-of-place index_copy (no per-cluster in-place writes, so dtypes under autocast
        # and autograd stay simple).
        positions, rows = [], []
        for i, (left, right) in enumerate(zip(self.lefts, self.cutoffs, strict=True)):
            idx = ((flat >= left) & (flat < right)).nonzero().squeeze(1)  # (n_i,)
            positions.append(idx)
            rows.append(self._embed_cluster(i, flat.index_select(0, idx) - left))  # (n_i, H)
        rows_cat = torch.cat(rows)  # (N, H), grouped by cluster
        out = rows_cat.new_zeros(flat.shape[0], self.d_model).index_copy(
            0, torch.cat(positions), rows_cat
        )  # (N, H), token order
        return self.scale * out.view(*x.shape, self.d_model)

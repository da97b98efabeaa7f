"""AdaptiveSoftmax: the adaptive log-softmax head of a language model, (..., H) -> log p over V.

Notation as in adaptive_input: V = d_output, H = d_model, cutoffs c_0 < … < c_{k-1} give clusters
[l_i, r_i) = [0, c_0), …, [c_{k-1}, V), k tail clusters, widths d_i = H / div_val^i.
    h_0 = dropout(x P_0)   if head_projection and div_val > 1,   else h_0 = x
    z_0 = h_0 [W_0; W_c]ᵀ + [b_0; b_c]                 c_0 shortlist scores, then one per tail
    h_i = dropout(x P_i)   if div_val > 1,                else h_i = x            (i ≥ 1)
    z_i = h_i W_iᵀ + b_i                               n_i scores inside tail cluster i
    log p(y) = log_softmax(z_0)[y]                                                y < c_0
    log p(y) = log_softmax(z_0)[c_0 + i − 1] + log_softmax(z_i)[y − l_i]          y in cluster i
Shapes: W_i (n_i, d_i), P_i (H, d_i), W_c (k, d_0), b_i (n_i,), b_c (k,).
Tying to an AdaptiveEmbedding (Transformer-XL / official S4): tie_weights makes W_i = E_i for every
cluster, tie_projs makes P_i (i ≥ 1) its P_i; the head's P_0 is always the head's own (zeros at
init, as in the official S4). With div_val = 1 there are no projections at all (head_projection
and tie_projs then change nothing). head_projection=False, bias=False is fairseq's tied adaptive
softmax (Baevski & Auli). nll evaluates each tail only on the targets that fall in it (an
empty set when none does, so every parameter gets a gradient, as DDP needs); it never builds the
(..., V) logits. Cluster i's score is row i − 1 of W_c; the official reads it at −i (its rows in
reverse order): flip W_c and b_c to import official weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s4lab.models.adaptive_input import AdaptiveEmbedding, check_ids, cluster_bounds


class AdaptiveSoftmax(nn.Module):
    """Log-probabilities over V from a head (shortlist + cluster scores) and k narrower tails."""

    def __init__(
        self,
        d_model: int,
        d_output: int,
        cutoffs: Sequence[int],
        div_val: int = 1,
        tie_weights: bool = True,
        tie_projs: bool = True,
        head_projection: bool = True,
        bias: bool = True,
        init_scale: float = 1.0,
        bias_scale: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.cutoffs = cluster_bounds(d_output, d_model, cutoffs, div_val)  # [c_0, …, V]
        self.d_model, self.d_output, self.div_val = d_model, d_output, div_val
        self.tie_weights, self.tie_projs, self.bias = tie_weights, tie_projs, bias
        self.head_projection = head_projection and div_val > 1
        self.n_clusters = len(self.cutoffs) - 1  # k tail clusters
        self.shortlist = self.cutoffs[0]  # c_0
        self.lefts = [0, *self.cutoffs[:-1]]  # l_i
        widths = [d_model // div_val**i for i in range(self.n_clusters + 1)]  # d_i
        self.dropout = nn.Dropout(dropout)  # after every projection that exists

        self.weights = nn.ParameterList()  # W_i (n_i, d_i); filled by tie() when tie_weights
        if not tie_weights:
            for left, right, d_i in zip(self.lefts, self.cutoffs, widths, strict=True):
                w = nn.Parameter(torch.empty(right - left, d_i))
                self.weights.append(nn.init.normal_(w, std=init_scale / math.sqrt(d_i)))
        # P_0 (H, d_0), zeros at init as in the official S4; None without a head projection
        self.head_proj = (
            nn.Parameter(torch.zeros(d_model, widths[0])) if self.head_projection else None
        )
        self.tail_projs = nn.ParameterList()  # tail_projs[i - 1] = P_i (H, d_i), i ≥ 1
        if div_val > 1 and not tie_projs:
            for d_i in widths[1:]:
                p = nn.Parameter(torch.empty(d_model, d_i))
                self.tail_projs.append(nn.init.normal_(p, std=init_scale / math.sqrt(d_model)))
        self.cluster_weight = nn.Parameter(torch.zeros(self.n_clusters, widths[0]))  # W_c
        self.biases = nn.ParameterList()  # b_i (n_i,)
        self.cluster_bias = nn.Parameter(torch.zeros(self.n_clusters)) if bias else None  # b_c
        if bias:
            bound = bias_scale / math.sqrt(d_model)
            for left, right in zip(self.lefts, self.cutoffs, strict=True):
                b = nn.Parameter(torch.empty(right - left))
                self.biases.append(nn.init.uniform_(b, -bound, bound))

    def tie(self, embedding: AdaptiveEmbedding) -> None:
        """Make W_i (tie_weights) and P_i, i ≥ 1 (tie_projs) the embedding's own Parameters."""
        if not isinstance(embedding, AdaptiveEmbedding):
            raise ValueError(
                f"AdaptiveSoftmax ties only to an AdaptiveEmbedding, got {type(embedding).__name__}"
            )
        pairs = [
            ("vocab size", self.d_output, embedding.vocab_size),
            ("d_model", self.d_model, embedding.d_model),
            ("cutoffs", self.cutoffs, embedding.cutoffs),
            ("div_val", self.div_val, embedding.div_val),
        ]
        mismatches = [f"{name} {a} != {b}" for name, a, b in pairs if a != b]
        if mismatches:
            raise ValueError(
                "cannot tie AdaptiveSoftmax to AdaptiveEmbedding (softmax vs embedding): "
                + "; ".join(mismatches)
                + "; build both with the same vocab size, d_model, cutoffs and div_val"
            )
        if self.tie_weights:
            self.weights = nn.ParameterList(list(embedding.weights))
        if self.tie_projs and self.div_val > 1:
            self.tail_projs = nn.ParameterList(list(embedding.projections)[1:])

    @property
    def needs_tie(self) -> bool:
        """Whether some parameter must come from an AdaptiveEmbedding (div_val 1: no P_i)."""
        return self.tie_weights or (self.tie_projs and self.div_val > 1)

    def _require_tied(self) -> None:
        missing = []
        if len(self.weights) != self.n_clusters + 1:
            missing.append("its output weights W_i (tie_weights=true)")
        if self.div_val > 1 and len(self.tail_projs) != self.n_clusters:
            missing.append("its tail projections P_i (tie_projs=true)")
        if missing:
            raise RuntimeError(
                f"AdaptiveSoftmax takes {' and '.join(missing)} from an AdaptiveEmbedding, but "
                "tie(embedding) was never called. The language-model task ties it when the "
                "backbone's embedding is an AdaptiveEmbedding (model.embedding=adaptive); "
                "otherwise set tie_weights=false and tie_projs=false"
            )

    def _head(self, x: Tensor) -> Tensor:
        """x (N, H) -> log_softmax(z_0) (N, c_0 + k)."""
        h = x if self.head_proj is None else self.dropout(x @ self.head_proj.to(x.dtype))
        z_short = F.linear(h, self.weights[0].to(x.dtype))  # (N, c_0)
        z_cluster = F.linear(h, self.cluster_weight.to(x.dtype))  # (N, k)
        if self.bias:
            z_short = z_short + self.biases[0].to(x.dtype)
            z_cluster = z_cluster + self.cluster_bias.to(x.dtype)
        return F.log_softmax(torch.cat([z_short, z_cluster], dim=-1), dim=-1)  # (N, c_0 + k)

    def _tail(self, i: int, x: Tensor) -> Tensor:
        """x (n, H) -> log_softmax(z_i) (n, n_i) for tail cluster i ≥ 1."""
        h = x if self.div_val == 1 else self.dropout(x @ self.tail_projs[i - 1].to(x.dtype))
        b_i = self.biases[i].to(x.dtype) if self.bias else None
        return F.log_softmax(F.linear(h, self.weights[i].to(x.dtype), b_i), dim=-1)

    def _flat_input(self, x: Tensor) -> Tensor:
        """x (..., H) -> (N, H) in float32 at least: log-probabilities over a large V in half
        precision lose the rare words, so the head is computed like the loss, in float32."""
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (..., H={self.d_model}), got {tuple(x.shape)}")
        self._require_tied()
        return x.reshape(-1, self.d_model).to(torch.promote_types(x.dtype, torch.float32))

    def nll(self, x: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
        """x (..., H), target (...) ids -> −log p(target) (...), 0 where target == ignore_index."""
        if target.shape != x.shape[:-1]:
            raise ValueError(
                f"expected target of shape x.shape[:-1] = {tuple(x.shape[:-1])}, "
                f"got {tuple(target.shape)}"
            )
        t = target.reshape(-1)  # (N,)
        valid = t != ignore_index
        check_ids(t[valid], self.d_output, f"targets (other than ignore_index={ignore_index})")
        t = torch.where(valid, t, 0)
        with torch.autocast(x.device.type, enabled=False):
            xf = self._flat_input(x)  # (N, H)
            head = self._head(xf)  # (N, c_0 + k)
            if self.n_clusters > 0:
                bounds = torch.tensor(self.cutoffs[:-1], device=t.device)
                cluster = torch.bucketize(t, bounds, right=True)  # (N,) cluster index i
            else:
                cluster = torch.zeros_like(t)
            col = torch.where(cluster == 0, t, self.shortlist + cluster - 1)  # y or its cluster
            logp = head.gather(1, col[:, None]).squeeze(1)  # (N,)
            positions, tails = [], []
            for i in range(1, self.n_clusters + 1):
                idx = ((cluster == i) & valid).nonzero().squeeze(1)  # (n,), maybe n = 0
                tail = self._tail(i, xf.index_select(0, idx))  # (n, n_i)
                local = t.index_select(0, idx) - self.lefts[i]
                tails.append(tail.gather(1, local[:, None]).squeeze(1))  # (n,)
                positions.append(idx)
            if tails:  # out-of-place: one add per position, no in-place writes into logp
                logp = logp.index_add(0, torch.cat(positions), torch.cat(tails))
            nll = torch.where(valid, -logp, torch.zeros_like(logp))
        return nll.view(target.shape)

    def log_prob(self, x: Tensor) -> Tensor:
        """x (..., H) -> log p over the whole vocabulary (..., V); for sampling and small V."""
        with torch.autocast(x.device.type, enabled=False):
            xf = self._flat_input(x)  # (N, H)
            head = self._head(xf)  # (N, c_0 + k)
            parts = [head[:, : self.shortlist]]
            for i in range(1, self.n_clusters + 1):
                cluster_logp = head[:, self.shortlist + i - 1, None]  # (N, 1)
                parts.append(cluster_logp + self._tail(i, xf))  # (N, n_i)
            return torch.cat(parts, dim=-1).view(*x.shape[:-1], self.d_output)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., H) -> log-probabilities (..., V): valid logits for argmax, sampling, CE."""
        return self.log_prob(x)

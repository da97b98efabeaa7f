"""Performer: multi-head attention estimated by FAVOR+ random features, (B, L, H) -> (B, L, H).

Choromanski et al. 2021, n heads of width d = H / n, m random features shared by the heads:
    q, k, v = x W_q, x W_k, x W_v                   input projections H -> H, split into heads
    q', k' = q / d^¼, k / d^¼                        so that exp(q'·k') = exp(q·k / √d)
    φ(x) = (exp(w_r·x − |x|²/2 − c) + ε) / √m,  w_1..w_m orthogonal random features (ORF)
    y_t = φ(q'_t)ᵀ S / φ(q'_t)·z,  S = Σ_i φ(k'_i) v_iᵀ,  z = Σ_i φ(k'_i)  ≈ softmax(qkᵀ/√d) v
    causal: sums over i ≤ t (prefix sums); recurrent step S += φ(k'_t) v_tᵀ, z += φ(k'_t)
    forward_with_state: the sums S, z over a whole prompt, the state its last step leaves
    out = concat_heads(y) W_o                       output projection H -> H
Stabilizer c (detached), as the original: each query subtracts its own max over features; keys
subtract their max over the valid keys of the sequence (per example and head), so pads and batch
mates never enter it. Causal keys use c = 0 instead: a max over the whole sequence would let a
future key change past outputs (through ε); w·x − |x|²/2 ≤ |w|²/2 bounds the exponent anyway.
Redraw: in training, fresh features every `redraw_interval` forward calls (null: never); eval
keeps the current ones. They are a buffer, so a checkpoint restores the features it was using.
Pad keys (suffix padding) get φ = 0 and contribute nothing. Feature math runs in float32 or wider.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from s4lab.models.functional_attention import (
    favor_exponent,
    favor_features,
    linear_attention,
    linear_attention_step,
    orthogonal_gaussian,
)
from s4lab.models.linear_attention import check_input, merge_heads, split_heads


class Performer(nn.Module):
    """Multi-head FAVOR+ attention, causal by prefix sums or bidirectional, padding-aware."""

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        n_heads: int = 4,
        n_features: int = 256,
        causal: bool = True,
        redraw_interval: int | None = 1000,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        if redraw_interval is not None and redraw_interval < 1:
            raise ValueError(f"redraw_interval must be >= 1 or null, got {redraw_interval}")
        self.d_model, self.n_heads, self.causal, self.eps = d_model, n_heads, causal, eps
        self.d_head, self.n_features = d_model // n_heads, n_features
        self.redraw_interval = redraw_interval
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.output = nn.Linear(d_model, d_model)
        self.register_buffer("W", orthogonal_gaussian(n_features, self.d_head))  # (m, d)
        self.calls = 0  # training calls since the last draw; a Python int, saved as extra state

    @torch.no_grad()
    def redraw(self) -> None:
        """Replace the random features with a fresh ORF draw (torch's global generator)."""
        self.W.copy_(orthogonal_gaussian(self.n_features, self.d_head).to(self.W))
        self.calls = 0

    def get_extra_state(self) -> Tensor:
        """The call counter travels with the checkpoint, next to the features W in use."""
        return torch.tensor(self.calls)  # a CPU tensor, like every other state_dict entry

    def set_extra_state(self, state: Tensor) -> None:
        self.calls = int(state)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (..., H) -> q', k', v (..., H) in float32 or wider; q', k' scaled by d^-¼."""
        wide = torch.promote_types(x.dtype, torch.float32)  # bf16 input, fp32 weight: no mix
        q, k, v = self.qkv(x.to(self.qkv.weight.dtype)).to(wide).chunk(3, dim=-1)
        scale = self.d_head**-0.25
        return q * scale, k * scale, v

    def query_features(self, q: Tensor) -> Tensor:
        """φ(q') with each query's own max subtracted: (..., d) -> (..., m)."""
        a = favor_exponent(q, self.W.to(q.dtype))
        return favor_features(a, a.amax(dim=-1, keepdim=True).detach(), self.eps)

    def key_features(self, k: Tensor, valid: Tensor | None) -> Tensor:
        """φ(k') (B, n, L, m) from k' (B, n, L, d), valid (B, L) bool; pad keys get φ = 0."""
        a = favor_exponent(k, self.W.to(k.dtype))
        if self.causal:
            phi = favor_features(a, 0.0, self.eps)  # a data max would reach back from the future
        else:
            seen = a if valid is None else a.masked_fill(~valid[:, None, :, None], -torch.inf)
            c = seen.amax(dim=(-2, -1), keepdim=True).detach()
            phi = favor_features(a, torch.where(torch.isfinite(c), c, 0.0), self.eps)  # empty row
        return phi if valid is None else torch.where(valid[:, None, :, None], phi, 0.0)

    def attention(self, q: Tensor, k: Tensor, v: Tensor, valid: Tensor | None = None) -> Tensor:
        """FAVOR+ estimate of softmax(q'k'ᵀ) v: q', k' (B, n, L, d), v (B, n, L, e), valid (B, L)
        -> (B, n, L, e)."""
        phi_q, phi_k = self.query_features(q), self.key_features(k, valid)
        return linear_attention(phi_q, phi_k, v, self.causal, 0.0)  # ε lives in the features

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps -> (B, L, H)."""
        check_input(x, self.d_model, lengths, rate)
        if self.training and self.redraw_interval is not None:
            if self.calls >= self.redraw_interval:
                self.redraw()
            self.calls += 1
        with torch.autocast(x.device.type, enabled=False):
            q, k, v = (split_heads(t, self.n_heads) for t in self.project(x))  # (B, n, L, d)
            valid = None
            if lengths is not None:
                valid = torch.arange(x.shape[1], device=x.device) < lengths[:, None]
            y = self.attention(q, k, v, valid)  # (B, n, L, d)
        return self.output(merge_heads(y).to(x.dtype))

    def setup_step(self) -> None:
        """Recurrent mode uses the current features; only the causal form has one."""
        if not self.causal:
            raise ValueError("a bidirectional attention layer sees the future; it has no step")

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """forward(x) (B, L, H) in eval, and the sums its L steps leave: S (B, n, m, d), z."""
        if self.training:
            raise ValueError(
                "Performer.forward_with_state needs eval mode (.eval()): training "
                "redraws the features inside forward(), so the state would not match"
            )
        self.setup_step()
        with torch.autocast(x.device.type, enabled=False):
            _, k, v = (split_heads(t, self.n_heads) for t in self.project(x))  # (B, n, L, d)
            phi_k = self.key_features(k, None)  # causal: stabilizer 0, as step() uses
            S = torch.einsum("bnlm,bnle->bnme", phi_k, v)
        return self(x), (S, phi_k.sum(dim=2))

    def default_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero sums: S (B, n, m, d), z (B, n, m)."""
        p = self.output.weight
        dtype = torch.promote_types(p.dtype, torch.float32)
        shape = (batch_size, self.n_heads, self.n_features)
        S = torch.zeros(*shape, self.d_head, dtype=dtype, device=p.device)
        return S, torch.zeros(shape, dtype=dtype, device=p.device)

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token: x (B, H), (S, z) -> y (B, H), next (S, z); matches forward() in eval."""
        if not self.causal:
            raise ValueError("a bidirectional attention layer sees the future; it has no step")
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        B = x.shape[0]
        q, k, v = (t.view(B, self.n_heads, self.d_head) for t in self.project(x))  # (B, n, d)
        phi_q = self.query_features(q)
        phi_k = favor_features(favor_exponent(k, self.W.to(k.dtype)), 0.0, self.eps)
        y, S, z = linear_attention_step(phi_q, phi_k, v, *state, 0.0)  # (B, n, d)
        return self.output(y.reshape(B, self.d_model).to(x.dtype)), (S, z)

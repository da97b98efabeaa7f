"""LinearAttention: multi-head attention with the elu + 1 feature map, (B, L, H) -> (B, L, H).

Linear Transformer (Katharopoulos et al. 2020), n heads of width d = H / n:
    q, k, v = x W_q, x W_k, x W_v                   input projections H -> H, split into heads
    φ(x) = elu(x) + 1
    y_t = φ(q_t)ᵀ S / (φ(q_t)·z + ε),  S = Σ_i φ(k_i) v_iᵀ,  z = Σ_i φ(k_i)
    causal: sums over i ≤ t (prefix sums); recurrent step S += φ(k_t) v_tᵀ, z += φ(k_t)
    forward_with_state: the sums S, z over a whole prompt, the state its last step leaves
    out = concat_heads(y) W_o                       output projection H -> H
Pad keys (suffix padding, i >= length) get φ(k_i) = 0 and so contribute nothing.
The feature sums run in float32 even under bf16/fp16 autocast.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from s4lab.models.functional_attention import (
    elu_feature_map,
    linear_attention,
    linear_attention_step,
)


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, L, H) -> (B, n, L, H / n)."""
    B, L, H = x.shape
    return x.view(B, L, n_heads, H // n_heads).transpose(1, 2)


def merge_heads(y: Tensor) -> Tensor:
    """(B, n, L, d) -> (B, L, n·d)."""
    B, n, L, d = y.shape
    return y.transpose(1, 2).reshape(B, L, n * d)


def check_input(x: Tensor, d_model: int, lengths: Tensor | None, rate: float) -> None:
    """Raise a clear error for inputs an attention layer cannot take."""
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"expected input (B, L, H={d_model}), got {tuple(x.shape)}")
    if lengths is not None and lengths.shape != (x.shape[0],):
        raise ValueError(f"expected lengths ({x.shape[0]},), got {tuple(lengths.shape)}")
    if rate != 1.0:
        raise ValueError(f"attention has no sampling rate to change; got rate={rate}")


class LinearAttention(nn.Module):
    """Multi-head linear attention (φ = elu + 1), causal by prefix sums or bidirectional."""

    def __init__(
        self,
        d_model: int,
        l_max: int | None = None,
        n_heads: int = 4,
        causal: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        self.d_model, self.n_heads, self.causal, self.eps = d_model, n_heads, causal, eps
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.output = nn.Linear(d_model, d_model)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (..., H) -> φ(q), φ(k), v (..., H) in float32 or wider."""
        wide = torch.promote_types(x.dtype, torch.float32)  # bf16 input, fp32 weight: no mix
        q, k, v = self.qkv(x.to(self.qkv.weight.dtype)).to(wide).chunk(3, dim=-1)
        return elu_feature_map(q), elu_feature_map(k), v

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        """x (B, L, H), lengths (B,) valid steps -> (B, L, H)."""
        check_input(x, self.d_model, lengths, rate)
        with torch.autocast(x.device.type, enabled=False):
            phi_q, phi_k, v = self.features(x)  # (B, L, H) each
            if lengths is not None:  # pad keys: zero features, no contribution
                valid = torch.arange(x.shape[1], device=x.device) < lengths[:, None]
                phi_k = phi_k * valid[..., None]
            phi_q, phi_k, v = (split_heads(t, self.n_heads) for t in (phi_q, phi_k, v))
            y = linear_attention(phi_q, phi_k, v, self.causal, self.eps)  # (B, n, L, d)
        return self.output(merge_heads(y).to(x.dtype))

    def setup_step(self) -> None:
        """Recurrent mode needs nothing precomputed; only the causal form has one."""
        if not self.causal:
            raise ValueError("a bidirectional attention layer sees the future; it has no step")

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """forward(x) (B, L, H) and the sums its L steps leave: S (B, n, d, d), z (B, n, d)."""
        self.setup_step()
        with torch.autocast(x.device.type, enabled=False):
            _, phi_k, v = (split_heads(t, self.n_heads) for t in self.features(x))  # (B, n, L, d)
            S = torch.einsum("bnlm,bnle->bnme", phi_k, v)
        return self(x), (S, phi_k.sum(dim=2))

    def default_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero sums: S (B, n, d, d), z (B, n, d)."""
        d = self.d_model // self.n_heads
        p = self.output.weight
        dtype = torch.promote_types(p.dtype, torch.float32)
        S = torch.zeros(batch_size, self.n_heads, d, d, dtype=dtype, device=p.device)
        z = torch.zeros(batch_size, self.n_heads, d, dtype=dtype, device=p.device)
        return S, z

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token: x (B, H), (S, z) -> y (B, H), next (S, z); matches forward() step by step."""
        if not self.causal:
            raise ValueError("a bidirectional attention layer sees the future; it has no step")
        if x.ndim != 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (B, H={self.d_model}), got {tuple(x.shape)}")
        B = x.shape[0]
        phi_q, phi_k, v = (t.view(B, self.n_heads, -1) for t in self.features(x))  # (B, n, d)
        y, S, z = linear_attention_step(phi_q, phi_k, v, *state, self.eps)  # (B, n, d)
        return self.output(y.reshape(B, self.d_model).to(x.dtype)), (S, z)

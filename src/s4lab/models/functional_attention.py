"""Kernelized (linear) attention as pure functions: feature maps, the fast sums, slow references.

Notation: B batch, n heads, L length, d head width, m features, e value width.
    A_ti = φ(q_t)·φ(k_i) / Σ_j φ(q_t)·φ(k_j)          attention weights through a feature map φ
    y_t = φ(q_t)ᵀ S / (φ(q_t)·z + ε),  S = Σ_i φ(k_i) v_iᵀ (m, e),  z = Σ_i φ(k_i) (m,)
    causal: S_t = Σ_{i≤t} φ(k_i) v_iᵀ, z_t = Σ_{i≤t} φ(k_i)   prefix sums; a step: S += φ(k) vᵀ
    φ(x) = elu(x) + 1                                   linear attention (Katharopoulos et al. 2020)
    φ(x) = exp(w_r·x − |x|²/2 − c) / √m, r = 1..m       FAVOR+ positive random features
        (Choromanski et al. 2021): E_w[φ(q)·φ(k)] e^{2c} = exp(q·k) for w ~ N(0, I)
Padding: a key whose features are zero contributes nothing; callers zero the pad keys' features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1 > 0, elementwise: (..., d) -> (..., d)."""
    return F.elu(x) + 1


def orthogonal_gaussian(m: int, d: int, generator: torch.Generator | None = None) -> Tensor:
    """m random features w_r (m, d): blocks of d orthonormal rows (QR of a Gaussian), each row
    rescaled by the norm of an independent N(0, I_d) vector, so every w_r ~ N(0, I_d) marginally
    while rows within a block stay exactly orthogonal (FAVOR+'s ORF)."""
    blocks = []
    for _ in range(math.ceil(m / d)):
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
        blocks.append(q.T)  # rows orthonormal
    W = torch.cat(blocks)[:m]  # (m, d)
    norms = torch.randn(m, d, generator=generator).norm(dim=-1)  # chi(d) lengths
    return norms[:, None] * W


def favor_exponent(x: Tensor, W: Tensor) -> Tensor:
    """The exponent a_r = w_r·x − |x|²/2 of FAVOR+'s features: x (..., d), W (m, d) -> (..., m)."""
    return x @ W.T - 0.5 * (x * x).sum(dim=-1, keepdim=True)


def favor_features(a: Tensor, stabilizer: Tensor | float = 0.0, eps: float = 1e-6) -> Tensor:
    """FAVOR+ positive features φ = (exp(a − c) + ε) / √m from exponents a (..., m) -> (..., m).

    The constant c (broadcastable to a) cancels in the attention weights when it is shared by
    every key a query sees, or by all features of one query; ε keeps denominators positive
    when every exponent underflows.
    """
    return (torch.exp(a - stabilizer) + eps) / math.sqrt(a.shape[-1])


def favor_features_ref(x: Tensor, W: Tensor) -> Tensor:
    """Unstabilized φ(x) = exp(w_r·x − |x|²/2) / √m (..., m): E_w[φ(q)·φ(k)] = exp(q·k)."""
    return torch.exp(favor_exponent(x, W)) / math.sqrt(W.shape[0])


def linear_attention(phi_q: Tensor, phi_k: Tensor, v: Tensor, causal: bool, eps: float) -> Tensor:
    """y_t = φ(q_t)ᵀ S / (φ(q_t)·z + ε), with S, z full sums or (causal) prefix sums up to t.

    phi_q, phi_k: (B, n, L, m), v: (B, n, L, e) -> (B, n, L, e). O(L·m·e) time; the causal form
    also holds O(L·m·e) memory (every prefix state S_t is materialized; chunking is future work).
    """
    if causal:
        S = torch.einsum("bnlm,bnle->bnlme", phi_k, v).cumsum(dim=2)  # (B, n, L, m, e)
        z = phi_k.cumsum(dim=2)  # (B, n, L, m)
        num = torch.einsum("bnlm,bnlme->bnle", phi_q, S)
    else:
        S = torch.einsum("bnlm,bnle->bnme", phi_k, v)  # (B, n, m, e)
        z = phi_k.sum(dim=2, keepdim=True)  # (B, n, 1, m)
        num = torch.einsum("bnlm,bnme->bnle", phi_q, S)
    den = (phi_q * z).sum(dim=-1, keepdim=True) + eps  # (B, n, L, 1)
    return num / torch.where(den > 0, den, 1.0)  # no keys yet (empty row): num = 0, y = 0


def linear_attention_step(
    phi_q: Tensor, phi_k: Tensor, v: Tensor, S: Tensor, z: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """One causal step: S += φ(k) vᵀ, z += φ(k), y = φ(q)ᵀ S / (φ(q)·z + ε).

    phi_q, phi_k: (B, n, m), v: (B, n, e), S: (B, n, m, e), z: (B, n, m) -> y (B, n, e), S, z.
    """
    S = S + phi_k[..., :, None] * v[..., None, :]
    z = z + phi_k
    num = torch.einsum("bnm,bnme->bne", phi_q, S)
    den = (phi_q * z).sum(dim=-1, keepdim=True) + eps
    return num / torch.where(den > 0, den, 1.0), S, z  # no keys yet: num = 0, y = 0


def linear_attention_ref(
    phi_q: Tensor, phi_k: Tensor, v: Tensor, causal: bool, eps: float
) -> Tensor:
    """Slow quadratic reference: y = (φ(Q)φ(K)ᵀ ⊙ M) V / ((φ(Q)φ(K)ᵀ ⊙ M) 1 + ε), M = tril or 1.

    Same shapes as linear_attention; O(L²) memory, for tests.
    """
    A = phi_q @ phi_k.transpose(-1, -2)  # (B, n, L, L)
    if causal:
        A = A.tril()
    return (A @ v) / (A.sum(dim=-1, keepdim=True) + eps)


def softmax_attention_ref(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None, causal: bool = False
) -> Tensor:
    """softmax(QKᵀ/√d + mask) V, the attention that FAVOR+ estimates.

    q, k: (B, n, L, d), v: (B, n, L, e), key_mask (B, L) bool (True = valid) -> (B, n, L, e).
    """
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, n, L, L)
    L = q.shape[-2]
    if causal:
        future = torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ v

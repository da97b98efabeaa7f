"""LinearAttention (φ = elu + 1): prefix sums equal the quadratic reference, step equals forward,
causal, padding-invariant, and it trains a step through train(). CPU, float64 math, ~1 s."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, train_checked

from s4lab.models.functional_attention import (
    elu_feature_map,
    linear_attention,
    linear_attention_ref,
)
from s4lab.models.linear_attention import LinearAttention

B, L, H, HEADS = 2, 16, 8, 2


def make_layer(causal: bool) -> LinearAttention:
    torch.manual_seed(0)
    return LinearAttention(H, n_heads=HEADS, causal=causal).double()


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_output_shape():
    assert make_layer(True)(randn(B, L, H)).shape == (B, L, H)


@pytest.mark.parametrize("causal", [True, False])
def test_fast_sums_equal_quadratic_reference(causal):
    phi_q, phi_k = elu_feature_map(randn(B, 3, L, 4)), elu_feature_map(randn(B, 3, L, 4, seed=2))
    v = randn(B, 3, L, 5, seed=3)
    fast = linear_attention(phi_q, phi_k, v, causal, 1e-6)
    torch.testing.assert_close(fast, linear_attention_ref(phi_q, phi_k, v, causal, 1e-6))


def test_reference_is_normalized_masked_product():
    """The reference written out: (φ(Q)φ(K)ᵀ ⊙ tril) V, row-normalized (ε = 0)."""
    phi_q, phi_k = elu_feature_map(randn(1, 1, 5, 3)), elu_feature_map(randn(1, 1, 5, 3, seed=2))
    v = randn(1, 1, 5, 2, seed=3)
    A = torch.tril(phi_q[0, 0] @ phi_k[0, 0].T)
    expected = (A / A.sum(dim=1, keepdim=True)) @ v[0, 0]
    torch.testing.assert_close(linear_attention_ref(phi_q, phi_k, v, True, 0.0)[0, 0], expected)


def test_step_equals_forward():
    layer = make_layer(True)
    x = randn(B, L, H)
    layer.setup_step()
    state = layer.default_state(B)
    ys = []
    for t in range(L):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, dim=1), layer(x), rtol=1e-10, atol=1e-10)
    assert state[0].shape == (B, HEADS, H // HEADS, H // HEADS)


def test_causal():
    layer = make_layer(True)
    x = randn(B, L, H)
    x2 = x.clone()
    x2[:, L // 2 :] = randn(B, L - L // 2, H, seed=9)
    y, y2 = layer(x), layer(x2)
    torch.testing.assert_close(y[:, : L // 2], y2[:, : L // 2], rtol=0, atol=0)
    assert not torch.allclose(y[:, L // 2 :], y2[:, L // 2 :])


@pytest.mark.parametrize("causal", [True, False])
def test_padding_invariance(causal):
    """Valid outputs are the same padded to L or 2L (junk in the pads) and beside any batch mate."""
    layer = make_layer(causal)
    n = 11
    x = randn(1, n, H)
    alone = layer(x)[0]
    for total in (L, 2 * L):
        batch = randn(2, total, H, seed=total)  # junk pads and a random batch mate
        batch[0, :n] = x[0]
        y = layer(batch, lengths=torch.tensor([n, total]))
        torch.testing.assert_close(y[0, :n], alone, rtol=1e-12, atol=1e-12)


def test_bad_use_is_a_clear_error():
    with pytest.raises(ValueError, match="sees the future"):
        make_layer(False).setup_step()
    with pytest.raises(ValueError, match="rate"):
        make_layer(True)(randn(B, L, H), rate=2.0)
    with pytest.raises(ValueError, match="divide"):
        LinearAttention(H, n_heads=3)


def test_trains_one_step_through_train(compose_train):
    tiny = [o for o in TINY if not o.startswith("model.layer.")]
    cfg = compose_train(
        *tiny,
        "model/layer=linear_attention",
        "model.layer.n_heads=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "test=false",
    )
    assert cfg.model.layer._target_ == "s4lab.models.linear_attention.LinearAttention"
    train_checked(cfg)


@pytest.mark.parametrize("causal", [True, False])
def test_bf16_autocast_runs_in_fp32_inside(causal):
    """bf16 inputs under autocast reach fp32 weights without a dtype clash; outputs are finite."""
    torch.manual_seed(0)
    layer = LinearAttention(d_model=8, n_heads=2, causal=causal)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(torch.randn(2, 6, 8).to(torch.bfloat16), torch.tensor([3, 6]))
    assert y.shape == (2, 6, 8) and torch.isfinite(y.float()).all()

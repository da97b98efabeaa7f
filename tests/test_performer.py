"""Performer (FAVOR+): the estimate converges to softmax attention as features grow, features
are redrawn in training and fixed in eval, step equals forward, causal, padding-invariant, and
it trains a step through train(). CPU, float64 math, ~3 s."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, train_checked

from s4lab.models.functional_attention import (
    favor_features_ref,
    orthogonal_gaussian,
    softmax_attention_ref,
)
from s4lab.models.performer import Performer

B, L, H, HEADS = 2, 16, 8, 2


def make_layer(causal: bool, n_features: int = 32, **kwargs) -> Performer:
    torch.manual_seed(0)
    return Performer(H, n_heads=HEADS, n_features=n_features, causal=causal, **kwargs).double()


def randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_output_shape():
    assert make_layer(True)(randn(B, L, H)).shape == (B, L, H)


def test_orthogonal_features():
    """Rows within a block of d are orthogonal; lengths are chi(d), not all equal to one."""
    W = orthogonal_gaussian(40, 16, torch.Generator().manual_seed(0)).double()
    gram = W[:16] @ W[:16].T
    torch.testing.assert_close(gram, torch.diag(gram.diag()), atol=1e-5, rtol=0)
    assert W.shape == (40, 16) and W.norm(dim=-1).std() > 0.1


def test_positive_features_are_unbiased_for_exp():
    """E_w[φ(q)·φ(k)] = exp(q·k): the Monte Carlo mean over many features lands on it."""
    g = torch.Generator().manual_seed(0)
    q, k = 0.5 * randn(4), 0.5 * randn(4, seed=2)
    W = torch.randn(200_000, 4, generator=g, dtype=torch.float64)
    estimate = favor_features_ref(q, W) @ favor_features_ref(k, W)
    torch.testing.assert_close(estimate, torch.exp(q @ k), rtol=0.02, atol=0)


@pytest.mark.parametrize("causal", [True, False])
def test_estimate_converges_to_softmax_attention(causal):
    d, n = 16, 24
    q, k = 0.5 * randn(2, 1, n, d, seed=1), 0.5 * randn(2, 1, n, d, seed=2)  # scores std ~1
    v = randn(2, 1, n, d, seed=3)
    mask = None if causal else torch.arange(n) < torch.tensor([n, 17])[:, None]
    exact = softmax_attention_ref(q, k, v, key_mask=mask, causal=causal)
    scale = d**-0.25  # the layer's q', k'
    errors = []
    for m in (16, 64, 256, 1024):
        trials = []
        for seed in range(8):
            torch.manual_seed(seed)
            layer = Performer(d, n_heads=1, n_features=m, causal=causal).double()
            estimate = layer.attention(q * scale, k * scale, v, mask)
            trials.append((estimate - exact).abs().mean())
        errors.append(float(torch.stack(trials).mean()))
    print(f"causal={causal} mean |FAVOR+ - softmax| for m = 16, 64, 256, 1024: {errors}")
    falls = [b < 1.1 * a for a, b in zip(errors, errors[1:], strict=False)]
    assert all(falls), errors  # falls with m (10% slack)
    assert errors[-1] < errors[0] / 3, errors  # measured ~4x (0.066 -> 0.016 causal)


def test_redraw_in_training_only():
    layer = make_layer(True, redraw_interval=2)
    x = randn(B, L, H)
    W0 = layer.W.clone()
    layer.train()
    layer(x)
    layer(x)
    assert torch.equal(layer.W, W0)  # calls 1..interval use the first draw
    layer(x)
    W1 = layer.W.clone()
    assert not torch.equal(W1, W0)  # call interval + 1 redraws
    layer.eval()
    for _ in range(5):
        layer(x)
    assert torch.equal(layer.W, W1)  # eval never redraws
    fixed = make_layer(True, redraw_interval=None).train()
    W_fixed = fixed.W.clone()
    for _ in range(3):
        fixed(x)
    assert torch.equal(fixed.W, W_fixed)


def test_features_travel_in_the_state_dict():
    layer, other = make_layer(True), make_layer(True)
    other.redraw()
    other.load_state_dict(layer.state_dict())
    torch.testing.assert_close(other.eval()(randn(B, L, H)), layer.eval()(randn(B, L, H)))


def test_step_equals_forward():
    layer = make_layer(True).eval()
    x = randn(B, L, H)
    layer.setup_step()
    state = layer.default_state(B)
    ys = []
    for t in range(L):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, dim=1), layer(x), rtol=1e-10, atol=1e-10)


def test_causal():
    layer = make_layer(True).eval()
    x = randn(B, L, H)
    x2 = x.clone()
    x2[:, L // 2 :] = 10 * randn(B, L - L // 2, H, seed=9)  # large: would move any data max
    y, y2 = layer(x), layer(x2)
    torch.testing.assert_close(y[:, : L // 2], y2[:, : L // 2], rtol=0, atol=0)
    assert not torch.allclose(y[:, L // 2 :], y2[:, L // 2 :])


@pytest.mark.parametrize("causal", [True, False])
def test_padding_invariance(causal):
    """Valid outputs are the same padded to L or 2L (junk in the pads) and beside any batch mate."""
    layer = make_layer(causal).eval()
    n = 11
    x = randn(1, n, H)
    alone = layer(x)[0]
    for total in (L, 2 * L):
        batch = 10 * randn(2, total, H, seed=total)  # large junk pads and batch mate
        batch[0, :n] = x[0]
        y = layer(batch, lengths=torch.tensor([n, total]))
        torch.testing.assert_close(y[0, :n], alone, rtol=1e-12, atol=1e-12)


def test_bad_use_is_a_clear_error():
    with pytest.raises(ValueError, match="sees the future"):
        make_layer(False).setup_step()
    with pytest.raises(ValueError, match="rate"):
        make_layer(True)(randn(B, L, H), rate=2.0)
    with pytest.raises(ValueError, match="redraw_interval"):
        Performer(H, n_heads=2, redraw_interval=0)


def test_trains_one_step_through_train(compose_train):
    tiny = [o for o in TINY if not o.startswith("model.layer.")]
    cfg = compose_train(
        *tiny,
        "model/layer=performer",
        "model.layer.n_heads=2",
        "model.layer.n_features=16",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "test=false",
    )
    assert cfg.model.layer._target_ == "s4lab.models.performer.Performer"
    train_checked(cfg)


@pytest.mark.parametrize("causal", [True, False])
def test_bf16_autocast_and_an_empty_sequence_stay_finite(causal):
    """bf16 inputs under autocast (fp32 weights) work; a length-0 row leaves gradients finite."""
    torch.manual_seed(0)
    layer = Performer(d_model=8, n_heads=2, n_features=16, causal=causal)
    x = torch.randn(2, 6, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x.to(torch.bfloat16), torch.tensor([0, 6]))
    y[1].float().sum().backward()
    assert torch.isfinite(y.float()).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)

"""MultiheadAttention and FeedForward: attention equals a plain softmax(QKᵀ/√d)V reference, shape,
causality, padding invariance (pad length, batch mates, empty sequences), KV-cache steps equal
forward, bad input; the FFN is position-wise; each trains one step through train(). CPU, float64."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY, ParameterProbe, train_checked

from s4lab.models.attention import MultiheadAttention
from s4lab.models.backbone import SequenceModel
from s4lab.models.ffn import FeedForward

B, L, H, N_HEADS = 3, 12, 8, 2


def _attention(causal: bool, **kwargs) -> MultiheadAttention:
    torch.manual_seed(0)
    return MultiheadAttention(H, l_max=L, n_heads=N_HEADS, causal=causal, **kwargs).double().eval()


def _x(batch: int = B, length: int = L, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, H, dtype=torch.float64, generator=g)


def attention_ref(
    layer: MultiheadAttention, x: torch.Tensor, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(Q Kᵀ / √d + M) V per head, then W_O, with explicit loops over batch and head."""
    W_Q, W_K, W_V = layer.in_proj.weight.chunk(3)
    b_Q, b_K, b_V = layer.in_proj.bias.chunk(3)
    d = H // N_HEADS
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        n = x.shape[1] if lengths is None else int(lengths[b])
        X = x[b]  # (L, H)
        Q, K, V = X @ W_Q.T + b_Q, X @ W_K.T + b_K, X @ W_V.T + b_V
        heads = []
        for h in range(N_HEADS):
            cols = slice(h * d, (h + 1) * d)
            scores = Q[:, cols] @ K[:, cols].T / math.sqrt(d)  # (L, L)
            allowed = torch.ones_like(scores, dtype=torch.bool)
            if layer.causal:
                allowed = torch.tril(allowed)
            allowed[:, n:] = False  # pad keys
            scores = scores.masked_fill(~allowed, -math.inf)
            heads.append(torch.softmax(scores, dim=-1) @ V[:, cols])
        out[b] = layer.out_proj(torch.cat(heads, dim=-1))
    return out


@pytest.mark.parametrize("causal", [True, False])
def test_equals_softmax_reference(causal):
    layer = _attention(causal)
    x = _x()
    torch.testing.assert_close(layer(x), attention_ref(layer, x), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
def test_equals_reference_with_padding(causal):
    layer = _attention(causal)
    x, lengths = _x(), torch.tensor([L, 7, 1])
    y, y_ref = layer(x, lengths), attention_ref(layer, x, lengths)
    for b, n in enumerate(lengths.tolist()):  # pad outputs are not specified
        torch.testing.assert_close(y[b, :n], y_ref[b, :n], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
def test_output_shape(causal):
    layer = MultiheadAttention(H, n_heads=N_HEADS, causal=causal)
    assert layer(torch.randn(B, L, H)).shape == (B, L, H)
    assert layer(torch.randn(B, L, H), torch.tensor([L, 3, 5])).shape == (B, L, H)


def test_causal():
    layer, x = _attention(causal=True), _x()
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0
    y, y2 = layer(x), layer(x2)
    torch.testing.assert_close(y[:, : L // 2], y2[:, : L // 2], atol=0, rtol=0)
    assert not torch.allclose(y[:, L // 2 :], y2[:, L // 2 :])


def test_bidirectional_sees_the_future():
    layer, x = _attention(causal=False), _x()
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0
    assert not torch.allclose(layer(x)[:, : L // 2], layer(x2)[:, : L // 2])


@pytest.mark.parametrize("causal", [True, False])
def test_padding_invariance(causal):
    """Valid outputs are equal padded to L or 2L (garbage pads), and alone or with batch mates."""
    layer = _attention(causal)
    x, lengths = _x(), torch.tensor([L, 7, 1])
    y = layer(x, lengths)
    x_long = torch.cat([x, 100 * _x(seed=2)], dim=1)  # (B, 2L, H), pads far from the data
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = -50.0  # other garbage in the pads of the length-L batch
    y_pads = layer(x, lengths)
    y_long = layer(x_long, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(y_pads[b, :n], y[b, :n], atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(y_long[b, :n], y[b, :n], atol=1e-12, rtol=1e-10)
        alone = layer(x[b : b + 1, :n])  # no padding, no batch mates
        torch.testing.assert_close(y[b, :n], alone[0], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
def test_empty_sequence_gives_finite_outputs(causal):
    """An empty sequence masks every key: its outputs and all gradients stay finite. (torch 2.14's
    CPU kernel returns 0 for such rows itself; GPU kernels have returned NaN, hence the layer's
    guard.)"""
    layer = _attention(causal).train()
    x = _x().requires_grad_()
    y = layer(x, torch.tensor([0, 5, L]))
    assert torch.isfinite(y).all()
    y[1:].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_kv_cache_step_equals_forward():
    layer, x = _attention(causal=True), _x()
    y = layer(x)
    layer.setup_step()
    state = layer.default_state(B)
    assert [t.shape for t in state] == [(B, N_HEADS, 0, H // N_HEADS)] * 2  # empty cache
    ys = []
    for t in range(L):
        y_t, state = layer.step(x[:, t], state)
        assert state[0].shape[2] == state[1].shape[2] == t + 1  # one key and value per token
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, atol=1e-10, rtol=1e-10)


def test_backbone_steps_with_kv_caches():
    """Two attention blocks and an FFN block inside SequenceModel: its step() threads the caches."""
    torch.manual_seed(0)
    layers = iter([MultiheadAttention, FeedForward, MultiheadAttention])

    def layer(d_model: int, l_max: int | None) -> torch.nn.Module:
        cls = next(layers)
        kwargs = {"n_heads": N_HEADS} if cls is MultiheadAttention else {}
        return cls(d_model, l_max, **kwargs)

    model = SequenceModel(d_input=3, layer=layer, d_model=H, n_layers=3).double().eval()
    x = torch.randn(B, L, 3, dtype=torch.float64)
    y = model(x)
    model.setup_step()
    state = model.default_state(B)
    ys = []
    for t in range(L):
        y_t, state = model.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, atol=1e-10, rtol=1e-10)


def test_bidirectional_has_no_step():
    layer = _attention(causal=False)
    for call in (layer.setup_step, lambda: layer.default_state(B)):
        with pytest.raises(ValueError, match="bidirectional.*no recurrent mode"):
            call()


def test_bad_input():
    with pytest.raises(ValueError, match="n_heads=3 must divide d_model=8"):
        MultiheadAttention(H, n_heads=3)
    layer = _attention(causal=False)
    with pytest.raises(ValueError, match=r"expected lengths \(3,\), got \(3, 1\)"):
        layer(_x(), torch.full((B, 1), L))
    with pytest.raises(ValueError, match=r"expected input \(B, L, H=8\)"):
        layer(torch.randn(B, L, H + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="no sampling rate"):
        layer(_x(), rate=2.0)


def test_ffn_is_position_wise():
    """Output at t is the MLP of x_t alone: a permutation of positions permutes outputs; steps."""
    EXACT = {"atol": 1e-14, "rtol": 1e-12}  # float64 up to the order of BLAS sums
    torch.manual_seed(0)
    ffn = FeedForward(H, l_max=L).double().eval()
    x = _x()
    y = ffn(x)
    assert y.shape == (B, L, H) and ffn.linear1.out_features == 4 * H
    perm = torch.randperm(L)
    torch.testing.assert_close(ffn(x[:, perm]), y[:, perm], **EXACT)
    mlp = ffn.linear2(torch.nn.functional.gelu(ffn.linear1(x)))
    torch.testing.assert_close(y, mlp, **EXACT)
    lengths = torch.tensor([L, 7, 1])  # pads and pad length change nothing at valid positions
    y_long = ffn(torch.cat([x, 100 * _x(seed=2)], dim=1), lengths)
    torch.testing.assert_close(y_long[:, :L], y, **EXACT)
    ffn.setup_step()
    state = ffn.default_state(B)
    assert state is None
    steps = [ffn.step(x[:, t], state) for t in range(L)]
    assert all(s is None for _, s in steps)
    torch.testing.assert_close(torch.stack([s for s, _ in steps], dim=1), y, **EXACT)


TRAIN_ONE_STEP = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",  # one optimizer step
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "test=false",
]


@pytest.mark.parametrize(
    ("layer", "target", "extra"),
    [
        ("attention", "s4lab.models.attention.MultiheadAttention", ["model.layer.n_heads=2"]),
        ("ffn", "s4lab.models.ffn.FeedForward", []),
    ],
)
def test_trains_one_step_through_train(compose_train, layer, target, extra):
    tiny = [o for o in TINY if not o.startswith("model.layer.")]  # S4 options: not this layer's
    cfg = compose_train(*tiny, f"model/layer={layer}", *extra, *TRAIN_ONE_STEP)
    assert cfg.model.layer._target_ == target and "kernel" not in cfg.model.layer
    probe = ParameterProbe()
    train_checked(cfg, callbacks=[probe])  # a finite metric; some parameter changed, all finite
    changed = [n for n, p in probe.before.items() if not torch.equal(p, probe.after[n])]
    assert any(".layer." in n for n in changed), changed  # the new layer itself was trained

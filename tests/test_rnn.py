"""LSTM and GRU layers: shape, causality, padding invariance by packing, step == forward, and a
training step through train()."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, train_checked

from s4lab.models.rnn import GRU, LSTM

H, L = 4, 11
LAYERS = [LSTM, GRU]


def build(cls: type) -> LSTM | GRU:
    torch.manual_seed(0)
    return cls(d_model=H).double().eval()


@pytest.mark.parametrize("cls", LAYERS)
def test_output_shape_and_rate(cls):
    m = build(cls)
    assert m(torch.randn(2, L, H, dtype=torch.float64)).shape == (2, L, H)
    with pytest.raises(ValueError, match="rate"):
        m(torch.randn(2, L, H, dtype=torch.float64), rate=2.0)
    with pytest.raises(ValueError, match="expected input"):
        m(torch.randn(2, L, H + 1, dtype=torch.float64))


@pytest.mark.parametrize("cls", LAYERS)
def test_step_equals_forward(cls):
    m = build(cls)
    x = torch.randn(3, L, H, dtype=torch.float64)
    y = m(x)
    m.setup_step()
    state, ys = m.default_state(3), []
    for t in range(L):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", LAYERS)
def test_causal(cls):
    m = build(cls)
    x = torch.randn(2, L, H, dtype=torch.float64)
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0
    torch.testing.assert_close(m(x2)[:, : L // 2], m(x)[:, : L // 2], rtol=0, atol=0)


@pytest.mark.parametrize("cls", LAYERS)
def test_padding_invariance(cls):
    m = build(cls)
    lengths = torch.tensor([L, 5])
    x = torch.randn(2, L, H, dtype=torch.float64)
    y = m(x, lengths)
    x2 = torch.cat([x, 1e3 * torch.randn_like(x)], dim=1)  # padded to 2L with junk
    x2[1, 5:] = 1e3
    y2 = m(x2, lengths)
    torch.testing.assert_close(y2[0, :L], y[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(y2[1, :5], y[1, :5], rtol=0, atol=1e-12)
    assert (y2[1, 5:] == 0).all() and (y2[0, L:] == 0).all()  # pad outputs are zero
    alone = m(x[1:, :5])  # without its batch mate, unpadded
    torch.testing.assert_close(y[1, :5], alone[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_trains_one_step_through_train(compose_train, name):
    tiny = [o for o in TINY if not o.startswith("model.layer.")]
    cfg = compose_train(
        *tiny,
        f"model/layer={name}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "test=false",
    )
    assert cfg.model.layer._target_ == f"s4lab.models.rnn.{name.upper()}"
    train_checked(cfg)

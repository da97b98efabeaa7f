"""SequenceModel: pooling respects lengths, recurrent steps reproduce forward(), options build."""

from __future__ import annotations

import pytest
import torch

from s4lab.models.backbone import ResidualBlock, SequenceModel
from s4lab.models.block import S4Block

B, L, H = 3, 12, 8


def s4d_layer(d_model: int, l_max: int) -> S4Block:
    return S4Block(d_model, d_state=4, l_max=l_max, mode="s4d")


def s4_layer(d_model: int, l_max: int) -> S4Block:
    return S4Block(d_model, d_state=4, l_max=l_max, mode="s4")


def make(**kwargs) -> SequenceModel:
    torch.manual_seed(0)
    defaults = dict(d_input=2, d_output=5, layer=s4d_layer, l_max=L, d_model=H, n_layers=2)
    return SequenceModel(**(defaults | kwargs)).eval()


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_pool_over_valid_positions_ignores_padding(pool: str):
    """A causal stack pooled over the first n steps equals the model run on those n steps only."""
    model = make(pool=pool)
    x = torch.randn(B, L, 2)
    lengths = torch.tensor([L, 7, 3])
    y = model(x, lengths=lengths)  # (B, d_output)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(y[b], model(x[b : b + 1, :n])[0], rtol=1e-4, atol=1e-5)


def test_pool_none_keeps_positions_and_embedding_encoder():
    model = make(pool="none", vocab_size=11)
    y = model(torch.randint(0, 11, (B, L)))
    assert y.shape == (B, L, 5)
    assert isinstance(model.encoder, torch.nn.Embedding)


@pytest.mark.parametrize(
    "layer,norm,prenorm",
    [(s4d_layer, "layer", True), (s4d_layer, "layer", False), (s4d_layer, "batch", True)]
    + [(s4_layer, "layer", True)],
)
def test_step_matches_forward(layer, norm: str, prenorm: bool):
    model = make(layer=layer, pool="none", norm=norm, prenorm=prenorm).double()
    x = torch.randn(B, L, 2, dtype=torch.float64)
    y = model(x)  # (B, L, d_output)
    model.setup_step()
    state = model.default_state(B)
    steps = []
    for t in range(L):
        y_t, state = model.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, dim=1), y, rtol=1e-6, atol=1e-6)


def test_bad_options_name_the_choices():
    with pytest.raises(ValueError, match="'mean', 'last' or 'none'"):
        make(pool="max")
    with pytest.raises(ValueError, match="'layer' or 'batch'"):
        make(norm="group")


class _Ones(torch.nn.Module):
    def forward(self, x: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        return torch.ones_like(x)


def test_residual_dropout_is_tied_over_the_sequence():
    block = ResidualBlock(_Ones(), d_model=16, norm="layer", prenorm=True, dropout=0.5).train()
    x = torch.zeros(4, 30, 16)
    kept = block(x)  # (B, L, H): 0 where dropped, 2 where kept
    assert ((kept == 0) | (kept == 2)).all()
    assert (kept == kept[:, :1]).all()  # one mask per (example, channel), the same at every step
    assert (kept == 0).any() and (kept == 2).any()

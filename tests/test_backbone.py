"""SequenceModel: returns features (B, L, H), passes lengths and rate to every layer, recurrent
steps reproduce forward(), options fail by name, residual dropout is tied over the sequence."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import Tensor, nn

from s4lab.models.attention import MultiheadAttention
from s4lab.models.backbone import ResidualBlock, SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.ffn import FeedForward
from s4lab.models.positional import LearnedPositions, SinusoidalPositions, sinusoidal_positions
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel

B, L, H = 3, 12, 8
s4d_layer = functools.partial(S4Block, kernel=functools.partial(S4DKernel, d_state=4))
s4_layer = functools.partial(S4Block, kernel=functools.partial(S4Kernel, d_state=4))


def make(**kwargs) -> SequenceModel:
    torch.manual_seed(0)
    defaults = dict(d_input=2, layer=s4d_layer, l_max=L, d_model=H, n_layers=2)
    return SequenceModel(**(defaults | kwargs)).eval()


def test_returns_features_and_embeds_tokens():
    model = make()
    assert model(torch.randn(B, L, 2)).shape == (B, L, H)
    assert model.d_model == H
    tokens = make(vocab_size=11)
    assert isinstance(tokens.encoder, nn.Embedding)
    assert tokens(torch.randint(0, 11, (B, L))).shape == (B, L, H)
    assert not hasattr(model, "decoder")  # decoding belongs to the task's head


class _Recorder(nn.Module):
    """A layer that records what the backbone passes to it."""

    def __init__(self, d_model: int, l_max: int | None = None) -> None:
        super().__init__()
        self.d_model, self.l_max, self.calls = d_model, l_max, []

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        self.calls.append((lengths, rate))
        return x


def test_every_layer_gets_lengths_and_rate():
    model = make(layer=_Recorder, n_layers=3)
    lengths = torch.tensor([L, 5, 1])
    model(torch.randn(B, L, 2), lengths=lengths, rate=2.0)
    for block in model.blocks:
        assert block.layer.l_max == L and block.layer.d_model == H
        assert len(block.layer.calls) == 1
        got_lengths, rate = block.layer.calls[0]
        assert got_lengths is lengths and rate == 2.0


@pytest.mark.parametrize(
    "layer,norm,prenorm",
    [(s4d_layer, "layer", True), (s4d_layer, "layer", False), (s4d_layer, "batch", True)]
    + [(s4d_layer, "batch", False), (s4_layer, "layer", True)],
)
def test_step_matches_forward(layer, norm: str, prenorm: bool):
    model = make(layer=layer, norm=norm, prenorm=prenorm).double()
    x = torch.randn(B, L, 2, dtype=torch.float64)
    y = model(x)  # (B, L, H)
    model.setup_step()
    state = model.default_state(B)
    steps = []
    for t in range(L):
        y_t, state = model.step(x[:, t], state)  # (B, H)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, dim=1), y, rtol=1e-6, atol=1e-6)


def test_bad_norm_names_the_choices():
    with pytest.raises(ValueError, match="'layer' or 'batch'"):
        make(norm="group")


class _Ones(nn.Module):
    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        return torch.ones_like(x)


def test_residual_dropout_is_tied_over_the_sequence():
    block = ResidualBlock(_Ones(), d_model=16, norm="layer", prenorm=True, dropout=0.5).train()
    x = torch.zeros(4, 30, 16)
    kept = block(x)  # (B, L, H): 0 where dropped, 2 where kept
    assert ((kept == 0) | (kept == 2)).all()
    assert (kept == kept[:, :1]).all()  # one mask per (example, channel), the same at every step
    assert (kept == 0).any() and (kept == 2).any()


def test_a_block_is_a_list_of_residual_layers_repeated_n_layers_times():
    block = {"s4_1": s4d_layer, "s4_2": s4d_layer, "ffn": FeedForward}
    model = make(layer=block, n_layers=3)
    assert model.block_names == ["s4_1", "s4_2", "ffn"]
    kinds = [type(b.layer) for b in model.blocks]
    assert kinds == [S4Block, S4Block, FeedForward] * 3  # in order, n_layers times
    norms = {id(b.norm) for b in model.blocks}
    assert len(norms) == 9  # every layer has its own norm and residual
    assert model(torch.randn(B, L, 2)).shape == (B, L, H)


def test_block_step_matches_forward_with_positions():
    """Causal Transformer block with sinusoidal positions: steps at t = 0, 1, ... equal forward."""
    block = {"attention": functools.partial(MultiheadAttention, n_heads=2), "ffn": FeedForward}
    model = make(layer=block, position=SinusoidalPositions).double()
    x = torch.randn(B, L, 2, dtype=torch.float64)
    y = model(x)
    model.setup_step()
    state = model.default_state(B)
    steps = []
    for t in range(L):
        y_t, state = model.step(x[:, t], state)
        steps.append(y_t)
    assert state[0] == L  # the stack counts its steps for the positions
    torch.testing.assert_close(torch.stack(steps, dim=1), y, rtol=1e-9, atol=1e-9)


def test_a_block_entry_that_is_not_a_layer_is_named():
    with pytest.raises(TypeError, match=r"model\.layer\.ffn is not a layer"):
        make(layer={"s4": s4d_layer, "ffn": "FeedForward"})
    with pytest.raises(ValueError, match="empty block"):
        make(layer={})


def test_a_layer_without_recurrent_mode_asked_to_step_fails_by_name():
    model = make(layer=_Recorder)
    with pytest.raises(ValueError, match="_Recorder has no recurrent mode"):
        model.setup_step()
    bidirectional = make(layer=functools.partial(MultiheadAttention, n_heads=2, causal=False))
    with pytest.raises(ValueError, match="bidirectional|causal"):
        bidirectional.setup_step()


def test_untied_residual_dropout_is_elementwise():
    block = ResidualBlock(
        _Ones(), d_model=16, norm="layer", prenorm=True, dropout=0.5, tie_dropout=False
    ).train()
    kept = block(torch.zeros(4, 30, 16))
    assert ((kept == 0) | (kept == 2)).all()
    assert not (kept == kept[:, :1]).all()  # masks differ along the sequence


def test_embedding_component_builds_the_token_encoder():
    built = []

    def embedding(vocab_size: int, d_model: int) -> nn.Module:
        built.append((vocab_size, d_model))
        return nn.Embedding(vocab_size, d_model)

    make(vocab_size=11, embedding=embedding)
    assert built == [(11, H)]
    with pytest.raises(ValueError, match="model.embedding needs token inputs"):
        make(embedding=embedding)


def test_sinusoidal_positions_follow_the_formula():
    PE = sinusoidal_positions(5, 6, offset=3)  # (L, H)
    t, i = 3 + torch.arange(5.0)[:, None], torch.arange(3.0)
    angle = t / 10000 ** (2 * i / 6)
    torch.testing.assert_close(PE[:, 0::2], angle.sin())
    torch.testing.assert_close(PE[:, 1::2], angle.cos())
    with pytest.raises(ValueError, match="even d_model"):
        SinusoidalPositions(d_model=5)


def test_learned_positions_need_and_respect_l_max():
    with pytest.raises(ValueError, match="need the data's l_max"):
        LearnedPositions(d_model=4)
    positions = LearnedPositions(d_model=4, l_max=6)
    x = torch.zeros(2, 4, 4)
    torch.testing.assert_close(positions(x, offset=2), positions.PE[2:6].expand(2, 4, 4))
    with pytest.raises(ValueError, match="past l_max=6"):
        positions(x, offset=3)

"""Parameter groups follow the `_optim` hints; schedules have the documented shape."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.optim import constant_warmup, cosine_warmup, param_groups, print_param_groups


def tiny_model(vocab_size: int | None = None) -> SequenceModel:
    def layer(d_model: int, l_max: int) -> S4Block:
        return S4Block(d_model, d_state=4, l_max=l_max, mode="s4d", lr=1e-3)

    return SequenceModel(3, 2, layer, l_max=16, vocab_size=vocab_size, d_model=8, n_layers=2)


def group_of(optimizer: torch.optim.Optimizer, param: nn.Parameter) -> dict:
    return next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))


def test_ssm_params_get_own_lr_and_no_weight_decay(capsys):
    model = tiny_model()
    optimizer = torch.optim.AdamW(param_groups(model), lr=0.01, weight_decay=0.05)
    ssm = [p for p in model.parameters() if hasattr(p, "_optim")]
    assert ssm, "S4Block should tag its SSM parameters with _optim"
    for p in ssm:
        group = group_of(optimizer, p)
        assert group["lr"] == 1e-3 and group["weight_decay"] == 0.0
    linear = model.blocks[0].layer.output[0]
    assert group_of(optimizer, linear.weight)["weight_decay"] == 0.05
    assert group_of(optimizer, linear.weight)["lr"] == 0.01
    assert group_of(optimizer, linear.bias)["weight_decay"] == 0.0
    assert group_of(optimizer, model.blocks[0].norm.norm.weight)["weight_decay"] == 0.0
    # every trainable parameter lands in exactly one group
    grouped = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    print_param_groups(optimizer)
    assert "0.001" in capsys.readouterr().out


def test_embedding_has_no_weight_decay():
    model = tiny_model(vocab_size=10)
    optimizer = torch.optim.AdamW(param_groups(model), lr=0.01, weight_decay=0.05)
    assert group_of(optimizer, model.encoder.weight)["weight_decay"] == 0.0


def lrs(scheduler, optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_cosine_warmup_shape():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    values = lrs(cosine_warmup(optimizer, num_warmup_steps=4, num_training_steps=12), optimizer, 12)
    assert values[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert values[8] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))  # midway: 0.5
    assert values[-1] < 0.05
    values = lrs(cosine_warmup(optimizer, num_warmup_steps=4, num_training_steps=12), optimizer, 20)
    assert values[12:] == [0.0] * 8  # past T the rate stays at 0 (a plain cosine climbs back)


def test_constant_warmup_shape():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    values = lrs(constant_warmup(optimizer, num_warmup_steps=2), optimizer, 5)
    assert values == pytest.approx([1.0, 2.0, 2.0, 2.0, 2.0])


def test_cosine_warmup_shortens_a_warmup_longer_than_the_run():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.warns(UserWarning, match="warming up over 9 steps instead"):
        scheduler = cosine_warmup(optimizer, num_warmup_steps=1080, num_training_steps=10)
    values = lrs(scheduler, optimizer, 10)
    assert values[:9] == pytest.approx([(t + 1) / 9 for t in range(9)])
    assert values[9] == pytest.approx(1.0)  # the single cosine step starts at the peak

"""A sequence layer defined only here plugs into the backbone by config alone and trains a step
through `s4lab.train.train` (via conftest.train_checked).

The layer's YAML lives in a config directory this test writes and adds to Hydra's search path,
as a user's own package would: `model/layer=stand_in` replaces S4Block, nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import TINY, train_checked
from torch import Tensor, nn


class StandInLayer(nn.Module):
    """Causal running mean over valid steps, then a linear map: (B, L, H) -> (B, L, H).

    Every instance is recorded with a copy of its initial weights, so the test can see that the
    backbone built it and the optimizer trained it.
    """

    built: list[tuple[StandInLayer, Tensor]] = []

    def __init__(self, d_model: int, l_max: int | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.linear = nn.Linear(d_model, d_model)
        StandInLayer.built.append((self, self.linear.weight.detach().clone()))

    def forward(self, x: Tensor, lengths: Tensor | None = None, rate: float = 1.0) -> Tensor:
        if lengths is not None:  # suffix padding: pads must not reach valid steps
            x = x * (torch.arange(x.shape[1], device=x.device) < lengths[:, None])[..., None]
        steps = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)
        return self.linear(self.scale * x.cumsum(dim=1) / steps[:, None])


def write_layer_config(root: Path) -> Path:
    """configs/model/layer/stand_in.yaml under `root`, pointing at StandInLayer."""
    path = root / "model" / "layer" / "stand_in.yaml"
    path.parent.mkdir(parents=True)
    target = f"{StandInLayer.__module__}.{StandInLayer.__qualname__}"
    path.write_text(f"_target_: {target}\n_partial_: true\nscale: 1.0\n")
    return root


def test_stand_in_layer_trains_one_step_through_train(compose_train, tmp_path):
    search_path = write_layer_config(tmp_path / "plugin_configs")
    tiny = [o for o in TINY if not o.startswith("model.layer.")]  # S4 options: not this layer's
    cfg = compose_train(
        *tiny,
        f"hydra.searchpath=[file://{search_path}]",
        "model/layer=stand_in",
        "model.layer.scale=0.5",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",  # one optimizer step
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "test=false",
    )
    assert cfg.model.layer._target_.endswith("StandInLayer") and "kernel" not in cfg.model.layer
    StandInLayer.built.clear()
    train_checked(cfg)  # a finite monitored metric; some parameter changed, all finite
    trained = StandInLayer.built[: cfg.model.n_layers]  # the fitted model's layers come first
    assert len(trained) == cfg.model.n_layers
    for layer, initial in trained:
        assert layer.scale == 0.5
        assert torch.isfinite(layer.linear.weight).all()
        assert not torch.equal(layer.linear.weight.detach().cpu(), initial)  # one step trained it

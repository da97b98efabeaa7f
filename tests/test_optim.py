"""Parameter groups follow the `_optim` hints; schedules give the lr their formulas say.

Schedules are built from configs/scheduler/*.yaml and run through a real Lightning Trainer on a
one-weight task whose configure_optimizers is ours (s4lab.optim.optimizer_config). CPU, ~3 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.s4d import S4DKernel
from s4lab.optim import (
    ConstantWarmup,
    CosineWarmup,
    RsqrtWarmup,
    optimizer_config,
    param_groups,
    print_param_groups,
)

LR = 0.1


def tiny_model(vocab_size: int | None = None) -> SequenceModel:
    layer = partial(S4Block, kernel=partial(S4DKernel, d_state=4, lr=1e-3))
    return SequenceModel(3, layer, l_max=16, vocab_size=vocab_size, d_model=8, n_layers=2)


def group_of(optimizer: torch.optim.Optimizer, param: nn.Parameter) -> dict:
    return next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))


def test_hints_win_and_norms_biases_embeddings_skip_weight_decay():
    model = nn.ModuleDict(
        {"linear": nn.Linear(2, 2), "norm": nn.LayerNorm(2), "embedding": nn.Embedding(3, 2)}
    )
    model.register_parameter("A", nn.Parameter(torch.zeros(2)))
    model.A._optim = {"lr": 1e-3, "weight_decay": 0.0}
    optimizer = torch.optim.AdamW(param_groups(model), lr=0.01, weight_decay=0.05)
    assert group_of(optimizer, model.A)["lr"] == 1e-3
    assert group_of(optimizer, model.A)["weight_decay"] == 0.0
    assert group_of(optimizer, model.linear.weight)["weight_decay"] == 0.05
    assert group_of(optimizer, model.linear.weight)["lr"] == 0.01
    for p in (model.linear.bias, model.norm.weight, model.norm.bias, model.embedding.weight):
        assert group_of(optimizer, p)["weight_decay"] == 0.0
        assert group_of(optimizer, p)["lr"] == 0.01


def test_s4_model_groups_follow_the_kernel_hints(capsys):
    model = tiny_model(vocab_size=10)
    optimizer = torch.optim.AdamW(param_groups(model), lr=0.01, weight_decay=0.05)
    tagged = [p for p in model.parameters() if hasattr(p, "_optim")]
    assert tagged, "the kernel should tag its SSM parameters with _optim"
    for p in tagged:
        group = group_of(optimizer, p)
        assert {k: group[k] for k in p._optim} == p._optim
    assert {group_of(optimizer, p)["lr"] for p in tagged} == {1e-3}  # the kernel's lr
    assert group_of(optimizer, model.encoder.weight)["weight_decay"] == 0.0
    # every trainable parameter lands in exactly one group
    grouped = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    print_param_groups(optimizer)
    assert "0.001" in capsys.readouterr().out


def cosine_table(W: int, T: int, steps: int) -> list[float]:
    """The cosine_warmup lr at steps 0..steps-1, straight from the formula (0 from T on)."""
    return [
        LR * t / W if t < W else LR * 0.5 * (1 + math.cos(math.pi * (min(t, T) - W) / (T - W)))
        for t in range(steps)
    ]


def schedule_from_config(*overrides: str) -> Any:
    """Instantiate configs/scheduler/<name>.yaml alone (`mode` stands in for the root key)."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../configs"):
        cfg = compose(overrides=["+mode=min", *overrides])
    return instantiate(cfg.scheduler)


def lrs(scheduler: Any, optimizer: torch.optim.Optimizer, steps: int) -> list[list[float]]:
    """The lr of every group at each of `steps` optimizer steps."""
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def two_groups() -> torch.optim.Optimizer:
    """A default group at LR and an SSM-like group at LR / 100: the schedule scales both."""
    default, ssm = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([{"params": [default]}, {"params": [ssm], "lr": LR / 100}], lr=LR)


def test_cosine_warmup_values_over_the_run():
    W, T = 4, 12
    optimizer = two_groups()
    schedule = schedule_from_config("+scheduler=cosine_warmup", f"scheduler.num_warmup_steps={W}")
    assert isinstance(schedule, CosineWarmup) and schedule.num_training_steps is None
    got = lrs(schedule(optimizer, num_steps=T), optimizer, T)  # null: T = the run's steps
    expected = cosine_table(W, T, T)
    assert expected[:5] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1], abs=1e-15)
    assert [g[0] for g in got] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert [g[1] for g in got] == pytest.approx([e / 100 for e in expected], rel=1e-12, abs=1e-17)


def test_cosine_warmup_stays_at_zero_after_an_explicit_T():
    optimizer = two_groups()
    schedule = CosineWarmup(num_warmup_steps=4, num_training_steps=12)
    got = [g[0] for g in lrs(schedule(optimizer, num_steps=20), optimizer, 20)]
    assert got == pytest.approx(cosine_table(4, 12, 20), rel=1e-12, abs=1e-15)
    assert got[12:] == [0.0] * 8  # the official (transformers) cosine would climb back here


def test_constant_warmup_values():
    optimizer = two_groups()
    schedule = schedule_from_config("+scheduler=constant_warmup", "scheduler.num_warmup_steps=4")
    got = [g[0] for g in lrs(schedule(optimizer, num_steps=8), optimizer, 8)]
    assert got == pytest.approx([LR * t / 4 for t in range(4)] + [LR] * 4, rel=1e-12)


@pytest.mark.parametrize("schedule", [CosineWarmup(1080), ConstantWarmup(1080)])
def test_warmup_shortens_when_the_run_is_shorter(schedule):
    """debug=fdr/limit runs of an experiment with a long warmup still reach the full lr."""
    optimizer = two_groups()
    with pytest.warns(UserWarning, match="the run has 10 optimizer steps.*over 9 steps instead"):
        scheduler = schedule(optimizer, num_steps=10)
    got = [g[0] for g in lrs(scheduler, optimizer, 10)]
    assert got == pytest.approx([LR * t / 9 for t in range(10)], rel=1e-12)  # peak at the end


def test_a_one_step_run_trains_at_the_full_lr():
    optimizer = two_groups()
    with pytest.warns(UserWarning, match="over 0 steps"):
        scheduler = CosineWarmup(num_warmup_steps=100)(optimizer, num_steps=1)
    assert lrs(scheduler, optimizer, 1) == [[LR, LR / 100]]


def test_bad_schedule_lengths_name_the_keys():
    with pytest.raises(ValueError, match=r"num_training_steps \(10\) must be larger.*\(10\)"):
        CosineWarmup(num_warmup_steps=10, num_training_steps=10)
    with pytest.raises(ValueError, match="num_warmup_steps must be >= 0"):
        ConstantWarmup(num_warmup_steps=-1)
    with pytest.raises(ValueError, match="null .*the run has inf optimizer steps"):
        CosineWarmup()(two_groups(), num_steps=math.inf)  # max_epochs=-1 and no max_steps


class OneWeight(LightningModule):
    """w x → loss w² x²; logs `val/loss` from a fixed list, one value per epoch."""

    def __init__(self, scheduler: Callable[..., Any], val_losses: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.scheduler, self.val_losses = scheduler, val_losses

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return (self.w * batch[0]).pow(2).mean()

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.val_losses[self.current_epoch])

    def configure_optimizers(self) -> Any:
        return optimizer_config(self, partial(torch.optim.SGD, lr=LR), self.scheduler, "val/loss")


class RecordLR(Callback):
    """The lr the optimizer has at each optimizer step and at each epoch start."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.epochs: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps.append(optimizer.param_groups[0]["lr"])

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epochs.append(trainer.optimizers[0].param_groups[0]["lr"])


def fit(module: LightningModule, max_epochs: int, **trainer_args: Any) -> RecordLR:
    data = DataLoader(TensorDataset(torch.linspace(0.1, 1, 8)), batch_size=1)  # 8 batches
    record = RecordLR()
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        callbacks=[record],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_args,
    )
    trainer.fit(module, train_dataloaders=data, val_dataloaders=DataLoader(data.dataset))
    return record


@pytest.mark.parametrize("accumulate", [1, 2])
def test_whole_run_cosine_counts_optimizer_steps(accumulate):
    """16 batches in 2 epochs: T = 16 optimizer steps, T = 8 with accumulate_grad_batches=2."""
    schedule = schedule_from_config("+scheduler=cosine_warmup", "scheduler.num_warmup_steps=2")
    record = fit(OneWeight(schedule, [0.0, 0.0]), max_epochs=2, accumulate_grad_batches=accumulate)
    T = 16 // accumulate
    assert record.steps == pytest.approx(cosine_table(2, T, T), rel=1e-12, abs=1e-15)


def test_plateau_with_patience_0_drops_after_one_flat_epoch():
    """val/loss 3, 2, 2, 1, 1: the lr drops by `factor` after each epoch that did not improve."""
    factor = 0.5
    schedule = schedule_from_config(
        "+scheduler=plateau", "scheduler.patience=0", f"scheduler.factor={factor}"
    )
    record = fit(OneWeight(schedule, [3.0, 2.0, 2.0, 1.0, 1.0, 1.0]), max_epochs=6)
    expected = [LR, LR, LR, LR * factor, LR * factor, LR * factor**2]
    assert record.epochs == pytest.approx(expected, rel=1e-12)


def test_rsqrt_warmup_is_lra_constant_linear_warmup_rsqrt_decay():
    """lr(t) = base·min(1, t/W)/√max(t, W) with base = lr·√W (google-research/long-range-arena)."""
    W, lr = 4, 0.5
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = RsqrtWarmup(num_warmup_steps=W)(optimizer, num_steps=20)
    base = lr * math.sqrt(W)
    for t in range(20):
        expected = base * min(1.0, t / W) / math.sqrt(max(t, W))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected)
        optimizer.step()
        scheduler.step()


def test_rsqrt_warmup_keeps_its_warmup_in_a_shorter_run():
    """LRA's AAN: 5,000 steps of an 8,000-step warmup end at lr·4999/8000, not at the full lr."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = RsqrtWarmup(num_warmup_steps=8)(optimizer, num_steps=5)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(4 / 8)

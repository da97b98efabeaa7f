"""Tasks build backbone + head from the data sizes, compute their metrics as documented (ppl/bpb,
original-scale errors, half-rate accuracy, document pairs), log each stage's epoch metrics in that
stage's own hook, and store what rebuilds them in the checkpoint. CPU, tiny models."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from pytorch_lightning import LightningDataModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from s4lab.data.base import DataSizes
from s4lab.models.adaptive_input import AdaptiveEmbedding
from s4lab.models.adaptive_softmax import AdaptiveSoftmax
from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.heads import ClassificationHead, LinearHead, RetrievalHead
from s4lab.models.s4d import S4DKernel
from s4lab.tasks.classification import SequenceClassifier
from s4lab.tasks.forecasting import Forecaster
from s4lab.tasks.language_model import LanguageModel
from s4lab.tasks.retrieval import RetrievalClassifier

B, L = 8, 16
ADAMW = functools.partial(torch.optim.AdamW, lr=1e-3)
LAYER = functools.partial(S4Block, kernel=functools.partial(S4DKernel, d_state=4))
MODEL = functools.partial(SequenceModel, layer=LAYER, d_model=8, n_layers=1)


def built(task_cls, sizes: DataSizes, head=LinearHead, model=MODEL, **kwargs):
    """A task with its backbone and head built for `sizes` (what configure_model does)."""
    torch.manual_seed(0)
    task = task_cls(model, head, ADAMW, **kwargs)
    task.build(sizes)
    return task


def tokens(vocab: int) -> DataSizes:
    return DataSizes(d_input=vocab, d_output=vocab, l_max=L, vocab_size=vocab)


def trainer(**kwargs) -> Trainer:
    return Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kwargs,
    )


def validate(task, *tensors: torch.Tensor) -> dict[str, float]:
    loader = DataLoader(TensorDataset(*tensors), batch_size=4)
    return trainer().validate(task, loader, verbose=False)[0]


def test_language_model_ppl_and_bpb():
    task = built(LanguageModel, tokens(7))
    task.setup_data(SimpleNamespace(bytes_per_token=2.0))
    x = torch.randint(0, 7, (B, L))
    out = validate(task, x, x.roll(-1, dims=1))
    assert out["val/ppl"] == pytest.approx(math.exp(out["val/loss"]), rel=1e-5)
    assert out["val/bpb"] == pytest.approx(out["val/loss"] / math.log(2) / 2.0, rel=1e-5)


def test_language_model_without_bytes_logs_no_bpb():
    task = built(LanguageModel, tokens(7))
    task.setup_data(SimpleNamespace())
    x = torch.randint(0, 7, (B, L))
    assert "val/bpb" not in validate(task, x, x)


def test_language_model_scores_only_targeted_positions():
    """Synthetic tasks mark unscored positions -100: ppl and acc count only the others."""
    task = built(LanguageModel, tokens(7))
    x = torch.randint(0, 7, (B, L))
    y = torch.full((B, L), -100)
    y[:, -1] = x[:, -1]  # answer-only targets
    out = validate(task, x, y)
    with torch.no_grad():
        logits = task(x)[:, -1]  # (B, vocab)
    nll = F.cross_entropy(logits, y[:, -1])
    acc = (logits.argmax(-1) == y[:, -1]).float().mean()
    assert out["val/ppl"] == pytest.approx(math.exp(nll), rel=1e-4)
    assert out["val/acc"] == pytest.approx(float(acc), abs=1e-6)


def test_language_model_logs_each_stage_in_its_own_hook():
    """Validation twice per epoch must not cut the train ppl short: it covers the whole epoch.

    lr = 0 keeps the weights fixed, so the expected values follow from one pass over the data.
    """
    task = LanguageModel(MODEL, LinearHead, functools.partial(torch.optim.SGD, lr=0.0))
    torch.manual_seed(0)
    task.build(tokens(7))
    x_train, x_val = torch.randint(0, 7, (B, L)), torch.randint(0, 7, (4, L))
    x_train[:4] = 0  # first half of the epoch: an easy, repetitive batch; second half random
    run = trainer(max_epochs=1, val_check_interval=0.5, num_sanity_val_steps=0)
    run.fit(
        task,
        DataLoader(TensorDataset(x_train, x_train), batch_size=4),
        DataLoader(TensorDataset(x_val, x_val), batch_size=4),
    )
    task.eval()
    with torch.no_grad():
        train_nll = F.cross_entropy(task(x_train).flatten(0, 1), x_train.flatten())
        val_nll = F.cross_entropy(task(x_val).flatten(0, 1), x_val.flatten())
    metrics = run.callback_metrics
    assert float(metrics["train/ppl"]) == pytest.approx(math.exp(train_nll), rel=1e-5)
    assert float(metrics["val/ppl"]) == pytest.approx(math.exp(val_nll), rel=1e-5)


def test_language_model_generation_step_equals_forward():
    task = built(LanguageModel, tokens(7)).double().eval()
    x = torch.randint(0, 7, (2, L))
    logits = task(x)  # (B, L, vocab)
    task.setup_step()
    state = task.default_state(2)
    steps = []
    for t in range(L):
        logits_t, state = task.step(x[:, t], state)  # (B, vocab)
        steps.append(logits_t)
    torch.testing.assert_close(torch.stack(steps, dim=1), logits, rtol=1e-6, atol=1e-6)


ADAPTIVE_MODEL = functools.partial(
    MODEL,
    embedding=functools.partial(AdaptiveEmbedding, cutoffs=[4, 9], div_val=2),
)
ADAPTIVE_HEAD = functools.partial(AdaptiveSoftmax, cutoffs=[4, 9], div_val=2, dropout=0.0)


def test_adaptive_language_model_ties_and_scores_with_the_adaptive_softmax():
    """The head shares E_i and P_i (i >= 1) with the embedding; loss = mean −log p over targets;
    a state dict loads into a freshly built task (tie made in build) and gives the same loss."""
    task = built(LanguageModel, tokens(13), head=ADAPTIVE_HEAD, model=ADAPTIVE_MODEL)
    embedding, head = task.model.encoder, task.head
    assert all(w is e for w, e in zip(head.weights, embedding.weights, strict=True))
    assert head.tail_projs[0] is embedding.projections[1]
    unique = {id(p) for p in task.parameters()}
    assert len(unique) == len(list(task.parameters()))  # each tied tensor counted once
    x = torch.randint(0, 13, (B, L))
    y = x.roll(-1, dims=1)
    y[0, :3] = -100  # unscored positions
    out = validate(task, x, y)
    with torch.no_grad():
        log_p = task(x)  # (B, L, vocab): full log-probabilities
    scored = y != -100
    nll = -log_p[scored].gather(-1, y[scored][:, None]).mean()
    assert out["val/loss"] == pytest.approx(float(nll), rel=1e-5)
    assert out["val/ppl"] == pytest.approx(math.exp(float(nll)), rel=1e-5)
    assert "val/acc" not in out  # no full logits in training: no accuracy
    torch.manual_seed(1)
    fresh = LanguageModel(ADAPTIVE_MODEL, ADAPTIVE_HEAD, ADAMW)
    fresh.build(tokens(13))
    fresh.load_state_dict(task.state_dict())
    assert fresh.head.weights[0] is fresh.model.encoder.weights[0]  # still tied after loading
    assert validate(fresh, x, y)["val/loss"] == pytest.approx(out["val/loss"], rel=1e-6)


def test_adaptive_softmax_needs_the_adaptive_embedding():
    with pytest.raises(ValueError, match="AdaptiveEmbedding"):
        built(LanguageModel, tokens(13), head=ADAPTIVE_HEAD)


def test_forecasting_original_scale():
    """With one target of std 2, errors on the original scale are 4x (MSE) and 2x (MAE)."""
    task = built(Forecaster, DataSizes(d_input=3, d_output=1, l_max=L, vocab_size=None))
    task.setup_data(SimpleNamespace(mean=torch.tensor([10.0]), std=torch.tensor([2.0])))
    x, y = torch.randn(B, L, 3), torch.randn(B, 4, 1)
    out = validate(task, x, y)
    assert out["val/mse_orig"] == pytest.approx(4 * out["val/mse"], rel=1e-5)
    assert out["val/mae_orig"] == pytest.approx(2 * out["val/mae"], rel=1e-5)
    with torch.no_grad():
        mse = F.mse_loss(task(x, 4), y)  # the last `horizon` positions are the forecast
    assert out["val/loss"] == pytest.approx(out["val/mse"], rel=1e-5)
    assert out["val/mse"] == pytest.approx(float(mse), rel=1e-5)


def test_forecasting_norm_last_forecasts_the_change_from_the_last_value():
    """norm="last": a zero head forecasts the last context value of each target series (the
    naive forecast); the backbone sees the context minus it, time features untouched."""
    task = Forecaster(MODEL, LinearHead, ADAMW, norm="last")
    task.build(DataSizes(d_input=4, d_output=1, l_max=L, vocab_size=None))
    # x columns: 3 series (the target is series 2), then 1 time feature
    task.setup_data(SimpleNamespace(mean=0.0, std=1.0, target_columns=[2], d_data=3))
    nn.init.zeros_(task.head.decoder.weight)
    nn.init.zeros_(task.head.decoder.bias)
    seen = []
    task.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    x = torch.randn(B, L, 4)
    x[:, -4:, :3] = 0  # the zeroed future rows of a 4-step horizon
    y_hat = task(x, 4)  # (B, 4, 1)
    last = x[:, L - 5, 2]  # the target's last context value
    torch.testing.assert_close(y_hat, last[:, None, None].expand(B, 4, 1))
    shifted = seen[0]
    torch.testing.assert_close(shifted[:, : L - 4, :3], x[:, : L - 4, :3] - x[:, L - 5 : L - 4, :3])
    torch.testing.assert_close(shifted[:, :, 3], x[:, :, 3])  # time features
    assert (shifted[:, -4:, :3] == 0).all()  # the future reads "no change"
    with pytest.raises(ValueError, match="'none' or 'last'"):
        Forecaster(MODEL, LinearHead, ADAMW, norm="mean")


def test_classification_with_lengths_and_half_rate():
    sizes = DataSizes(d_input=1, d_output=3, l_max=L, vocab_size=None)
    task = built(SequenceClassifier, sizes, head=ClassificationHead, eval_rates=[1, 2])
    x, y = torch.randn(B, L, 1), torch.randint(0, 3, (B,))
    lengths = torch.randint(L // 2, L + 1, (B,))
    lengths[0] = L - 1  # odd: the half-rate sequence keeps ⌈15 / 2⌉ = 8 steps
    out = validate(task, x, y, lengths)
    task.eval()
    with torch.no_grad():
        logits = task(x, lengths)
        logits_2 = task(x[:, ::2], (lengths + 1) // 2, rate=2)
    assert out["val/loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-4)
    assert out["val/acc"] == pytest.approx((logits.argmax(-1) == y).float().mean().item())
    assert out["val/acc_rate2"] == pytest.approx((logits_2.argmax(-1) == y).float().mean().item())
    assert not torch.allclose(logits_2, logits)  # the half-rate pass really ran on other inputs


def test_retrieval_pairs_each_example_with_its_own_documents():
    sizes = DataSizes(d_input=11, d_output=2, l_max=L, vocab_size=11)
    task = built(RetrievalClassifier, sizes, head=RetrievalHead).eval()
    assert not hasattr(task.model, "decoder")  # the head owns the decoder
    x = torch.randint(1, 11, (B, 2, L))
    lengths = torch.randint(L // 2, L + 1, (B, 2))
    batch = task(x, lengths)  # (B, 2)
    single = torch.cat([task(x[i : i + 1], lengths[i : i + 1]) for i in range(B)])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-5)
    swapped = task(x.flip(1), lengths.flip(1))  # the head is not symmetric in (u, v)
    assert not torch.allclose(swapped, batch)
    assert task.subsample(x, 2).shape == (B, 2, L // 2)  # both documents, every second step
    with pytest.raises(ValueError, match=r"\(B, 2, L\)"):
        task(x[:, 0])


class _Data(LightningDataModule):
    """Random classification data that exposes its sizes, as the real datamodules do."""

    def __init__(self, d_output: int = 3) -> None:
        super().__init__()
        self.sizes = DataSizes(d_input=2, d_output=d_output, l_max=L, vocab_size=None)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(B, L, 2, generator=g)
        self.data = TensorDataset(x, torch.randint(0, d_output, (B,), generator=g))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=4)


def test_configure_model_builds_from_the_datamodule_and_checkpoints_the_sizes(tmp_path):
    task = SequenceClassifier(MODEL, ClassificationHead, ADAMW)
    data = _Data()
    task.run_config = {"model": {"d_model": 8}}
    run = trainer(max_steps=1, limit_val_batches=1, num_sanity_val_steps=0)
    run.fit(task, datamodule=data)
    assert task.sizes == data.sizes and task.head.decoder.out_features == 3
    run.save_checkpoint(tmp_path / "run.ckpt")
    checkpoint = torch.load(tmp_path / "run.ckpt", weights_only=False)
    assert checkpoint["s4lab"] == {
        "sizes": {"d_input": 2, "d_output": 3, "l_max": L, "vocab_size": None},
        "config": {"model": {"d_model": 8}},
    }
    model = task.model
    task.build(data.sizes)  # idempotent: nothing is rebuilt
    assert task.model is model

    restored = SequenceClassifier(MODEL, ClassificationHead, ADAMW)
    restored.build(DataSizes(**checkpoint["s4lab"]["sizes"]))
    restored.load_state_dict(checkpoint["state_dict"])
    x = data.data.tensors[0]
    torch.testing.assert_close(restored.eval()(x), task.eval()(x))


def test_mismatched_sizes_and_checkpoints_fail_by_name(tmp_path):
    task = built(SequenceClassifier, _Data().sizes, head=ClassificationHead)
    with pytest.raises(ValueError, match="built for sizes .*'d_output': 3.*got .*'d_output': 5"):
        task.build(_Data(d_output=5).sizes)
    other = built(SequenceClassifier, _Data(d_output=5).sizes, head=ClassificationHead)
    checkpoint: dict = {}
    other.on_save_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="checkpoint was saved for data sizes .*'d_output': 5"):
        task.on_load_checkpoint(checkpoint)
    with pytest.raises(RuntimeError, match="call task.build"):
        trainer().validate(
            SequenceClassifier(MODEL, ClassificationHead, ADAMW),
            _Data().val_dataloader(),
            verbose=False,
        )

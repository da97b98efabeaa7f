"""Tasks compute their metrics as documented: ppl/bpb, original-scale errors, rates, doc pairs."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning import Trainer
from torch.utils.data import DataLoader, TensorDataset

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.tasks.classification import SequenceClassifier
from s4lab.tasks.forecasting import Forecaster
from s4lab.tasks.language_model import LanguageModel
from s4lab.tasks.retrieval import RetrievalClassifier

B, L = 8, 16
ADAMW = functools.partial(torch.optim.AdamW, lr=1e-3)


def model(d_input: int, d_output: int, **kwargs) -> SequenceModel:
    torch.manual_seed(0)
    layer = functools.partial(S4Block, d_state=4, mode="s4d")
    return SequenceModel(d_input, d_output, layer, l_max=L, d_model=8, n_layers=1, **kwargs)


def validate(task, *tensors: torch.Tensor) -> dict[str, float]:
    trainer = Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    loader = DataLoader(TensorDataset(*tensors), batch_size=4)
    return trainer.validate(task, loader, verbose=False)[0]


def test_language_model_ppl_and_bpb():
    task = LanguageModel(model(7, 7, vocab_size=7, pool="none"), ADAMW)
    task.setup_data(SimpleNamespace(bytes_per_token=2.0))
    x = torch.randint(0, 7, (B, L))
    out = validate(task, x, x.roll(-1, dims=1))
    assert out["val/ppl"] == pytest.approx(math.exp(out["val/loss"]), rel=1e-5)
    assert out["val/bpb"] == pytest.approx(out["val/loss"] / math.log(2) / 2.0, rel=1e-5)


def test_language_model_without_bytes_logs_no_bpb():
    task = LanguageModel(model(7, 7, vocab_size=7, pool="none"), ADAMW)
    task.setup_data(SimpleNamespace())
    x = torch.randint(0, 7, (B, L))
    assert "val/bpb" not in validate(task, x, x)


def test_language_model_scores_only_targeted_positions():
    """Synthetic tasks mark unscored positions -100: ppl and acc count only the others."""
    task = LanguageModel(model(7, 7, vocab_size=7, pool="none"), ADAMW)
    task.setup_data(SimpleNamespace())
    x = torch.randint(0, 7, (B, L))
    y = torch.full((B, L), -100)
    y[:, -1] = x[:, -1]  # answer-only targets
    out = validate(task, x, y)
    with torch.no_grad():
        logits = task(x)[:, -1]  # (B, vocab)
    nll = torch.nn.functional.cross_entropy(logits, y[:, -1])
    acc = (logits.argmax(-1) == y[:, -1]).float().mean()
    assert out["val/ppl"] == pytest.approx(math.exp(nll), rel=1e-4)
    assert out["val/acc"] == pytest.approx(float(acc), abs=1e-6)


def test_forecasting_original_scale():
    """With one target of std 2, errors on the original scale are 4x (MSE) and 2x (MAE)."""
    task = Forecaster(model(3, 1, pool="none"), ADAMW)
    task.setup_data(SimpleNamespace(horizon=4, mean=torch.tensor([10.0]), std=torch.tensor([2.0])))
    out = validate(task, torch.randn(B, L, 3), torch.randn(B, 4, 1))
    assert out["val/mse_orig"] == pytest.approx(4 * out["val/mse"], rel=1e-5)
    assert out["val/mae_orig"] == pytest.approx(2 * out["val/mae"], rel=1e-5)
    assert out["val/loss"] == pytest.approx(out["val/mse"], rel=1e-5)


def test_classification_with_lengths_and_half_rate():
    task = SequenceClassifier(model(1, 3), ADAMW, eval_rates=[1, 2])
    x, y = torch.randn(B, L, 1), torch.randint(0, 3, (B,))
    lengths = torch.randint(L // 2, L + 1, (B,))
    out = validate(task, x, y, lengths)
    assert {"val/loss", "val/acc", "val/acc_rate2"} <= out.keys()
    task.eval()
    logits = task(x, lengths)
    expected = torch.nn.functional.cross_entropy(logits, y)
    assert out["val/loss"] == pytest.approx(expected.item(), rel=1e-4)


def test_retrieval_pairs_each_example_with_its_own_documents():
    task = RetrievalClassifier(model(11, 2, vocab_size=11), ADAMW).eval()
    x = torch.randint(1, 11, (B, 2, L))
    lengths = torch.randint(L // 2, L + 1, (B, 2))
    batch = task(x, lengths)  # (B, 2)
    single = torch.cat([task(x[i : i + 1], lengths[i : i + 1]) for i in range(B)])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-5)
    swapped = task(x.flip(1), lengths.flip(1))  # the head is not symmetric in (u, v)
    assert not torch.allclose(swapped, batch)
    with pytest.raises(ValueError, match=r"\(B, 2, L\)"):
        task(x[:, 0])

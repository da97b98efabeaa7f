"""Padding masks (suffix padding, `lengths`): a bidirectional BatchNorm stack in eval mode gives
the same outputs at valid positions however a batch is padded, and a sequence's prediction does
not depend on its batch mates. Without the masks the pads leak (the last test shows the setup
detects it). float64, CPU, < 1 s."""

from __future__ import annotations

import functools

import pytest
import torch

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.heads import ClassificationHead, masked_pool
from s4lab.models.s4 import S4Kernel
from s4lab.models.s4d import S4DKernel

L, H, D_INPUT = 24, 8, 3
LENGTHS = torch.tensor([L, 17, 5, 1])
KERNELS = {"s4": S4Kernel, "s4d": S4DKernel}


def bidirectional_bn_model(kernel: str, prenorm: bool) -> SequenceModel:
    """Two bidirectional S4 blocks with BatchNorm, running statistics set, in eval mode."""
    torch.manual_seed(0)
    layer = functools.partial(
        S4Block, kernel=functools.partial(KERNELS[kernel], d_state=4), bidirectional=True
    )
    model = SequenceModel(
        D_INPUT, layer, l_max=2 * L, d_model=H, n_layers=2, norm="batch", prenorm=prenorm
    ).double()
    with torch.no_grad():  # a few training batches give BatchNorm non-trivial running stats
        for _ in range(3):
            model.train()(3 * torch.randn(8, L, D_INPUT, dtype=torch.float64) + 1)
    return model.eval()


def padded(x: torch.Tensor, lengths: torch.Tensor, length: int, seed: int) -> torch.Tensor:
    """x (B, ≥ max length, d) cut to `length` steps, with large random values in every pad."""
    g = torch.Generator().manual_seed(seed)
    out = 50 * torch.randn(x.shape[0], length, x.shape[2], dtype=x.dtype, generator=g)
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n]
    return out


def data() -> torch.Tensor:
    return torch.randn(len(LENGTHS), L, D_INPUT, dtype=torch.float64)


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
@pytest.mark.parametrize("prenorm", [True, False])
def test_padding_to_L_or_2L_gives_the_same_valid_outputs(kernel: str, prenorm: bool):
    model = bidirectional_bn_model(kernel, prenorm)
    x = data()
    with torch.no_grad():
        y_L = model(padded(x, LENGTHS, L, seed=1), LENGTHS)  # (B, L, H)
        y_2L = model(padded(x, LENGTHS, 2 * L, seed=2), LENGTHS)  # (B, 2L, H)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(y_2L[b, :n], y_L[b, :n], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
@pytest.mark.parametrize("pool", ["mean", "last"])
def test_prediction_does_not_depend_on_batch_mates(kernel: str, pool: str):
    """Logits of each sequence in a padded batch == the sequence alone, unpadded, no lengths."""
    model = bidirectional_bn_model(kernel, prenorm=True)
    head = ClassificationHead(H, 5, pool=pool).double()
    x = padded(data(), LENGTHS, L, seed=3)
    with torch.no_grad():
        batch = head(model(x, LENGTHS), LENGTHS)  # (B, 5)
        for b, n in enumerate(LENGTHS.tolist()):
            alone = head(model(x[b : b + 1, :n]))[0]
            torch.testing.assert_close(batch[b], alone, atol=1e-12, rtol=1e-10)


def test_pooling_covers_valid_positions_only():
    x = torch.randn(len(LENGTHS), L, H, dtype=torch.float64)
    mean, last = masked_pool(x, LENGTHS, "mean"), masked_pool(x, LENGTHS, "last")
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(mean[b], x[b, :n].mean(0))
        torch.testing.assert_close(last[b], x[b, n - 1])
    torch.testing.assert_close(masked_pool(x, None, "mean"), x.mean(1))


def test_without_lengths_the_pads_leak():
    """The same comparison as above, lengths not passed: valid outputs change with the pads."""
    model = bidirectional_bn_model("s4d", prenorm=True)
    x = data()
    with torch.no_grad():
        y_L = model(padded(x, LENGTHS, L, seed=1))
        y_2L = model(padded(x, LENGTHS, 2 * L, seed=2))
    n = int(LENGTHS[1])
    assert not torch.allclose(y_2L[1, :n], y_L[1, :n], atol=1e-3)

"""S4Block: recurrent mode equals the convolution, causality, the bidirectional layer's two-sided
recurrence, shape errors, mixed precision, and the memory bound of the chunked kernels."""

import subprocess
import sys

import pytest
import torch

from s4lab.models import S4Block
from s4lab.ssm.reference import ssm_scan

H, L = 6, 40


def _block(**kwargs) -> S4Block:
    torch.manual_seed(0)
    return S4Block(**{"d_model": H, "d_state": 8, "l_max": L} | kwargs).double().eval()


def _x(batch: int = 2, length: int = L) -> torch.Tensor:
    return torch.randn(
        batch, length, H, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("mode", ["s4", "s4d"])
@pytest.mark.parametrize("channels", [1, 2])
def test_step_equals_forward(mode, channels):
    block = _block(mode=mode, channels=channels)
    x = _x()
    y = block(x)
    block.setup_step()
    state = block.default_state(2)
    ys = []
    for t in range(L):
        y_t, state = block.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("mode", ["s4", "s4d"])
def test_causal(mode):
    block = _block(mode=mode)
    x = _x()
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, : L // 2], y2[:, : L // 2])
    assert not torch.allclose(y[:, L // 2 :], y2[:, L // 2 :])


@pytest.mark.parametrize("mode", ["s4", "s4d"])
def test_bidirectional_matches_two_recurrences(mode):
    """Kernel channel 0 runs forward in time, channel 1 backward, one step ahead of t."""
    block = _block(mode=mode, bidirectional=True, final_act=None, activation="id")
    x = _x()
    u = x.transpose(1, 2)  # (B, H, L)
    dA, dB, dC = block.kernel.ssm_matrices()
    forward = ssm_scan(dA, dB, dC[:1], u)[:, 0]
    backward = ssm_scan(dA, dB, dC[1:], u.flip(-1))[:, 0].flip(-1)  # Σ_{s ≥ t}
    anti_causal = torch.nn.functional.pad(backward[..., 1:], (0, 1))  # Σ_{s > t}
    y_ref = forward + anti_causal + block.D[0, :, None] * u
    torch.testing.assert_close(block(x).transpose(1, 2), y_ref, atol=1e-10, rtol=1e-8)
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0  # the future now changes the past: not causal
    assert not torch.allclose(block(x)[:, : L // 2], block(x2)[:, : L // 2])
    with pytest.raises(ValueError, match="no recurrent mode"):
        block.setup_step()


def test_output_shape_and_channels():
    block = S4Block(d_model=H, d_state=8, l_max=L, channels=3, final_act="glu")
    assert block(torch.randn(2, L, H)).shape == (2, L, H)
    assert block(torch.randn(2, L - 7, H)).shape == (2, L - 7, H)  # shorter than l_max


def test_dropout_is_tied_over_the_sequence():
    block = S4Block(d_model=H, d_state=8, l_max=L, dropout=0.5, final_act=None).train()
    y = block(torch.randn(1, L, H))
    dropped = (y == 0).all(dim=1)  # (1, H): a dropped feature is zero at every step
    assert ((y == 0).any(dim=1) == dropped).all()


@pytest.mark.parametrize(
    ("kwargs", "x_shape", "match"),
    [
        ({}, (2, L), r"expected input \(B, L, H=6\)"),
        ({}, (2, L, 5), r"expected input \(B, L, H=6\), got \(2, 40, 5\)"),
    ],
)
def test_bad_input_shape(kwargs, x_shape, match):
    with pytest.raises(ValueError, match=match):
        S4Block(d_model=H, d_state=8, l_max=L, **kwargs)(torch.randn(x_shape))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "s5"}, "accepted: s4, s4d"),
        ({"d_state": 9}, "d_state = 9 must be a positive even number"),
        ({"init": "legz"}, "accepted: legs, legt, lagt, fout"),
        ({"mode": "s4d", "init": "legz"}, "accepted: diag-lin, diag-inv, diag-legs"),
        ({"backend": "triton"}, "accepted: auto, naive, keops"),
        ({"activation": "swish"}, "accepted: gelu, silu, relu, tanh, id"),
        ({"mode": "s4", "disc": "zoh"}, "discretizes bilinearly"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4Block(**{"d_model": H, "d_state": 8, "l_max": L} | kwargs)


def test_sequence_longer_than_l_max():
    with pytest.raises(ValueError, match="exceeds l_max = 40"):
        S4Block(d_model=H, d_state=8, l_max=L)(torch.randn(1, L + 1, H))


def test_bf16_autocast_keeps_kernel_in_fp32():
    torch.manual_seed(0)
    block = S4Block(d_model=H, d_state=8, l_max=L)
    x = torch.randn(2, L, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert y.dtype == torch.bfloat16  # the output linear runs in bf16
    torch.testing.assert_close(y.float(), block(x), atol=5e-2, rtol=5e-2)


MEMORY_SCRIPT = """
import resource, torch
from s4lab.models import S4Block
block = S4Block(d_model=256, d_state=64, l_max=65536, mode="{mode}")
x = torch.randn(1, 65536, 256, requires_grad=True)
block(x).square().mean().backward()
assert torch.isfinite(x.grad).all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["s4", "s4d"])
def test_memory_at_64k(mode):
    """H = 256, N = 64, L = 65,536, batch 1: the official naive path is O(H·N·L), OOM at 80 GB."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(mode=mode)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_gb = float(out.stdout.strip().splitlines()[-1])
    assert peak_gb < 6.0, f"peak RSS {peak_gb:.2f} GB"

"""S4Block: recurrent mode equals the convolution, causality, the bidirectional layer's two-sided
recurrence, padding masks, dropout, shape and option errors, mixed precision, and the memory bound
of the chunked kernels. The kernel is a component: each test builds it from a partial."""

import functools
import subprocess
import sys

import pytest
import torch
from hydra.errors import ConfigCompositionException

from s4lab.models import S4Block, S4DKernel, S4Kernel
from s4lab.ssm.init import init_s4
from s4lab.ssm.reference import ssm_scan

H, L = 6, 40
KERNELS = {
    "s4": functools.partial(S4Kernel, d_state=8),
    "s4d": functools.partial(S4DKernel, d_state=8),
}


def _block(kernel: str = "s4", **kwargs) -> S4Block:
    torch.manual_seed(0)
    return S4Block(H, KERNELS[kernel], **{"l_max": L} | kwargs).double().eval()


def _x(batch: int = 2, length: int = L) -> torch.Tensor:
    return torch.randn(
        batch, length, H, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
@pytest.mark.parametrize("channels", [1, 2])
def test_step_equals_forward(kernel, channels):
    block = _block(kernel, channels=channels)
    x = _x()
    y = block(x)
    block.setup_step()
    state = block.default_state(2)
    ys = []
    for t in range(L):
        y_t, state = block.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
def test_causal(kernel):
    block = _block(kernel)
    x = _x()
    x2 = x.clone()
    x2[:, L // 2 :] += 1.0
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, : L // 2], y2[:, : L // 2])
    assert not torch.allclose(y[:, L // 2 :], y2[:, L // 2 :])


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
def test_bidirectional_matches_two_recurrences(kernel):
    """Kernel channel 0 runs forward in time, channel 1 backward, one step ahead of t."""
    block = _block(kernel, bidirectional=True, final_act=None, activation="id")
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


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
def test_padded_positions_are_masked(kernel):
    """With lengths, what sits in the pads cannot reach a valid position, even looking ahead."""
    block = _block(kernel, bidirectional=True)
    x = _x(3)
    lengths = torch.tensor([L, 25, 7])
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 100.0 * torch.randn(L - n, H, dtype=torch.float64)
    y, y_noisy = block(x, lengths), block(noisy, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(y_noisy[b, :n], y[b, :n], atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(y[b, :n], block(x[b : b + 1, :n])[0], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(block(x, torch.full((3,), L)), block(x), atol=0, rtol=0)
    assert not torch.allclose(block(noisy)[1, :25], y[1, :25])  # unmasked, the pads leak


def test_output_shape_and_channels():
    block = S4Block(H, KERNELS["s4"], l_max=L, channels=3, final_act="glu")
    assert block.kernel.channels == 3
    assert block(torch.randn(2, L, H)).shape == (2, L, H)
    assert block(torch.randn(2, L - 7, H)).shape == (2, L - 7, H)  # shorter than l_max
    assert S4Block(H, KERNELS["s4d"], l_max=L, channels=3, bidirectional=True).kernel.channels == 6


def test_dropout_zeroes_whole_features_tied_over_the_sequence():
    """Train mode drops features (B, C·H) for every step and scales the others by 1 / (1 - p)."""
    torch.manual_seed(0)
    block = S4Block(8 * H, KERNELS["s4d"], l_max=L, dropout=0.5, final_act=None)
    x = torch.randn(2, L, 8 * H)
    y_eval = block.eval()(x)
    y = block.train()(x)
    kept = (y != 0).any(dim=1, keepdim=True)  # (B, 1, H): one mask per example and feature
    torch.testing.assert_close(y, 2 * y_eval * kept, atol=0, rtol=0)  # kept: scaled by 1 / (1 - p)
    assert 0.2 < (~kept).float().mean() < 0.8  # p = 0.5 of 96 features: something dropped


@pytest.mark.parametrize(
    ("x_shape", "lengths", "match"),
    [
        ((2, L), None, r"expected input \(B, L, H=6\)"),
        ((2, L, 5), None, r"expected input \(B, L, H=6\), got \(2, 40, 5\)"),
        ((2, L, H), torch.tensor([L]), r"expected lengths \(2,\), got \(1,\)"),
    ],
)
def test_bad_input_shape(x_shape, lengths, match):
    with pytest.raises(ValueError, match=match):
        S4Block(H, KERNELS["s4"], l_max=L)(torch.randn(x_shape), lengths)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swish"}, "accepted: gelu, silu, relu, tanh, id"),
        ({"final_act": "gelu"}, "accepted: glu, linear, null"),
        ({"final_act": None, "channels": 2}, "use channels=1 or 'linear'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4Block(H, KERNELS["s4"], **{"l_max": L} | kwargs)


def test_kernel_option_the_kernel_does_not_take_fails_by_name(compose_train):
    """S4 discretizes bilinearly: `disc` exists only in the S4D kernel's config."""
    with pytest.raises(ConfigCompositionException, match="model.layer.kernel.disc"):
        compose_train("model.layer.kernel.disc=zoh")
    cfg = compose_train("model/layer/kernel=s4d", "model.layer.kernel.disc=bilinear")
    assert cfg.model.layer.kernel._target_ == "s4lab.models.s4d.S4DKernel"
    assert cfg.model.layer.kernel.disc == "bilinear"


def test_bf16_input_runs_kernel_and_fft_in_fp32(monkeypatch):
    """bf16 activations (as under bf16-mixed): the kernel K̄ and every FFT input stay fp32."""
    torch.manual_seed(0)
    block = S4Block(H, KERNELS["s4"], l_max=L)
    x = torch.randn(2, L, H)
    kernel_dtypes, fft_dtypes = [], []
    block.kernel.register_forward_hook(lambda m, args, K: kernel_dtypes.append(K.dtype))
    rfft = torch.fft.rfft

    def spy(t, *args, **kwargs):
        fft_dtypes.append(t.dtype)
        return rfft(t, *args, **kwargs)

    monkeypatch.setattr(torch.fft, "rfft", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x.bfloat16())
    assert kernel_dtypes == [torch.float32]
    assert fft_dtypes and set(fft_dtypes) == {torch.float32}  # u and K̄ both transformed in fp32
    assert y.dtype == torch.bfloat16  # the output linear runs in bf16
    torch.testing.assert_close(y.float(), block(x), atol=5e-2, rtol=5e-2)


MEMORY_SCRIPT = """
import functools, resource, torch
from s4lab.models import S4Block, S4DKernel, S4Kernel
kernel = functools.partial({kernel}, d_state=64)
block = S4Block(d_model=256, kernel=kernel, l_max=65536)
x = torch.randn(1, 65536, 256, requires_grad=True)
block(x).square().mean().backward()
assert torch.isfinite(x.grad).all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["S4Kernel", "S4DKernel"])
def test_memory_at_64k(kernel):
    """H = 256, N = 64, L = 65,536, batch 1: the official naive path is O(H·N·L), OOM at 80 GB."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(kernel=kernel)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_gb = float(out.stdout.strip().splitlines()[-1])
    assert peak_gb < 6.0, f"peak RSS {peak_gb:.2f} GB"


def test_draws_follow_the_official_order():
    """The official layer draws D (channels, H) first, then its kernel draws Δ and C."""
    torch.manual_seed(0)
    D = torch.randn(1, 6)
    drawn = init_s4("legs", 8, 1, 6, 1, 1, 1e-3, 1e-1, None, False)
    torch.manual_seed(0)
    block = S4Block(d_model=6, kernel=functools.partial(S4Kernel, d_state=8))
    torch.testing.assert_close(block.D.detach(), D)
    torch.testing.assert_close(block.kernel.dt().double(), drawn.dt, rtol=1e-6, atol=0)

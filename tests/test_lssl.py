"""LSSL: the kernel by Krylov doubling equals the dense reference powers and recurrence; the
layer is causal, padding-invariant, steps like its forward and trains through train()."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, train_checked

from s4lab.models.lssl import LSSL
from s4lab.ssm.discretize import discretize_dense
from s4lab.ssm.fftconv import fft_conv
from s4lab.ssm.hippo import transition
from s4lab.ssm.lssl import krylov, lssl_kernel
from s4lab.ssm.reference import ssm_kernel_ref, ssm_scan

H, N, L = 3, 8, 37  # L not a power of two: the doubling must truncate


@pytest.fixture
def ssm() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    A, B = transition("legs", N)
    dt = torch.logspace(-2, -1, H, dtype=torch.float64)
    dA, dB = discretize_dense("bilinear", dt, A.expand(H, N, N), B.expand(H, N))
    C = torch.randn(2, H, N, dtype=torch.float64, generator=g)  # M = 2 output channels
    return dA, dB, C


def layer(**kwargs) -> LSSL:
    torch.manual_seed(0)
    return LSSL(d_model=H, d_state=N, dt_min=0.01, dt_max=0.1, **kwargs).double().eval()


@pytest.mark.parametrize("length", [1, 2, L, 64])
def test_kernel_equals_dense_powers(ssm, length):
    dA, dB, C = ssm
    torch.testing.assert_close(lssl_kernel(dA, dB, C, length), ssm_kernel_ref(dA, dB, C, length))


def test_krylov_columns_are_powers(ssm):
    dA, dB, _ = ssm
    K = krylov(dA, dB, 5)
    torch.testing.assert_close(
        K[..., 3], (torch.linalg.matrix_power(dA, 3) @ dB[..., None])[..., 0]
    )


def test_convolution_equals_recurrence(ssm):
    dA, dB, C = ssm
    u = torch.randn(2, H, L, dtype=torch.float64)
    torch.testing.assert_close(fft_conv(u, lssl_kernel(dA, dB, C, L)), ssm_scan(dA, dB, C, u))


def test_output_shape_and_learned_transition():
    for learn_A, shape in [("none", (N, N)), ("shared", (N, N)), ("channel", (H, N, N))]:
        m = layer(learn_A=learn_A, channels=2)
        assert m(torch.randn(2, L, H, dtype=torch.float64)).shape == (2, L, H)
        assert m.A.shape == shape
        assert isinstance(m.A, torch.nn.Parameter) == (learn_A != "none")
    with pytest.raises(ValueError, match="learn_A"):
        LSSL(d_model=H, learn_A="per_channel")


def test_step_equals_forward():
    m = layer(channels=2)
    x = torch.randn(2, L, H, dtype=torch.float64)
    y = m(x)
    m.setup_step()
    state, ys = m.default_state(2), []
    for t in range(L):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, dim=1), y, rtol=0, atol=1e-10)


def test_causal():
    m = layer()
    x = torch.randn(2, L, H, dtype=torch.float64)
    x2 = x.clone()
    x2[:, L // 2 :] = torch.randn_like(x2[:, L // 2 :])
    torch.testing.assert_close(m(x2)[:, : L // 2], m(x)[:, : L // 2], rtol=0, atol=1e-12)


def test_padding_invariance():
    m = layer()
    lengths = torch.tensor([L, 20])
    x = torch.randn(2, L, H, dtype=torch.float64)
    y = m(x, lengths)
    x2 = torch.cat([x, 1e3 * torch.randn_like(x)], dim=1)  # padded to 2L with junk
    x2[1, 20:L] = 1e3
    y2 = m(x2, lengths)
    torch.testing.assert_close(y2[0, :L], y[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(y2[1, :20], y[1, :20], rtol=0, atol=1e-10)
    alone = m(x[1:, :20])  # without its batch mate, unpadded
    torch.testing.assert_close(y[1, :20], alone[0], rtol=0, atol=1e-10)


def test_trains_one_step_through_train(compose_train):
    tiny = [o for o in TINY if not o.startswith("model.layer.")]
    cfg = compose_train(
        *tiny,
        "model/layer=lssl",
        "model.layer.d_state=4",
        "model.layer.learn_A=shared",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "test=false",
    )
    assert cfg.model.layer._target_ == "s4lab.models.lssl.LSSL"
    train_checked(cfg)

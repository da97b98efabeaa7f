"""S4Kernel and S4DKernel: the kernel they compute is the discrete SSM they report, the initial
S4 SSM is HiPPO-LegS, rate changes are exact for ZOH, backends agree, SSM parameters are tagged."""

import builtins

import pytest
import torch

from s4lab.models import S4DKernel, S4Kernel
from s4lab.ssm.discretize import discretize_dense
from s4lab.ssm.hippo import nplr, transition
from s4lab.ssm.reference import ssm_kernel_ref

L = 45  # not a power of two


def _seeded(cls, **kwargs):
    torch.manual_seed(0)
    return cls(**kwargs).double()


@pytest.mark.parametrize("init", ["legs", "legt", "lagt", "fout"])
def test_s4_kernel_equals_its_ssm(init):
    rank = 2 if init == "legt" else 1
    kernel = _seeded(
        S4Kernel, d_model=3, d_state=8, l_max=L, channels=2, init=init, rank=rank, n_ssm=None
    )
    dA, dB, dC = kernel.ssm_matrices()
    assert dA.shape == (3, 8, 8) and dB.shape == (3, 8) and dC.shape == (2, 3, 8)
    torch.testing.assert_close(kernel(L), ssm_kernel_ref(dA, dB, dC, L), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("init", ["diag-lin", "diag-inv", "diag-legs"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_s4d_kernel_equals_its_ssm(init, disc):
    kernel = _seeded(S4DKernel, d_model=3, d_state=8, l_max=L, channels=2, init=init, disc=disc)
    dA, dB, dC = kernel.ssm_matrices()
    torch.testing.assert_close(kernel(L), ssm_kernel_ref(dA, dB, dC, L), atol=1e-10, rtol=1e-8)


def test_initial_s4_is_hippo_legs():
    """Before training, S4's A, B are HiPPO-LegS in the basis V: Ā = V* Ā_legs V, B̄ = V* B̄_legs."""
    N = 8
    kernel = _seeded(S4Kernel, d_model=2, d_state=N, l_max=L)
    A, B = transition("legs", N)
    V = nplr("legs", N)[3]
    dt = kernel.dt().double()
    dA_legs, dB_legs = discretize_dense(
        "bilinear", dt, A.expand(2, N, N).to(V.dtype), B.expand(2, N).to(V.dtype)
    )
    dA, dB, _ = kernel.ssm_matrices()
    torch.testing.assert_close(dA, V.conj().T @ dA_legs @ V, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(dB, (V.conj().T @ dB_legs[..., None])[..., 0], atol=1e-6, rtol=1e-6)


def test_s4d_zoh_rate_two_sums_pairs():
    """ZOH at 2Δ: Ā' = Ā², B̄' = (Ā + I) B̄, so K̄'_l = K̄_{2l} + K̄_{2l+1}."""
    kernel = _seeded(S4DKernel, d_model=4, d_state=16, l_max=2 * L, disc="zoh")
    K1 = kernel(2 * L)
    K2 = kernel(L, rate=2.0)
    torch.testing.assert_close(K2, K1[..., 0::2] + K1[..., 1::2], atol=1e-12, rtol=1e-10)


def test_kernel_shorter_than_l_max_is_a_prefix():
    kernel = _seeded(S4Kernel, d_model=2, d_state=8, l_max=L)
    torch.testing.assert_close(kernel(20), kernel(L)[..., :20])


def test_ssm_parameters_carry_optimizer_hints():
    """The official HEAD rule: a float lr covers C too, a float wd does not."""
    kernel = S4Kernel(d_model=4, d_state=8, l_max=16, lr=1e-3)
    for name in ("A_real", "A_imag", "P", "B", "inv_dt"):
        assert getattr(kernel, name)._optim == {"weight_decay": 0.0, "lr": 1e-3}, name
    assert kernel.C._optim == {"lr": 1e-3}  # C keeps the global weight decay
    kernel = S4DKernel(d_model=4, d_state=8, lr={"dt": 1e-2, "C": 5e-4}, wd=0.0)
    assert kernel.inv_dt._optim == {"weight_decay": 0.0, "lr": 1e-2}
    assert kernel.C._optim == {"lr": 5e-4}
    assert kernel.B._optim == {"weight_decay": 0.0}  # no lr named: global lr, still no decay


def test_lr_zero_freezes():
    kernel = S4DKernel(d_model=4, d_state=8, lr={"A": 0.0, "B": 1e-3})
    names = {n for n, _ in kernel.named_parameters()}
    assert names == {"inv_dt", "B", "C"}
    assert {"A_real", "A_imag"} <= set(dict(kernel.named_buffers()))
    assert not list(S4Kernel(d_model=4, d_state=8, lr=0.0).parameters())  # C frozen too


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d_state": 7}, "d_state = 7 must be a positive even number"),
        ({"init": "legx"}, "accepted: legs, legt, lagt, fout"),
        ({"backend": "cuda"}, "accepted: auto, naive, keops"),
        ({"lr": {"Q": 1.0}}, r"lr keys \['Q'\] unknown; accepted: A, B, C, dt"),
    ],
)
def test_bad_s4_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4Kernel(**{"d_model": 4, "d_state": 8, "l_max": 16} | kwargs)


def test_bad_s4d_arguments():
    with pytest.raises(ValueError, match="accepted: diag-lin, diag-inv, diag-legs"):
        S4DKernel(d_model=4, init="legs")
    with pytest.raises(ValueError, match="accepted: zoh, bilinear"):
        S4DKernel(d_model=4, disc="euler")


def test_keops_unavailable_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_pykeops(name, *args, **kwargs):
        if name.startswith("pykeops"):
            raise ImportError("No module named 'pykeops'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pykeops)
    with pytest.raises(ImportError, match=r"pip install 's4lab\[keops\]'.*backend='naive'"):
        S4DKernel(d_model=4, backend="keops")


@pytest.mark.slow  # pykeops compiles each formula on first use (minutes on 2 cores)
@pytest.mark.parametrize("cls", [S4Kernel, S4DKernel])
def test_keops_backend_equals_naive(cls):
    pytest.importorskip("pykeops")
    torch.manual_seed(0)
    naive = cls(d_model=3, d_state=8, l_max=32, channels=2)
    keops = cls(d_model=3, d_state=8, l_max=32, channels=2, backend="keops")
    keops.load_state_dict(naive.state_dict())
    K_naive, K_keops = naive(32), keops(32)
    torch.testing.assert_close(K_keops, K_naive, atol=1e-5, rtol=1e-4)
    g = torch.randn_like(K_naive)
    (K_naive * g).sum().backward()
    (K_keops * g).sum().backward()
    for (name, p), q in zip(naive.named_parameters(), keops.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-4, rtol=1e-3, msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [S4Kernel, S4DKernel])
def test_cuda_equals_cpu(cls):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    torch.manual_seed(0)
    cpu = cls(d_model=8, d_state=16, l_max=1000, channels=2)
    gpu = cls(d_model=8, d_state=16, l_max=1000, channels=2).cuda()
    gpu.load_state_dict(cpu.state_dict())
    K_cpu, K_gpu = cpu(1000), gpu(1000)
    torch.testing.assert_close(K_gpu.cpu(), K_cpu, atol=1e-5, rtol=1e-4)
    g = torch.randn_like(K_cpu)
    (K_cpu * g).sum().backward()
    (K_gpu * g.cuda()).sum().backward()
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(q.grad.cpu(), p.grad, atol=1e-4, rtol=1e-3, msg=name)

"""Triton backends of the Cauchy and log-Vandermonde kernels equal the naive backend and the
references in values and gradients (float32, float64), whole S4/S4D layers agree across
backends, and backend selection (auto, the CPU error, the log line) behaves as documented.

Without CUDA the kernels run in Triton's CPU interpreter, which TRITON_INTERPRET=1 selects only
if it is set before triton is first imported: triton.jit reads it when decorating, and triton's
own library (tl.zeros, tl.sum) is decorated at `import triton`, which pytorch_lightning does
early in a full run. So on CPU, test_kernels_in_interpreter reruns this file in a fresh process
with the variable set, and the kernel tests here skip; with CUDA (or when this process already
has TRITON_INTERPRET=1) they run in-process. Tiny sizes: seconds on 2 cores.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from s4lab.models import S4Block, S4DKernel, S4Kernel
from s4lab.ssm import backend
from s4lab.ssm.backend import resolve_backend
from s4lab.ssm.cauchy import cauchy, cauchy_ref
from s4lab.ssm.vandermonde import log_vandermonde, log_vandermonde_ref

pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RUNS_HERE = DEVICE == "cuda" or backend.triton_interpreted()
runs_kernels = pytest.mark.skipif(
    not RUNS_HERE, reason="CPU without TRITON_INTERPRET=1: test_kernels_in_interpreter runs it"
)
KERNEL_MODULES = ("s4lab.ssm.cauchy_triton", "s4lab.ssm.vandermonde_triton")
H, N = 3, 6
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.float64: {"rtol": 1e-10, "atol": 1e-10}}
COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


@pytest.mark.skipif(RUNS_HERE, reason="the kernel tests run in this process")
def test_kernels_in_interpreter():
    """This file's tests in a fresh process whose triton is imported with TRITON_INTERPRET=1."""
    pytest_args = ["-q", "-p", "no:cacheprovider", "--noconftest", "-k", "not in_interpreter"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, __file__],  # conftest imports lightning
        cwd=Path(__file__).parents[1],
        env=os.environ | {"TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"},  # 1: as conftest
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles of 4 modes by 16 positions, so N and L span several blocks with ragged tails."""
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "BLOCK_N", 4)
        monkeypatch.setattr(module, "BLOCK_L", 16)


def _nodes(L: int, dtype: torch.dtype) -> Tensor:
    """S4's nodes z = 2(1 - ω)/(1 + ω), ω = exp(-2πik/2L), k < L; z_0 = 0. (L,) complex."""
    omega = torch.exp(-2j * math.pi * torch.arange(L, dtype=torch.float64) / (2 * L))
    return (2 * (1 - omega) / (1 + omega)).to(dtype).to(DEVICE)


def _modes(dtype: torch.dtype, seed: int, real_scale: float) -> Tensor:
    """Random stable modes (H, N): Re < 0, as Λ Δ in S4 and A Δ in S4D."""
    g = torch.Generator().manual_seed(seed)
    real = -real_scale * (torch.rand(H, N, generator=g, dtype=torch.float64) + 0.1)
    imag = 3 * torch.randn(H, N, generator=g, dtype=torch.float64)
    return torch.complex(real, imag).to(dtype).to(DEVICE).requires_grad_()


def _coefficients(batch: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(*batch, H, N, generator=g, dtype=torch.complex128)
    return v.to(dtype).to(DEVICE).requires_grad_()


def _value_and_grads(f: Callable[..., Tensor], inputs: tuple[Tensor, ...], g: Tensor) -> list:
    out = f(*inputs)
    return [out, *torch.autograd.grad(out, inputs, g)]


def _assert_all_close(actual: list, expected: list, tol: dict[str, float]) -> None:
    for name, a, e in zip(("value", "grad 1", "grad 2"), actual, expected, strict=True):
        torch.testing.assert_close(a, e, **tol, msg=lambda m, name=name: f"{name}: {m}")


@runs_kernels
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "L"), [((), 17), ((2, 1), 40)])
def test_cauchy_triton_equals_naive_and_ref(dtype, batch, L):
    ctype = COMPLEX[dtype]
    v, w, z = _coefficients(batch, ctype), _modes(ctype, 1, 0.5), _nodes(L, ctype)
    g = torch.randn(*batch, H, L, dtype=ctype, generator=torch.Generator().manual_seed(2))
    g = g.to(DEVICE)
    triton = _value_and_grads(lambda v, w: cauchy(v, z, w, "triton"), (v, w), g)
    naive = _value_and_grads(lambda v, w: cauchy(v, z, w, "naive"), (v, w), g)
    ref = _value_and_grads(lambda v, w: cauchy_ref(v, z, w), (v, w), g)
    assert triton[0].shape == (*batch, H, L) and triton[0].dtype == ctype
    _assert_all_close(triton, naive, TOL[dtype])
    _assert_all_close(triton, ref, TOL[dtype])


@runs_kernels
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "L"), [((), 17), ((2, 1), 40)])
def test_log_vandermonde_triton_equals_naive_and_ref(dtype, batch, L):
    ctype = COMPLEX[dtype]
    v, x = _coefficients(batch, ctype), _modes(ctype, 3, 0.05)
    g = torch.randn(*batch, H, L, dtype=dtype, generator=torch.Generator().manual_seed(4))
    g = g.to(DEVICE)
    triton = _value_and_grads(lambda v, x: log_vandermonde(v, x, L, "triton"), (v, x), g)
    naive = _value_and_grads(lambda v, x: log_vandermonde(v, x, L, "naive"), (v, x), g)
    ref = _value_and_grads(lambda v, x: log_vandermonde_ref(v, x, L), (v, x), g)
    assert triton[0].shape == (*batch, H, L) and triton[0].dtype == dtype
    _assert_all_close(triton, naive, TOL[dtype])
    _assert_all_close(triton, ref, TOL[dtype])


@runs_kernels
@pytest.mark.parametrize("kernel", [S4Kernel, S4DKernel])
def test_block_triton_equals_naive(kernel):
    """A whole S4 layer, float64: the same weights give the same output and parameter grads."""
    L = 37
    blocks = {}
    for name in ("naive", "triton"):
        torch.manual_seed(0)
        layer = functools.partial(kernel, d_state=8, channels=2, backend=name)
        blocks[name] = S4Block(4, layer, l_max=L, channels=2).double().to(DEVICE)
    x = torch.randn(2, L, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g = torch.randn(2, L, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = {name: block(x.to(DEVICE)) for name, block in blocks.items()}
    torch.testing.assert_close(y["triton"], y["naive"], rtol=1e-10, atol=1e-10)
    for out in y.values():
        out.backward(g.to(DEVICE))
    params = zip(blocks["naive"].named_parameters(), blocks["triton"].parameters(), strict=True)
    for (name, p), q in params:
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-10, atol=1e-10, msg=name)


def test_auto_picks_triton_for_cuda_tensors():
    assert resolve_backend("auto", torch.device("cuda")) == "triton"
    assert resolve_backend("auto", torch.device("cpu")) == "naive"
    assert resolve_backend("auto") == "auto"  # a constructor's check; resolved per call


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    v = torch.ones(H, N, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match=r"on cpu.*TRITON_INTERPRET=1.*backend='naive'"):
        log_vandermonde(v, v, 8, backend="triton")


def test_backend_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(backend, "_logged", set())
    with caplog.at_level(logging.INFO, logger=backend.__name__):
        for _ in range(3):
            resolve_backend("auto", torch.device("cpu"))
        resolve_backend("naive", torch.device("cpu"))
    assert len(caplog.records) == 1 and "'naive'" in caplog.records[0].getMessage()


def _relative_error(actual: Tensor, expected: Tensor) -> float:
    """max |actual - expected| / max |expected|: the error at the scale of the result."""
    return ((actual.to(expected.dtype) - expected).abs().max() / expected.abs().max()).item()


def _at(f: Callable, name: str, inputs: tuple[Tensor, ...], g: Tensor, ctype: torch.dtype) -> list:
    """Value and gradients of f(*inputs, name) with inputs and g cast to the precision `ctype`."""
    leaves = tuple(t.to(ctype).requires_grad_() for t in inputs)
    g = g.to(ctype if g.is_complex() else ctype.to_real())
    return _value_and_grads(functools.partial(f, name=name), leaves, g)


@pytest.mark.gpu
def test_cuda_triton_equals_naive_at_scale():
    """H = 256, N = 64, L = 4096, float32, against naive float32 and naive float64 (exact).

    Calibrated in the interpreter at H = 2: both backends are within ~1e-5 of float64.
    """
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    torch.manual_seed(0)
    Hs, Ns, L = 256, 64, 4096
    dt = torch.logspace(-3, -1, Hs, dtype=torch.float64, device="cuda")[:, None]  # (H, 1)
    A = torch.complex(-0.5 * torch.ones(Ns), math.pi * torch.arange(Ns)).cuda()  # S4D-Lin
    w = dt * A  # (H, N): ΔΛ for Cauchy, x = ΔA for Vandermonde
    v = torch.randn(4, Hs, Ns, dtype=torch.complex128, device="cuda")  # (K, H, N)
    z = _nodes(L, torch.complex128)
    cases = {
        "cauchy": (
            lambda v, w, name: cauchy(v, z.to(v.dtype), w, name),
            torch.randn(4, Hs, L, dtype=torch.complex128, device="cuda"),
        ),
        "log_vandermonde": (
            lambda v, x, name: log_vandermonde(v, x, L, name),
            torch.randn(4, Hs, L, dtype=torch.float64, device="cuda"),
        ),
    }
    for case, (f, g) in cases.items():
        exact = _at(f, "naive", (v, w), g, torch.complex128)
        naive = _at(f, "naive", (v, w), g, torch.complex64)
        triton = _at(f, "triton", (v, w), g, torch.complex64)
        for i, (e, n, t) in enumerate(zip(exact, naive, triton, strict=True)):
            errors = _relative_error(t, e), _relative_error(t, n)
            assert max(errors) < 1e-4, (case, i, errors, _relative_error(n, e))

"""The SSM math (s4lab.ssm) against slow references, in float64.

Facts: the HiPPO matrices are the official ones (entries pinned at small N; legt and fout at
half scale); HiPPO NPLR forms reconstruct A; the chunked Cauchy/Vandermonde kernels equal their
materialized references in values and gradients, whatever the chunk size; the DPLR generating
function kernel equals the dense bilinear recurrence; FFT convolution equals the recurrence.
"""

import math

import pytest
import torch

from s4lab.ssm import backend as backend_module
from s4lab.ssm.cauchy import cauchy, cauchy_ref
from s4lab.ssm.diag_init import diag_init
from s4lab.ssm.discretize import discretize_dense, discretize_diag
from s4lab.ssm.dplr import double_C, dplr_dense, truncate_C, untruncate_C
from s4lab.ssm.fftconv import (
    fast_length,
    fft_conv,
    fft_conv_ref,
    two_sided_kernel,
    with_skip,
)
from s4lab.ssm.hippo import HIPPO_INITS, nplr, rank_correction, transition
from s4lab.ssm.kernels import s4_kernel, s4d_kernel
from s4lab.ssm.reference import both_halves, ssm_kernel_ref, ssm_scan
from s4lab.ssm.vandermonde import log_vandermonde, log_vandermonde_ref

c128 = torch.complex128


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force several chunks even for tiny inputs, so chunk boundaries are exercised."""
    monkeypatch.setattr(backend_module, "CHUNK_ELEMENTS", 24)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("init", HIPPO_INITS)
@pytest.mark.parametrize("N", [8, 64])
def test_nplr_reconstructs_A(init, N):
    A, B = transition(init, N)
    Lambda, P, B_tilde, V = nplr(init, N)
    A_rec = V @ (torch.diag(Lambda) - P.T @ P.conj()) @ V.conj().T
    torch.testing.assert_close(A_rec, A.to(c128), atol=1e-10, rtol=0)
    torch.testing.assert_close(V @ B_tilde, B.to(c128), atol=1e-10, rtol=0)
    torch.testing.assert_close(V.conj().T @ V, torch.eye(N, dtype=c128), atol=1e-12, rtol=0)
    half = N // 2  # second half of the modes = conjugates of the first
    torch.testing.assert_close(Lambda[half:], Lambda[:half].conj())
    torch.testing.assert_close(P[:, half:], P[:, :half].conj())


r3, r5, r15 = math.sqrt(3), math.sqrt(5), math.sqrt(15)
s2, pi = math.sqrt(2), math.pi
# The official hippo.transition matrices at small N (see the s4lab.ssm.hippo docstring).
PUBLISHED = {
    "legs": (
        [[-1, 0, 0], [-r3, -2, 0], [-r5, -r15, -3]],
        [1, r3, r5],
    ),
    "legt": (  # half the full-scale LegT, as the official `legt`
        [[-0.5, r3 / 2, -r5 / 2], [-r3 / 2, -1.5, r15 / 2], [-r5 / 2, -r15 / 2, -2.5]],
        [0.5, r3 / 2, r5 / 2],
    ),
    "lagt": (
        [[-0.5, 0, 0], [-1, -0.5, 0], [-1, -1, -0.5]],
        [1, 1, 1],
    ),
    "fout": (
        [
            [-1, 0, -s2, 0, -s2, 0],
            [0, 0, 0, 0, 0, 0],
            [-s2, 0, -2, -pi, -2, 0],
            [0, 0, pi, 0, 0, 0],
            [-s2, 0, -2, 0, -2, -2 * pi],
            [0, 0, 0, 0, 2 * pi, 0],
        ],
        [1, 0, s2, 0, s2, 0],
    ),
}


@pytest.mark.parametrize("init", HIPPO_INITS)
def test_hippo_matrices_are_the_official_ones(init):
    A_ref, B_ref = (torch.tensor(x, dtype=torch.float64) for x in PUBLISHED[init])
    A, B = transition(init, len(B_ref))
    torch.testing.assert_close(A, A_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(B, B_ref, atol=1e-12, rtol=0)


def test_legt_is_half_of_the_lmu_matrix():
    """Official `lmu` (Voelker's LMU): A_nk = (2n+1)·(-1 if n < k else (-1)^(n-k+1)),
    B_n = (-1)^n (2n+1). With D = diag((-1)^n √(2n+1)): D⁻¹ A_lmu D = 2 A_legt and
    D⁻¹ B_lmu = 2 B_legt: our (the official) legt is LegT at half the time scale (θ = 2)."""
    N = 6
    n = torch.arange(N, dtype=torch.float64)
    i, k = n[:, None], n[None, :]
    A_lmu = (2 * i + 1) * torch.where(i < k, -1.0, (-1.0) ** (i - k + 1))
    B_lmu = (-1.0) ** n * (2 * n + 1)
    D = (-1.0) ** n * torch.sqrt(2 * n + 1)
    A, B = transition("legt", N)
    torch.testing.assert_close(A_lmu / D[:, None] * D[None, :], 2 * A)
    torch.testing.assert_close(B_lmu / D, 2 * B)


@pytest.mark.parametrize("init", HIPPO_INITS)
def test_rank_correction_makes_A_normal(init):
    A, _ = transition(init, 8)
    P = rank_correction(init, 8)
    S = A + P.T @ P
    torch.testing.assert_close(S @ S.T, S.T @ S)
    assert P.shape[0] == (2 if init == "legt" else 1)
    torch.testing.assert_close(rank_correction(init, 8, rank=3)[: P.shape[0]], P)
    with pytest.raises(ValueError, match="rank = 0 is too small"):
        rank_correction(init, 8, rank=0)


def test_legs_rank_correction_and_spectrum():
    torch.testing.assert_close(
        rank_correction("legs", 4)[0], torch.sqrt(torch.arange(4.0) + 0.5).double()
    )
    Lambda = nplr("legs", 16)[0]
    torch.testing.assert_close(Lambda.real, torch.full((16,), -0.5, dtype=torch.float64))


def test_nplr_modes_conjugate_the_official_ones():
    """The kept eigenvectors are the conjugates of eigh's for Im < 0 (what the official keeps)."""
    A, _ = transition("legs", 8)
    S = A + rank_correction("legs", 8).T @ rank_correction("legs", 8)
    w, V_eigh = torch.linalg.eigh(-1j * (S + 0.5 * torch.eye(8, dtype=torch.float64)))
    Lambda, _, _, V = nplr("legs", 8)
    torch.testing.assert_close(V[:, :4], V_eigh[:, :4].conj())
    torch.testing.assert_close(Lambda[:4].imag, -w[:4])
    assert (Lambda[:4].imag > 0).all()


def test_diag_inits():
    Lambda, B = diag_init("diag-lin", 8)
    torch.testing.assert_close(Lambda.imag, math.pi * torch.arange(4).double())
    Lambda, _ = diag_init("diag-inv", 8)
    torch.testing.assert_close(
        Lambda.imag, 8 / math.pi * (8 / (2 * torch.arange(4).double() + 1) - 1)
    )
    Lambda, _ = diag_init("diag-legs", 8)
    torch.testing.assert_close(Lambda, nplr("legs", 8)[0][:4])
    assert (Lambda.real < 0).all() and (Lambda.imag > 0).all()


def _cauchy_inputs(K=3, H=2, N=5, L=11):
    g = _gen()
    v = torch.randn(K, H, N, dtype=c128, generator=g, requires_grad=True)
    w = torch.complex(
        -torch.rand(H, N, generator=g).double(), torch.randn(H, N, generator=g).double()
    )
    omega = torch.exp(-2j * math.pi * torch.arange(L, dtype=torch.float64) / (2 * L))
    return v, 2 * (1 - omega) / (1 + omega), w.requires_grad_()


def test_cauchy_equals_reference(tiny_chunks):
    v, z, w = _cauchy_inputs()
    torch.testing.assert_close(cauchy(v, z, w), cauchy_ref(v, z, w))
    g = torch.randn(3, 2, 11, dtype=c128, generator=_gen(1))
    grads = torch.autograd.grad((cauchy(v, z, w) * g).real.sum(), (v, w))
    grads_ref = torch.autograd.grad((cauchy_ref(v, z, w) * g).real.sum(), (v, w))
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_cauchy_gradcheck(tiny_chunks):
    v, z, w = _cauchy_inputs(K=2, N=3, L=5)
    assert torch.autograd.gradcheck(lambda v, w: cauchy(v, z, w), (v, w))


def _vandermonde_inputs():
    g = _gen()
    v = torch.randn(3, 2, 5, dtype=c128, generator=g, requires_grad=True)
    x = torch.complex(-0.01 * torch.rand(2, 5, generator=g), torch.randn(2, 5, generator=g))
    return v, x.to(c128).requires_grad_()


def test_vandermonde_equals_reference(tiny_chunks):
    v, x = _vandermonde_inputs()
    torch.testing.assert_close(log_vandermonde(v, x, 13), log_vandermonde_ref(v, x, 13))
    assert torch.autograd.gradcheck(lambda v, x: log_vandermonde(v, x, 13), (v, x))


def test_vandermonde_long_equals_reference():
    """L = 300 in one chunk: powers built as coarse × fine products (64-step blocks)."""
    v, x = _vandermonde_inputs()
    g = torch.randn(3, 2, 300, dtype=torch.float64, generator=_gen(2))
    K, K_ref = log_vandermonde(v, x, 300), log_vandermonde_ref(v, x, 300)
    torch.testing.assert_close(K, K_ref)
    grads = torch.autograd.grad((K * g).sum(), (v, x))
    grads_ref = torch.autograd.grad((K_ref * g).sum(), (v, x))
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


def _dplr_params(init: str, H: int = 3, N: int = 8, channels: int = 2):
    Lambda, P, B, _ = nplr(init, N)
    half = N // 2
    C = torch.randn(channels, H, half, dtype=c128, generator=_gen())
    dt = torch.tensor([0.01, 0.1, 0.7], dtype=torch.float64)[:H]

    def per_channel(x):  # (..., N) -> first half of the modes, copied for each of H channels
        return x[..., :half].unsqueeze(-2).expand(*x.shape[:-1], H, half)

    return dt, per_channel(Lambda), per_channel(P), per_channel(B), C


def _dense_dplr(dt, Lambda, P, B, C_tilde, L):
    """The DPLR SSM as dense full-state matrices, C recovered from C̃ = C (I - Ā^L)."""
    P = both_halves(P)
    A = torch.diag_embed(both_halves(Lambda)) - torch.einsum("rhm,rhn->hmn", P, P.conj())
    dA, dB = discretize_dense("bilinear", dt, A, both_halves(B))
    I = torch.eye(A.shape[-1], dtype=c128)
    inv = torch.linalg.inv(I - torch.linalg.matrix_power(dA, L))
    return dA, dB, torch.einsum("chm,hmn->chn", both_halves(C_tilde), inv)


@pytest.mark.parametrize("init", ["legs", "legt"])  # rank 1 and rank 2 Woodbury
@pytest.mark.parametrize("L", [37, 50])  # odd, and even (the ω = -1 node)
def test_s4_kernel_equals_dense_recurrence(init, L, tiny_chunks):
    dt, Lambda, P, B, C = _dplr_params(init)
    K = s4_kernel(dt, Lambda, P, B, C, L)
    dA, dB, dC = _dense_dplr(dt, Lambda, P, B, C, L)
    torch.testing.assert_close(K, ssm_kernel_ref(dA, dB, dC, L), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_s4d_kernel_equals_dense_recurrence(disc):
    H, N, L = 3, 8, 37
    Lambda, B = diag_init("diag-inv", N)
    A, B = Lambda.expand(H, N // 2), B.expand(H, N // 2)
    C = torch.randn(2, H, N // 2, dtype=c128, generator=_gen())
    dt = torch.tensor([0.01, 0.1, 0.7], dtype=torch.float64)
    K = s4d_kernel(dt, A, B, C, L, disc)
    A_dense = torch.diag_embed(both_halves(A))
    dA, dB = discretize_dense(disc, dt, A_dense, both_halves(B))  # ZOH via matrix_exp
    torch.testing.assert_close(K, ssm_kernel_ref(dA, dB, both_halves(C), L), atol=1e-12, rtol=1e-10)
    dA_diag, _ = discretize_diag(disc, dt, A, B)
    torch.testing.assert_close(torch.diagonal(dA, dim1=-2, dim2=-1)[..., : N // 2], dA_diag)


def test_fft_conv_equals_recurrence():
    H, N, L = 3, 8, 29
    Lambda, B = diag_init("diag-lin", N)
    A, B = Lambda.expand(H, N // 2), B.expand(H, N // 2)
    C = torch.randn(1, H, N // 2, dtype=c128, generator=_gen())
    dt = torch.full((H,), 0.05, dtype=torch.float64)
    u = torch.randn(2, H, L, dtype=torch.float64, generator=_gen(1))
    dA, dB = discretize_diag("zoh", dt, A, B)
    y_scan = ssm_scan(dA, dB, 2 * C, u)  # one mode per pair: y = 2 Re(C x)
    torch.testing.assert_close(fft_conv(u, s4d_kernel(dt, A, B, C, L)), y_scan)


def test_two_sided_conv_definition():
    """y_t = Σ_{s≤t} K0[t-s] u_s + Σ_{s>t} K1[s-t-1] u_s, written as a double loop."""
    H, L = 2, 9
    g = _gen()
    u = torch.randn(1, H, L, dtype=torch.float64, generator=g)
    K0 = torch.randn(H, L, dtype=torch.float64, generator=g)
    K1 = torch.randn(H, L, dtype=torch.float64, generator=g)
    y = fft_conv(u, two_sided_kernel(K0[None], K1[None]))[0, 0]
    y_loop = torch.zeros(H, L, dtype=torch.float64)
    for t in range(L):
        for s in range(L):
            y_loop[:, t] += (K0[:, t - s] if s <= t else K1[:, s - t - 1]) * u[0, :, s]
    torch.testing.assert_close(y, y_loop)


@pytest.mark.parametrize("L", [1, 2, 7, 31, 744])
def test_causal_fft_conv_is_the_direct_convolution(L: int):
    """y_t = Σ_{s ≤ t} K_{t−s} u_s at lengths whose FFT size is not 2L (2L − 1 rounded up)."""
    g = torch.Generator().manual_seed(L)
    u = torch.randn(2, 3, L, dtype=torch.float64, generator=g)
    K = torch.randn(1, 3, L, dtype=torch.float64, generator=g)
    direct = torch.stack(
        [(K[0, :, : t + 1].flip(-1) * u[..., : t + 1]).sum(-1) for t in range(L)], dim=-1
    )
    torch.testing.assert_close(fft_conv(u, K)[:, 0], direct, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("L", [1, 5, 64, 131])
def test_fast_fft_conv_equals_the_reference_in_values_and_gradients(L: int, two_sided: bool):
    """The hand-written backward (correlations of summed spectra) against autograd through
    torch.fft, float64, C = 2 channels, odd and even FFT lengths."""
    g = torch.Generator().manual_seed(L)
    u = torch.randn(3, 4, L, dtype=torch.float64, generator=g, requires_grad=True)
    K = torch.randn(2, 4, 2 * L if two_sided else L, dtype=torch.float64, generator=g)
    K.requires_grad_(True)
    y_fast, y_ref = fft_conv(u, K), fft_conv_ref(u, K)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-12, atol=1e-12)
    dy = torch.randn(y_ref.shape, dtype=torch.float64, generator=g)
    grads_fast = torch.autograd.grad(y_fast, (u, K), dy)
    grads_ref = torch.autograd.grad(y_ref, (u, K), dy)
    for fast, ref in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("two_sided", [False, True])
def test_with_skip_adds_D_u(two_sided: bool):
    g = torch.Generator().manual_seed(1)
    u = torch.randn(2, 3, 10, dtype=torch.float64, generator=g)
    K = torch.randn(2, 3, 20 if two_sided else 10, dtype=torch.float64, generator=g)
    D = torch.randn(2, 3, dtype=torch.float64, generator=g)
    y = fft_conv_ref(u, K) + D[..., None] * u[:, None]
    torch.testing.assert_close(fft_conv(u, with_skip(K, D)), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L_kernel", [6, 12])
def test_fast_fft_conv_passes_gradcheck(L_kernel: int):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 2, 6, dtype=torch.float64, generator=g, requires_grad=True)
    K = torch.randn(1, 2, L_kernel, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(fft_conv, (u, K))


def test_fast_length_is_the_smallest_5_smooth_number_not_below_n():
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 600):
        assert fast_length(n) == next(m for m in range(n, 2 * n + 1) if smooth(m))


def test_fft_conv_rejects_wrong_kernel_length():
    with pytest.raises(ValueError, match="must be L = 8 or 2L = 16"):
        fft_conv(torch.zeros(1, 2, 8), torch.zeros(1, 2, 5))


def test_c_tilde_doubling_and_inverse():
    """C̃(L) (I + Ā^L) = C̃(2L) and C̃ (I - Ā^L)⁻¹ = C, on the dense DPLR SSM (float64)."""
    dt, Lambda, P, B, C = _dplr_params("legs")
    dA, dB = dplr_dense(dt, Lambda, P, B)
    dA_L = torch.linalg.matrix_power(dA, 16)
    C_tilde = truncate_C(C, dA_L)
    doubled = double_C(C_tilde, dA_L)
    torch.testing.assert_close(doubled, truncate_C(C, dA_L @ dA_L))
    torch.testing.assert_close(untruncate_C(C_tilde, dA_L), both_halves(C))
    K = s4_kernel(dt, Lambda, P, B, doubled, 32)
    torch.testing.assert_close(
        K, ssm_kernel_ref(dA, dB, both_halves(C), 32), atol=1e-12, rtol=1e-10
    )

"""Kernel options follow the official semantics: C̃ derived from the drawn C, the length grown on
demand by doubling, the generation options (n_ssm, rank, Δ and Re Λ transforms, tolerance, B
clip, deterministic init, lr/wd rules), a step cache that follows the parameters, and YAML keys
that are exactly constructor arguments. CPU, float64 where values are compared, ~2 s."""

import inspect
import math
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from s4lab.models import S4DKernel, S4Kernel
from s4lab.models.ssm_kernel import as_complex
from s4lab.ssm.fftconv import fft_conv
from s4lab.ssm.hippo import nplr
from s4lab.ssm.init import init_s4, init_s4d
from s4lab.ssm.reference import both_halves

H, N = 4, 8
KERNEL_CONFIGS = Path(__file__).parents[1] / "configs" / "model" / "layer" / "kernel"


def _s4(seed: int = 0, **kwargs) -> S4Kernel:
    torch.manual_seed(seed)
    return S4Kernel(**{"d_model": H, "d_state": N, "channels": 2, "n_ssm": 2} | kwargs)


@pytest.mark.parametrize("init", ["legs", "fout"])
def test_c_tilde_at_init_is_derived_from_the_drawn_C(init):
    """C̃ = C (I - Ā^L) at L = l_max for the C the constructor drew (row form of (I - Ā^L)* C)."""
    l_max = 64
    torch.manual_seed(0)
    drawn = init_s4(init, N, 1, H, 2, 2, 1e-3, 1e-1, None, False)
    kernel = _s4(init=init, l_max=l_max).double()
    dA = kernel.ssm_matrices()[0]  # (H, N, N), both halves of each pair
    I = torch.eye(N, dtype=torch.complex128)
    C = both_halves(drawn.C)  # (channels, H, N)
    C_tilde = torch.einsum("chm,hmn->chn", C, I - torch.linalg.matrix_power(dA, l_max))
    torch.testing.assert_close(as_complex(kernel.C), C_tilde[..., : N // 2], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(C_tilde[..., N // 2 :], C_tilde[..., : N // 2].conj())
    torch.testing.assert_close(kernel.ssm_matrices()[2], C, rtol=1e-5, atol=1e-6)  # C recovered
    # The same derivation in float64 end to end: the float32 storage above rounds C̃ to ~1e-7.
    kernel.l_kernel = 0
    with torch.no_grad():
        kernel.C.copy_(torch.view_as_real(drawn.C))
    kernel.attune(l_max)
    torch.testing.assert_close(as_complex(kernel.C), C_tilde[..., : N // 2], rtol=1e-12, atol=1e-12)


def test_without_l_max_the_length_doubles_on_demand():
    """l_max=None: C̃ is set at the first call's length, then doubled: 16 -> 32 -> 64 for L = 50,
    the same kernel as one built with l_max = 64 from the same draws."""
    grown = _s4(l_max=None).double()
    assert int(grown.l_kernel) == 0
    with torch.inference_mode():  # Lightning's sanity check may make the first call
        grown(16)
    assert int(grown.l_kernel) == 16
    K = grown(50)
    K.sum().backward()  # C̃ stayed a normal trainable tensor
    assert int(grown.l_kernel) == 64
    direct = _s4(l_max=64).double()
    torch.testing.assert_close(K, direct(50), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        grown.ssm_matrices()[2], direct.ssm_matrices()[2], rtol=1e-5, atol=1e-6
    )
    grown(20, rate=4.0)  # needs r·L = 80 > 64
    assert int(grown.l_kernel) == 128


def test_n_ssm_tiles_A_B_P_and_keeps_dt_and_C_per_channel():
    kernel = _s4(n_ssm=2, l_max=16)
    assert kernel.A_real.shape == (2, N // 2) and kernel.P.shape == (1, 2, N // 2, 2)
    assert kernel.B.shape == (2, N // 2, 2)
    assert kernel.inv_dt.shape == (H,) and kernel.C.shape == (2, H, N // 2, 2)
    with torch.no_grad():
        kernel.A_imag[1] += 1.0
    Lambda = kernel.Lambda()
    torch.testing.assert_close(Lambda[2:], Lambda[:2])  # channel h uses copy h mod n_ssm
    assert not torch.allclose(Lambda[0], Lambda[1])
    assert _s4(n_ssm=None, l_max=16).A_real.shape == (H, N // 2)  # None: one copy per channel


def test_extra_rank_adds_zero_rows_that_leave_the_kernel_unchanged():
    r1, r3 = _s4(l_max=32).double(), _s4(l_max=32, rank=3).double()
    assert r3.P.shape[0] == 3 and not r3.P[1:].any()
    torch.testing.assert_close(r3(32), r1(32))


def test_dt_transforms_give_the_same_initial_dt():
    exp, softplus = _s4(l_max=16), _s4(l_max=16, dt_transform="softplus")
    torch.testing.assert_close(softplus.dt(), exp.dt())
    torch.testing.assert_close(softplus.inv_dt, torch.log(torch.expm1(exp.dt())))
    assert ((exp.dt() >= 1e-3) & (exp.dt() <= 1e-1)).all()


@pytest.mark.parametrize("transform", ["exp", "softplus", "sigmoid", "relu", "none"])
def test_real_transforms_give_the_same_initial_Lambda(transform):
    kernel = _s4(l_max=16, real_transform=transform)
    floor = 1e-4 if transform == "relu" else 0.0  # relu keeps Re Λ <= -1e-4 (official HEAD)
    real = torch.full((H, N // 2), -0.5 - floor)
    torch.testing.assert_close(kernel.Lambda().real, real)


@pytest.mark.parametrize("tol", [1e-3, 1e-4])
def test_real_tolerance_moves_zero_real_parts(tol):
    """FouT's Λ has Re = 0: the init clamps it to -tol (v3 S4: 1e-3; HEAD: 1e-4)."""
    kernel = _s4(l_max=16, init="fout", real_tolerance=tol)
    torch.testing.assert_close(kernel.Lambda().real, torch.full((H, N // 2), -tol))


def test_B_clip_clamps_imaginary_part_of_B():
    B = nplr("legs", 64)[2][:32]
    assert B.imag.abs().max() > 2  # HiPPO-LegS B̃ has |Im| up to ~4 at N = 64
    kernel = S4Kernel(d_model=2, d_state=64, n_ssm=1, B_clip=2.0)
    clipped = as_complex(kernel.B)[0].to(torch.complex128)
    torch.testing.assert_close(clipped.real, B.real, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(clipped.imag, B.imag.clamp(-2, 2), rtol=1e-6, atol=1e-6)
    unclipped = as_complex(S4Kernel(d_model=2, d_state=64).B)[0]
    torch.testing.assert_close(unclipped.to(torch.complex128), B, rtol=1e-6, atol=1e-6)


def test_deterministic_init_is_the_official_one():
    """log Δ = exp(linspace(log dt_min, log dt_max)) as the official computes it; C = V* e_1."""
    kernel = S4Kernel(d_model=H, d_state=N, deterministic=True).double()
    log_dt = torch.exp(torch.linspace(math.log(1e-3), math.log(1e-1), H, dtype=torch.float64))
    torch.testing.assert_close(kernel.dt(), torch.exp(log_dt), rtol=1e-6, atol=0)
    V = nplr("legs", N)[3]
    C = V.conj().T[:, 0]  # V* e_1, all N modes
    torch.testing.assert_close(kernel.ssm_matrices()[2], C.expand(1, H, N), rtol=1e-6, atol=1e-7)
    s4d = S4DKernel(d_model=H, d_state=N, deterministic=True)
    e_1 = torch.zeros(N // 2, dtype=torch.complex64)
    e_1[0] = 1
    torch.testing.assert_close(as_complex(s4d.C), e_1.expand(1, H, -1))
    draws = torch.get_rng_state()
    S4Kernel(d_model=H, d_state=N, deterministic=True)
    assert torch.equal(torch.get_rng_state(), draws)  # nothing random


def test_s4d_draws_in_the_official_order():
    torch.manual_seed(0)
    dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    C = torch.randn(1, H, N // 2, dtype=torch.complex64)
    torch.manual_seed(0)
    x = init_s4d("diag-lin", N, H, 1, 1, 1e-3, 1e-1, None, False)
    torch.testing.assert_close(x.dt, dt.double())
    torch.testing.assert_close(x.C, C.to(torch.complex128))


def test_scalar_and_dict_lr_wd_rules():
    """HEAD: a float lr covers dt, A, B, P and C; a float wd all but C; a dict names groups
    (None = global) and P follows A. v3's rule is a dict that leaves C out."""
    kernel = _s4(l_max=16, lr=1e-3, wd=0.1)
    for name in ("inv_dt", "A_real", "A_imag", "P", "B"):
        assert getattr(kernel, name)._optim == {"lr": 1e-3, "weight_decay": 0.1}, name
    assert kernel.C._optim == {"lr": 1e-3}
    v3 = {"dt": 1e-3, "A": 1e-3, "B": 1e-3, "C": None}
    kernel = _s4(l_max=16, lr=v3, wd={"dt": 0.0, "A": 0.0, "B": 0.0, "C": None})
    for name in ("inv_dt", "A_real", "A_imag", "P", "B"):
        assert getattr(kernel, name)._optim == {"lr": 1e-3, "weight_decay": 0.0}, name
    assert not hasattr(kernel.C, "_optim")  # C: the optimizer's lr and weight decay
    kernel = _s4(l_max=16, lr={"A": 2e-3}, wd={"C": 0.0})
    assert kernel.P._optim == kernel.A_real._optim == {"lr": 2e-3}
    assert kernel.C._optim == {"weight_decay": 0.0}
    assert not hasattr(kernel.B, "_optim")
    kernel = _s4(l_max=16, lr={"A": 0.0, "dt": 1e-3})
    assert {"A_real", "A_imag", "P"} <= set(dict(kernel.named_buffers()))


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (S4Kernel, {"dt_transform": "foo"}, "unknown dt_transform 'foo'; accepted: exp, softplus"),
        (S4DKernel, {"real_transform": "tanh"}, "real_transform 'tanh'; accepted: exp, softplus"),
        (S4Kernel, {"n_ssm": 3}, "n_ssm = 3 must divide d_model = 4"),
        (S4DKernel, {"n_ssm": 0}, "n_ssm = 0 must divide d_model = 4"),
        (S4Kernel, {"init": "legt"}, "rank = 1 is invalid for init 'legt': accepted integers >= 2"),
        (S4Kernel, {"rank": 0}, "rank = 0 is invalid"),
        (S4Kernel, {"lr": {"P": 1e-3}}, r"lr keys \['P'\] unknown; accepted: A, B, C, dt"),
        (S4DKernel, {"wd": {"D": 0.0}}, r"wd keys \['D'\] unknown; accepted: A, B, C, dt"),
        (S4Kernel, {"wd": "high"}, "wd = 'high' must be a number, null, or a dict"),
        (S4Kernel, {"lr": {"A": "fast"}}, "lr.A = 'fast' must be a number or null"),
        (S4Kernel, {"B_clip": 0.0}, "B_clip = 0.0 must be positive or null"),
        (S4Kernel, {"real_tolerance": 0.0}, "real_tolerance = 0.0 must be positive"),
        (S4DKernel, {"deterministic": True, "dt_transform": "softplus"}, "needs dt_transform"),
        (S4Kernel, {"l_max": 0}, "l_max = 0 must be a positive length or null"),
    ],
)
def test_bad_options_name_the_option_and_what_is_accepted(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**{"d_model": H, "d_state": N} | kwargs)


@pytest.mark.parametrize("cls", [S4Kernel, S4DKernel])
def test_mode_era_options_are_gone(cls):
    parameters = inspect.signature(cls).parameters
    assert "mode" not in parameters and "log_dt" not in parameters
    if cls is S4Kernel:
        assert "disc" not in parameters  # S4 is bilinear, nothing to choose
        with pytest.raises(TypeError, match="disc"):
            S4Kernel(d_model=H, disc="zoh")


@pytest.mark.parametrize("cls", [S4Kernel, S4DKernel])
def test_step_cache_follows_optimizer_steps_and_dtype(cls):
    """setup_step, an optimizer step, then step() equals the convolution of the new kernel;
    and after .double() the step runs in complex128 with float64 accuracy."""
    torch.manual_seed(0)
    kernel = cls(d_model=H, d_state=N, l_max=24, channels=2, lr=1e-3)
    u = torch.randn(2, H, 24)

    def scan(module: torch.nn.Module, u: torch.Tensor) -> torch.Tensor:
        state = module.default_state(u.shape[0])
        ys = []
        for k in range(u.shape[-1]):
            y, state = module.step(u[..., k], state)
            ys.append(y)
        return torch.stack(ys, dim=-1)  # (B, C, H, L)

    kernel.setup_step()
    scan(kernel, u[..., :3])
    optimizer = torch.optim.SGD(kernel.parameters(), lr=1.0)
    kernel(24).pow(2).sum().backward()
    optimizer.step()  # in-place updates of every parameter
    with torch.no_grad():
        torch.testing.assert_close(scan(kernel, u), fft_conv(u, kernel(24)), rtol=1e-3, atol=1e-4)
    kernel.double()
    u = u.double()
    y = scan(kernel, u)
    assert y.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(y, fft_conv(u, kernel(24)), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(("name", "cls"), [("s4", S4Kernel), ("s4d", S4DKernel)])
def test_kernel_yaml_keys_are_constructor_arguments(name, cls):
    cfg = OmegaConf.load(KERNEL_CONFIGS / f"{name}.yaml")
    assert cfg._target_ == f"{cls.__module__}.{cls.__name__}"
    keys = set(cfg) - {"_target_", "_partial_"}
    arguments = set(inspect.signature(cls).parameters) - {"d_model", "l_max", "channels"}
    assert keys == arguments  # every option listed, nothing else
    kernel = instantiate(cfg)(d_model=H, l_max=16, channels=2)
    assert kernel(16).shape == (2, H, 16)
    assert not hasattr(kernel.C, "_optim")  # v3: C at the optimizer's lr and weight decay


def test_option_of_the_other_kernel_fails_at_compose(compose_train):
    """Struct mode: S4 has no `disc`, so overriding it fails at compose and names the key."""
    with pytest.raises(ConfigCompositionException, match="disc"):
        compose_train("model.layer.kernel.disc=zoh")
    cfg = compose_train("model.layer.kernel.n_ssm=2", "model.layer.kernel.lr=0.002")
    kernel = instantiate(cfg.model.layer.kernel)(d_model=H, l_max=16, channels=1)
    assert kernel.n_ssm == 2 and kernel.C._optim == {"lr": 0.002}

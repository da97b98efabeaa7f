"""Choice of the implementation behind the Cauchy and Vandermonde kernels, and their chunking.

`naive` is pure PyTorch (chunked, custom backward, runs anywhere) and is what `auto` picks on
CPU; `triton` (s4lab.ssm.cauchy_triton, vandermonde_triton) is what `auto` picks for CUDA tensors
when triton imports. On CPU `triton` runs only in Triton's interpreter, for tests:
TRITON_INTERPRET=1 must be in the environment before triton is first imported (triton.jit reads
it when decorating, and triton's own tl.zeros, tl.sum are decorated at import). `keops` is
opt-in: pykeops compiles on first use and has crashed generating GPU code on CUDA 13.
"""

from __future__ import annotations

import functools
import logging
import os
from types import ModuleType
from typing import Literal, get_args

import torch
from torch import Tensor

Backend = Literal["auto", "naive", "keops", "triton"]
BACKENDS: tuple[str, ...] = get_args(Backend)
CHUNK_ELEMENTS = 1 << 21  # complex entries of one (H, N, chunk) block of the naive backends

KEOPS_FIX = (
    "install it with `pip install 's4lab[keops]'` (pykeops needs g++ and cmake), or use "
    "backend='naive', which runs everywhere"
)
TRITON_FIX = (
    "run on a CUDA device, start the process with TRITON_INTERPRET=1 (read when triton is first "
    "imported) to use Triton's CPU interpreter (slow; for tests), or use backend='naive'"
)

_log = logging.getLogger(__name__)
_logged: set[str] = set()


def resolve_backend(backend: str, device: torch.device | None = None) -> str:
    """Validate a requested backend and map it to the one that runs on `device`.

    With a device (the kernel functions pass their tensors'): 'auto' -> 'triton' for CUDA
    tensors when triton imports, else 'naive'; an explicit 'triton' on a non-CUDA device needs
    TRITON_INTERPRET=1. The result is logged once per process and backend. Without a device (a
    module's constructor checking its option) 'auto' is returned as is, to be resolved per call,
    so a module built on CPU and moved to a GPU still gets the fast path.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    if backend == "keops":
        keops()
    if backend == "triton" and (err := _triton_import_error()) is not None:
        raise ImportError(
            f"backend='triton' needs triton, which failed to import ({err}); install it with "
            "`pip install triton` (CUDA builds of PyTorch ship it), or use backend='naive'"
        ) from err
    if device is None:
        return backend
    if backend == "auto":
        fast = device.type == "cuda" and _triton_import_error() is None
        backend = "triton" if fast else "naive"
    if backend == "triton" and device.type != "cuda" and not triton_interpreted():
        raise RuntimeError(
            f"backend='triton' got tensors on {device.type}, where Triton kernels only run in "
            f"its interpreter; {TRITON_FIX}"
        )
    if backend not in _logged:
        _logged.add(backend)
        _log.info("Cauchy/Vandermonde kernels: backend %r (first used on %s)", backend, device)
    return backend


def chunks(per_position: int, L: int) -> list[slice]:
    """Slices of range(L) whose blocks of `per_position` entries each stay under CHUNK_ELEMENTS."""
    size = max(1, CHUNK_ELEMENTS // max(1, per_position))
    return [slice(i, min(i + size, L)) for i in range(0, L, size)]


def keops() -> ModuleType:
    """Import pykeops.torch or raise ImportError saying what to install."""
    try:
        import pykeops.torch
    except Exception as err:  # pykeops raises assorted errors when its toolchain is broken
        raise ImportError(
            f"backend='keops' needs pykeops, which failed to import ({err}); {KEOPS_FIX}"
        ) from err
    return pykeops.torch


@functools.cache
def _triton_import_error() -> Exception | None:
    """Import triton once (auto asks on every call); the error it raised, or None."""
    try:
        import triton  # noqa: F401
    except Exception as err:  # a broken triton install raises more than ImportError
        return err
    return None


def triton_interpreted() -> bool:
    """Whether TRITON_INTERPRET is set, so triton.jit builds kernels for its CPU interpreter."""
    try:
        from triton import knobs  # triton >= 3.4
    except ImportError:
        return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    return bool(knobs.runtime.interpret)


def as_real_pairs(x: Tensor) -> Tensor:
    """Complex tensor -> contiguous (..., 2) real view for Triton, any lazy conjugation resolved."""
    return torch.view_as_real(x.resolve_conj().contiguous())


def keops_failed(err: Exception) -> RuntimeError:
    """The error raised when a pykeops kernel fails to compile or run."""
    return RuntimeError(
        f"pykeops could not compile or run its kernel ({type(err).__name__}: {err}); {KEOPS_FIX}"
    )

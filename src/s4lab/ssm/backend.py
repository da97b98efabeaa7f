"""Choice of the implementation behind the Cauchy and Vandermonde kernels, and their chunking.

`naive` is pure PyTorch (chunked, custom backward, runs anywhere) and is what `auto` picks;
`keops` is opt-in: pykeops compiles on first use and has crashed generating GPU code on CUDA 13.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal, get_args

Backend = Literal["auto", "naive", "keops"]
BACKENDS: tuple[str, ...] = get_args(Backend)
CHUNK_ELEMENTS = 1 << 21  # complex entries of one (H, N, chunk) block of the naive backends

KEOPS_FIX = (
    "install it with `pip install 's4lab[keops]'` (pykeops needs g++ and cmake), or use "
    "backend='naive', which runs everywhere"
)


def resolve_backend(backend: str) -> str:
    """Map a requested backend to the one that runs: 'auto' -> 'naive'. Validates the name."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    if backend == "keops":
        keops()
    return "naive" if backend == "auto" else backend


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


def keops_failed(err: Exception) -> RuntimeError:
    """The error raised when a pykeops kernel fails to compile or run."""
    return RuntimeError(
        f"pykeops could not compile or run its kernel ({type(err).__name__}: {err}); {KEOPS_FIX}"
    )

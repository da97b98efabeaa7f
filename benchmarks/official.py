"""The official S4 layer (state-spaces/s4, the anchor) for side-by-side rows, imported from a path.

    sys.path.insert(0, PATH); from models.s4 import s4 as official; official.has_pykeops = False
(/work/shared/anchor/official-s4/README.md). Its CUDA extension (`structured_kernels`, built
from PATH/extensions/kernels) is used when importable; otherwise backend "cuda" falls back to
the naive kernels, which `official_backend` reports. Only imported, never copied.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch


def official_problem(path: Path | None) -> str | None:
    """Why the official layer cannot be imported from `path`, or None if it can."""
    if path is None:
        return "no --official PATH given: the official layer's rows are skipped"
    if not (path / "models" / "s4" / "s4.py").is_file():
        return f"--official {path}: no models/s4/s4.py there: the official layer's rows are skipped"
    for module in ("einops", "scipy"):
        if importlib.util.find_spec(module) is None:
            return (
                f"the official layer needs {module}, which is not installed here (pip install "
                f"{module}; s4lab itself does not need it): the official layer's rows are skipped"
            )
    try:
        load_official(path)
    except Exception as error:
        return f"official layer not importable from {path} ({type(error).__name__}: {error})"
    return None


def load_official(path: Path) -> ModuleType:
    """The official `models.s4.s4` module, with pykeops kept out of the measurement."""
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    # pykeops 2.3 crashed generating GPU code on CUDA 13: keep its import out too (it is slow)
    sys.modules.setdefault("pykeops", None)
    from models.s4 import s4 as official

    official.has_pykeops = False
    return official


def official_backend(official: ModuleType, requested: str, device: torch.device) -> str:
    """The kernels the official layer runs for `requested` on `device` (pykeops is off)."""
    if requested == "cuda" and official.has_cuda_extension and device.type == "cuda":
        return "cuda"
    return "naive"

"""s4lab: S4 and its relatives on the long-range benchmarks. `s4lab.load(run)` -> a trained task.

`load` is imported on first use, so `import s4lab.ssm` (the math alone) does not pull in
Lightning and Hydra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from s4lab.checkpoint import load

        return load
    raise AttributeError(f"module 's4lab' has no attribute {name!r}")

"""Positive reparameterizations of Δ and -Re Λ, and their inverses for the initialization.

    Δ = f(inv_dt),   Re Λ = -f(A_real),   f ∈ {exp, softplus, sigmoid, relu, none}
    init: stored = f⁻¹(max(value, tol))      the clamp keeps f⁻¹ finite where Re Λ = 0 (legt, fout)
relu adds 1e-4 to its output so that Re Λ stays negative (official HEAD `param_transform`).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Literal["exp", "softplus", "sigmoid", "relu", "none"]
DtTransform = Literal["exp", "softplus"]
TRANSFORMS: tuple[str, ...] = get_args(Transform)
DT_TRANSFORMS: tuple[str, ...] = get_args(DtTransform)
RELU_FLOOR = 1e-4


def check_transform(option: str, value: str, accepted: tuple[str, ...]) -> None:
    """ValueError naming `option` unless `value` is one of `accepted`."""
    if value not in accepted:
        raise ValueError(f"unknown {option} {value!r}; accepted: {', '.join(accepted)}")


def positive(x: Tensor, transform: str) -> Tensor:
    """f(x) for the stored parameter x (elementwise)."""
    if transform == "exp":
        return torch.exp(x)
    if transform == "softplus":
        return F.softplus(x)
    if transform == "sigmoid":
        return torch.sigmoid(x)
    if transform == "relu":
        return F.relu(x) + RELU_FLOOR
    if transform == "none":
        return x
    raise ValueError(f"unknown transform {transform!r}; accepted: {', '.join(TRANSFORMS)}")


def positive_inverse(y: Tensor, transform: str, tol: float) -> Tensor:
    """f⁻¹(max(y, tol)): the stored parameter whose f is y (y clamped below at tol)."""
    y = y.clamp(min=tol)
    if transform == "exp":
        return torch.log(y)
    if transform == "softplus":
        return torch.log(torch.expm1(y))
    if transform == "sigmoid":
        return torch.logit(y)
    if transform in ("relu", "none"):
        return y
    raise ValueError(f"unknown transform {transform!r}; accepted: {', '.join(TRANSFORMS)}")

"""Gradient clipping and diagnostics on a flat buffer or a list of arrays (PyTorch's semantics)."""
from __future__ import annotations

import math

import numpy as np

from fastgrad._checks import as_float_array, as_scalar
from fastgrad.kernels import grad_utils as K


def _grad_list(grads, writeable: bool):
    items = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    out = []
    for i, g in enumerate(items):
        name = f"grads[{i}]" if isinstance(grads, (list, tuple)) else "grads"
        if writeable:
            if not isinstance(g, np.ndarray) or g.dtype not in (np.float32, np.float64):
                got = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(f"{name} must be a float32 or float64 numpy array, got {got}")
            if not g.flags.writeable or not g.flags.c_contiguous:
                raise ValueError(f"{name} must be writeable and C-contiguous (it is changed in place)")
        else:
            g = as_float_array(g, name, min_size=0)
        out.append(g.reshape(-1))
    return out


def _norm_type(norm_type) -> float:
    if isinstance(norm_type, str) and norm_type == "inf":
        return math.inf
    return as_scalar(norm_type, "norm_type", low=0.0, low_open=True, allow_inf=True)


def clip_grad_norm(grads, max_norm, norm_type=2.0) -> float:
    """Scale ``grads`` in place so that their joint norm is at most ``max_norm``; return the norm before.

    ``total = ||concat(grads)||_p``, ``g *= min(1, max_norm / (total + 1e-6))`` as
    ``torch.nn.utils.clip_grad_norm_``; ``norm_type`` > 0 or ``inf`` (max |g|). A NaN/inf
    norm is returned and propagates into ``grads`` as in PyTorch.
    ``grads``: a float array (C-contiguous, writeable) or a list of them.
    Raises ``ValueError`` for max_norm < 0, norm_type <= 0 or unsuitable arrays.
    """
    max_norm = as_scalar(max_norm, "max_norm", low=0.0)
    p = _norm_type(norm_type)
    flat = _grad_list(grads, writeable=True)
    if len(flat) == 1:
        return float(K.clip_grad_norm(flat[0], max_norm, p))
    sums = [K.power_sum(g, p) for g in flat if g.size]
    if math.isinf(p):
        acc = math.nan if any(map(math.isnan, sums)) else max(sums, default=0.0)
    else:
        acc = sum(sums)
    total = float(K.finish_norm(acc, p))
    coef = K.clip_coef(total, max_norm)
    if coef != 1.0:
        for g in flat:
            K.scale_inplace(g, coef)
    return total


def clip_grad_value(grads, clip_value) -> None:
    """Clamp ``grads`` in place to ``[-clip_value, clip_value]`` (NaN stays NaN).

    ``grads``: a float array (C-contiguous, writeable) or a list of them.
    Raises ``ValueError`` for clip_value < 0 or unsuitable arrays.
    """
    clip_value = as_scalar(clip_value, "clip_value", low=0.0)
    for g in _grad_list(grads, writeable=True):
        if g.size:
            K.clip_grad_value(g, clip_value)


def grad_stats(grads) -> dict:
    """Numbers for diagnosing vanishing/exploding gradients and dead units.

    Returns ``{"size", "l2_norm", "max_abs", "mean_abs", "frac_zero", "frac_nonfinite"}``;
    the norm, max and mean are over the finite entries (NaN when none is finite), the
    fractions over all entries. ``grads``: an array or a list of arrays.
    """
    sums = np.zeros(K.N_STATS)
    part = np.empty(K.N_STATS)
    size = 0
    for g in _grad_list(grads, writeable=False):
        if g.size:
            K.grad_stats_sums(g, part)
            sums[[0, 2, 3, 4]] += part[[0, 2, 3, 4]]
            sums[1] = max(sums[1], part[1])
            size += g.size
    n_finite = size - sums[4]
    return {"size": size,
            "l2_norm": math.sqrt(sums[0]) if n_finite else math.nan,
            "max_abs": float(sums[1]) if n_finite else math.nan,
            "mean_abs": float(sums[2] / n_finite) if n_finite else math.nan,
            "frac_zero": float(sums[3] / size) if size else math.nan,
            "frac_nonfinite": float(sums[4] / size) if size else math.nan}

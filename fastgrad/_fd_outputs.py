"""Checks of what a user's ``f`` returns, shared by :mod:`fastgrad.diff`'s wrappers and the Python
evaluation loops of :mod:`fastgrad.reference.finite_diff` (which check every value they store)."""
from __future__ import annotations

import numpy as np


def scalar_output(value, name="f") -> float:
    """``value`` as a float, else ``ValueError`` naming ``name``, the expected and the received shape."""
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must return a real scalar (shape ()), got {type(value).__name__} "
                         f"of shape {arr.shape} and dtype {arr.dtype}")
    return float(arr)


def vector_output(value, name, size=None) -> np.ndarray:
    """``value`` as a float64 1-D array (a scalar counts as size 1) of ``size`` entries when given,
    else ``ValueError`` naming ``name``, the expected and the received shape."""
    arr = np.asarray(value)
    bad_size = size is not None and (arr.size != size or (arr.ndim == 0 and size != 1))
    if arr.ndim > 1 or arr.dtype.kind not in "fiub" or bad_size:
        want = f"shape ({size},)" if size is not None else "a scalar or a 1-D array"
        raise ValueError(f"{name} must return real values of {want}, got {type(value).__name__} "
                         f"of shape {arr.shape} and dtype {arr.dtype}")
    return arr.astype(np.float64).reshape(-1)

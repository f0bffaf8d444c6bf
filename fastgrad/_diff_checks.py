"""Validation and dispatch helpers of :mod:`fastgrad.diff`: which path evaluates ``f``, how many
parallel blocks, and the checks of ``x``, ``h``, options and ``f``'s outputs."""
from __future__ import annotations

import numpy as np

from fastgrad import _stencils as st
from fastgrad._checks import as_float_array, as_int, as_scalar, check_choice
from fastgrad._jit import get_numba_threads
from fastgrad.kernels import finite_diff as _compiled
from fastgrad.reference import finite_diff as _python

# Below this much work (items x evaluations x n) a parallel region costs more than it saves.
PARALLEL_WORK = 200_000


def is_compiled(f) -> bool:
    """True for a Numba dispatcher (``numba.njit`` function), by duck typing."""
    return callable(f) and hasattr(f, "py_func") and hasattr(f, "signatures")


def ops(f):
    """The compiled kernels for a compiled ``f``, else their Python twins."""
    return _compiled if is_compiled(f) else _python


def eval_blocks(items: int, work_per_item: int) -> int:
    """Blocks for a parallel evaluation: 1 (serial) when the work is too small to split."""
    threads = get_numba_threads()
    if threads < 2 or items < 2 or items * work_per_item < PARALLEL_WORK:
        return 1
    return min(items, 8 * threads)


def check_f(f, name="f"):
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def point(x, name="x") -> np.ndarray:
    x = as_float_array(x, name, ndim=1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite, got non-finite entries at {np.flatnonzero(~np.isfinite(x))[:5]}")
    return x


def scalar_output(value, name="f") -> float:
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must return a real scalar, got {type(value).__name__} "
                         f"of shape {arr.shape} and dtype {arr.dtype}")
    return float(arr)


def vector_output(value, name, size=None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim > 1 or arr.dtype.kind not in "fiub" or (size is not None and arr.shape != (size,)):
        want = f"shape ({size},)" if size is not None else "a scalar or a 1-D array"
        raise ValueError(f"{name} must return real values of {want}, got {type(value).__name__} "
                         f"of shape {arr.shape} and dtype {arr.dtype}")
    return arr.astype(np.float64).reshape(-1)


def steps(x: np.ndarray, h, exponent: float) -> np.ndarray:
    """Per-coordinate steps (float64, ``x``'s shape): the default rule, or ``h`` checked."""
    if h is None:
        return st.default_step(x, exponent).reshape(x.shape)
    if np.ndim(h) == 0:
        return np.full(x.shape, as_scalar(h, "h", low=0.0, low_open=True))
    arr = as_float_array(h, "h", dtype=np.float64)
    if arr.shape != x.shape:
        raise ValueError(f"h must be a scalar or have x's shape {x.shape}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("h must be finite and > 0 in every entry")
    return arr


def options(method, accuracy):
    check_choice(method, "method", st.METHODS)
    accuracy = as_int(accuracy, "accuracy")
    if accuracy not in st.ACCURACIES:
        raise ValueError(f"accuracy must be 2 or 4, got {accuracy}")
    return accuracy

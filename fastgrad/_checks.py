"""Validation and coercion for the public wrappers.

Compiled kernels trust their inputs (Numba does not check bounds), so every public
function passes its arguments through these helpers first. Each raises
``TypeError``/``ValueError`` naming the argument, what was expected and what was given.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return f"{type(x).__name__} {x!r}"[:120]


def as_float_array(x, name: str, ndim=None, dtype=None, min_size: int = 1) -> np.ndarray:
    """``x`` as a C-contiguous float32/float64 array.

    float32 and float64 keep their dtype; bool and integer input becomes float64
    (or ``dtype`` when given); complex, object and string input raise ``TypeError``.
    ``ndim`` (an int or a tuple of ints) checks the rank; ``min_size`` rejects empty
    arrays. Non-contiguous and read-only input is copied (:func:`kernel_array`). Finite values
    that a conversion to a narrower ``dtype`` (float64 to float32) would turn into inf raise
    ``ValueError`` naming ``name`` (instead of NumPy's overflow warning and an inf the caller
    would blame on the data).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a float array, got {_describe(x)}")
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind in "fiub":
        if dtype is not None:
            target = np.dtype(dtype)
        elif arr.dtype in FLOAT_DTYPES:
            target = arr.dtype
        else:
            target = np.dtype(np.float64)
    else:
        raise TypeError(f"{name} must hold real numbers (float32 or float64), got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got an array of shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if kind == "f" and arr.dtype.itemsize > target.itemsize:  # float64 into float32: finite values may overflow
        with np.errstate(over="ignore"):
            out = np.ascontiguousarray(arr, dtype=target)
        if np.isinf(out).any() and np.isfinite(arr[np.isinf(out)]).any():
            raise ValueError(f"{name} holds finite values beyond {target}'s range (|x| > "
                             f"{float(np.finfo(target).max):.4g}), which would become inf; scale the data or use float64")
        return out
    return kernel_array(arr, target)


def kernel_array(arr, dtype) -> np.ndarray:
    """``arr`` as a C-contiguous, writeable array of ``dtype``, copied only when it is not one:
    what the kernels take (they are compiled for writeable arrays: a read-only one would be a
    second compile, and kernels using the lane reductions fail to type for it)."""
    out = np.ascontiguousarray(arr, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def as_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as float32 or float64, else ``ValueError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of {name_a} {a.shape}, got {b.shape}")


def as_scalar(value, name: str, *, low=None, high=None, low_open=False, high_open=False,
              allow_inf: bool = False) -> float:
    """``value`` as a Python float in the given range, else ``TypeError``/``ValueError``.

    ``low``/``high`` bound the range, closed unless ``low_open``/``high_open``.
    """
    if not (type(value) is float or type(value) is int) and (  # (the common case skips the abstract-class checks)
            isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer))):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float64's range (10**400)
        if not allow_inf:
            raise ValueError(f"{name} must be finite in float64 (|{name}| <= {float(np.finfo(np.float64).max):.4g}), "
                             f"got an integer of {len(str(abs(int(value))))} digits") from None
        v = math.inf if value > 0 else -math.inf
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {v}")
    return v


# (smallest, largest) normal magnitude per float dtype: a value between them, or 0, passes
# check_in_dtype without rounding it (the common case costs no errstate; ~0.1 us, not 2).
_NORMAL_RANGE = {d: (float(np.finfo(d).tiny), float(np.finfo(d).max)) for d in FLOAT_DTYPES}
_NORMAL_RANGE.update({d.type: r for d, r in list(_NORMAL_RANGE.items())})


def check_in_dtype(quantities, dtype, where="the parameters' dtype") -> None:
    """``ValueError`` if a quantity that a kernel rounds to ``dtype`` changes its meaning there:
    ``quantities`` holds ``(label, value, keep_nonzero)``; the value must be finite there (no
    overflow), and with ``keep_nonzero`` a nonzero one must not round to 0. ``where`` names the
    dtype's owner in the message ("the parameters' dtype", "z's dtype").

    The kernels compute in the arrays' dtype: ``Adam(lr=1e39)`` or ``softplus(beta=1e300)`` is a
    finite float64 but inf in float32, and gives NaN (PyTorch raises on that overflow too);
    ``eps=1e-46`` is 0 in float32, where a division by it is a division by 0.
    """
    bounds = _NORMAL_RANGE.get(dtype)
    for label, value, keep_nonzero in quantities:
        if bounds is not None and (value == 0 or bounds[0] <= abs(value) <= bounds[1]):
            continue  # a normal number of dtype, or 0: finite, and nonzero stays nonzero
        info = np.finfo(dtype)
        with np.errstate(over="ignore", under="ignore"):
            rounded = np.dtype(dtype).type(value)
        if not np.isfinite(rounded):
            raise ValueError(f"{label} must be finite in {where} {np.dtype(dtype)} "
                             f"(at most {float(info.max):.4g}), got {value:.6g}")
        if keep_nonzero and value != 0 and rounded == 0:
            raise ValueError(f"{label} must be {'> 0' if value > 0 else '< 0'} in {where} {np.dtype(dtype)} "
                             f"(it rounds to 0 there), got {value:.6g}")


def in_dtype(value, name: str, dtype, where: str):
    """``value`` (a float that passed :func:`as_scalar`) as a scalar of ``dtype``, after
    :func:`check_in_dtype` (finite stays finite, nonzero stays nonzero)."""
    check_in_dtype([(name, value, True)], dtype, where)
    return np.dtype(dtype).type(value)


def as_int(value, name: str, *, low=None) -> int:
    """``value`` as a Python int >= ``low``, else ``TypeError``/``ValueError``."""
    if type(value) is int:  # the common case, without the abstract-class checks (0.1 us, not 1.5)
        v = value
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    else:
        v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of ``choices`` (strings), else ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def assign_into(buffer, value, name):
    """Copy ``value`` into ``buffer`` (a model's flat buffer or a view of it), after checking that
    it is a NumPy array of exactly ``buffer``'s shape and dtype; ``ValueError`` naming ``name``."""
    if value is buffer:
        return
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape {buffer.shape} and dtype {buffer.dtype} "
                         f"(it is copied into the model's buffer), got {type(value).__name__}")
    if value.dtype != buffer.dtype:
        raise ValueError(f"{name} must have dtype {buffer.dtype} (the model's), got {value.dtype}")
    if value.shape != buffer.shape:
        raise ValueError(f"{name} must have shape {buffer.shape}, got {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got an array with strides {value.strides}")
    np.copyto(buffer, value)

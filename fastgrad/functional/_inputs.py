"""Input coercion shared by the functional wrappers, on top of fastgrad._checks.

What it adds to ``as_float_array``:

* 0-d input keeps shape ``()`` (``np.ascontiguousarray`` would promote it to ``(1,)``);
* float16 input is computed in float32 and the results are returned as float16
  (fastgrad's kernels exist for float32 and float64 only; float32 holds every float16
  value exactly and rounds the results once, back to float16);
* pandas nullable columns (``Float64``, ``Float32``, ``Int64``, ... and object arrays
  holding ``pd.NA``) become float arrays with NaN for the missing values, instead of
  being refused as "dtype object".
"""
from __future__ import annotations

import numbers

import numpy as np

from fastgrad._checks import as_float_array

_F16 = np.dtype(np.float16)
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _is_missing(v) -> bool:
    return v is None or type(v).__name__ == "NAType"


def _from_pandas(x):
    """A pandas nullable Series/array/DataFrame as a float ndarray (NaN for missing); else x."""
    if not type(x).__module__.startswith("pandas") or not hasattr(x, "to_numpy"):
        return x
    dtypes = list(x.dtypes) if hasattr(x, "dtypes") and not hasattr(x, "dtype") else [x.dtype]
    if all(isinstance(d, np.dtype) for d in dtypes):
        return x
    if not all(getattr(d, "kind", "O") in "fiub" for d in dtypes):
        return x
    numpy_dtypes = {np.dtype(getattr(d, "numpy_dtype", d)) for d in dtypes}
    target = np.float32 if numpy_dtypes == {np.dtype(np.float32)} else np.float64
    return x.to_numpy(dtype=target, na_value=np.nan)


def _from_object(arr: np.ndarray) -> np.ndarray:
    """An object array of real numbers and ``pd.NA``/None as float64 (NaN for missing); else arr."""
    flat = arr.reshape(-1)
    ok = all(_is_missing(v) or (isinstance(v, numbers.Real) and not isinstance(v, bool)) for v in flat)
    if not ok or flat.size == 0:
        return arr
    return np.array([np.nan if _is_missing(v) else float(v) for v in flat], dtype=np.float64).reshape(arr.shape)


def float_input(x, name, ndim=None, dtype=None, min_size=1):
    """``(array, out_dtype)``: ``x`` as a C-contiguous float32/float64 array of x's shape
    (0-d stays 0-d), and the dtype results should be returned in (float16 for float16
    input, else the array's). ``dtype`` forces the computing dtype (as in ``as_float_array``).
    """
    if (type(x) is np.ndarray and x.size >= min_size and x.flags.c_contiguous and x.flags.writeable
            and (x.dtype is _F32 or x.dtype is _F64) and (dtype is None or x.dtype == dtype)
            and (ndim is None or x.ndim == ndim or (type(ndim) is tuple and x.ndim in ndim))):
        return x, x.dtype  # already what the kernels take (the common call: ~0.5 us, not 1.5)
    x = _from_pandas(x)
    arr = x if isinstance(x, np.ndarray) else (np.asarray(x) if x is not None and not isinstance(x, (str, bytes)) else x)
    out_dtype = None
    if isinstance(arr, np.ndarray):
        if arr.dtype == object:
            arr = _from_object(arr)
        if arr.dtype == _F16:
            out_dtype = _F16
            if dtype is None:
                dtype = np.float32
    result = as_float_array(arr, name, ndim=ndim, dtype=dtype, min_size=min_size)
    if isinstance(arr, np.ndarray) and arr.ndim == 0:
        result = result.reshape(())
    return result, (out_dtype if out_dtype is not None else result.dtype)


def restore(y, out_dtype):
    """``y`` in the caller's dtype (float16 results of float32 work), else ``y`` itself."""
    return y if y is None or y.dtype == out_dtype else y.astype(out_dtype)

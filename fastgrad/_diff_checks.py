"""Validation and dispatch helpers of :mod:`fastgrad.diff`: which path evaluates ``f`` (and how a
compiled ``f``'s failure is re-raised), how many parallel blocks, and the checks of ``x``, ``h``,
options and ``f``'s outputs."""
from __future__ import annotations

import numpy as np

from fastgrad import _stencils as st
from fastgrad._checks import as_float_array, as_int, as_scalar, check_choice
from fastgrad._fd_outputs import scalar_output, vector_output  # noqa: F401 -- re-exported
from fastgrad.kernels import finite_diff as _compiled
from fastgrad.reference import finite_diff as _python

# Below this much work (items x evaluations x n) a parallel region costs more than it saves.
PARALLEL_WORK = 200_000
# Parallel evaluations are cut into this many blocks (fewer when there are fewer items),
# whatever the thread count: the partition depends on the input size only.
BLOCKS = 64


def is_compiled(f) -> bool:
    """True for a Numba dispatcher (``numba.njit`` function), by duck typing."""
    return callable(f) and hasattr(f, "py_func") and hasattr(f, "signatures")


class _Evaluations:
    """The four evaluation loops, run by the compiled kernels (compiled ``f``) or their Python twins.

    A compiled kernel reports in ``status`` the first item where ``f`` raised or returned the wrong
    number of values; that item is then evaluated again from Python by the twin's item helper,
    which raises the user's own exception (type and message) or a ``ValueError`` naming ``f``,
    the expected and the received shape.
    """

    def __init__(self, compiled: bool):
        self.compiled = compiled

    def _run(self, kernel, twin, args, nb, retry):
        status = np.zeros(nb, dtype=np.int64)
        if not self.compiled:
            twin(*args, nb, status)
            return
        kernel(*args, nb, status)
        failed = np.flatnonzero(status)
        if failed.size:
            item = abs(int(status[failed[0]])) - 1
            retry(item)
            raise ValueError(f"f failed inside compiled code at evaluation item {item} "
                             "but not when called again from Python (is f deterministic?)")

    def scalar_values(self, f, points, out, nb):
        self._run(_compiled.scalar_values, _python.scalar_values, (f, points, out), nb,
                  lambda i: _python._scalar_values_item(f, points, out, i))

    def partial_values(self, f, x, steps, out, nb):
        self._run(_compiled.partial_values, _python.partial_values, (f, x, steps, out), nb,
                  lambda i: _python._partial_values_item(f, x.copy(), x, steps, out, i))

    def partial_vectors(self, f, x, steps, out, nb):
        self._run(_compiled.partial_vectors, _python.partial_vectors, (f, x, steps, out), nb,
                  lambda i: _python._partial_vectors_item(f, x.copy(), x, steps, out, i))

    def pair_values(self, f, x, plus, minus, rows, cols, out, nb):
        self._run(_compiled.pair_values, _python.pair_values, (f, x, plus, minus, rows, cols, out), nb,
                  lambda p: _python._pair_values_item(f, x.copy(), x, plus, minus, rows, cols, out, p))


_COMPILED, _PYTHON = _Evaluations(True), _Evaluations(False)


def ops(f) -> _Evaluations:
    """The evaluation loops for ``f``: compiled kernels for a compiled ``f``, else their Python twins."""
    return _COMPILED if is_compiled(f) else _PYTHON


def eval_blocks(items: int, work_per_item: int) -> int:
    """Blocks for a parallel evaluation: 1 (serial) when the work is too small to split, else
    ``min(items, BLOCKS)`` -- a function of the sizes only, so results never depend on threads."""
    if items < 2 or items * work_per_item < PARALLEL_WORK:
        return 1
    return min(items, BLOCKS)


def check_f(f, name="f"):
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def point(x, name="x") -> np.ndarray:
    x = as_float_array(x, name, ndim=1)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite, got non-finite entries at {np.flatnonzero(~np.isfinite(x))[:5]}")
    return x


def steps(x: np.ndarray, h, exponent: float, smallest: float = 1.0) -> np.ndarray:
    """Per-coordinate steps (float64, ``x``'s shape): the default rule, or ``h`` checked.

    An explicit ``h`` must be finite, > 0 and must not vanish against ``x``: the smallest step
    the caller will take, ``smallest * h``, has to change ``x`` in ``x``'s dtype
    (``x + smallest*h != x`` and ``x - smallest*h != x``), else ``ValueError``.
    """
    if h is None:
        return st.default_step(x, exponent).reshape(x.shape)
    if np.ndim(h) == 0:
        arr = np.full(x.shape, as_scalar(h, "h", low=0.0, low_open=True))
    else:
        arr = as_float_array(h, "h", dtype=np.float64)
        if arr.shape != x.shape:
            raise ValueError(f"h must be a scalar or have x's shape {x.shape}, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError("h must be finite and > 0 in every entry")
    step = (smallest * arr).astype(x.dtype)
    vanished = (x + step == x) | (x - step == x)
    if np.any(vanished):
        i = np.unravel_index(int(np.flatnonzero(vanished.reshape(-1))[0]), x.shape)
        need = float(np.spacing(np.abs(x[i]).astype(x.dtype))) / smallest
        raise ValueError(f"h vanishes against x: x + h == x in {x.dtype} at index {tuple(int(k) for k in i)} "
                         f"(x = {float(x[i])!r}, step {float(smallest * arr[i])!r}); h must be at least "
                         f"about {need:.3g} there, and much larger for an accurate difference")
    return arr


def options(method, accuracy, order: int = 1):
    """Check ``method`` and ``accuracy``: an even integer >= 2 for central stencils, >= 1 one-sided."""
    check_choice(method, "method", st.METHODS)
    accuracy = as_int(accuracy, "accuracy")
    if method == "central" and (accuracy < 2 or accuracy % 2 or accuracy > st.MAX_ACCURACY):
        raise ValueError(f"accuracy must be an even integer in 2..{st.MAX_ACCURACY} for method='central', got {accuracy}")
    if accuracy < 1 or accuracy > st.MAX_ACCURACY:
        raise ValueError(f"accuracy must be an integer in 1..{st.MAX_ACCURACY} for method={method!r}, got {accuracy}")
    return accuracy

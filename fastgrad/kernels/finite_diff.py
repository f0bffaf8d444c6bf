"""Compiled evaluation of a user's compiled function at finite-difference stencil points.

Each kernel takes the user's Numba-compiled ``f`` as its first argument (Numba
specialises the kernel per function) and fills an output array with values of ``f``;
the stencil points come from :mod:`fastgrad._stencils` and the weighted combination
happens there too, so the compiled path and the Python path (the twins in
:mod:`fastgrad.reference.finite_diff`) share everything but the calls to ``f``.

Parallel kernels split their items into ``nb`` blocks (chosen by the caller from the
size of the work only, never from the thread count; 1 means the serial branch). Every
block works on its own copy of ``x``, made once per block: a coordinate is stepped,
``f`` is called, the coordinate is restored. Every value depends only on its point, so
the results do not depend on the blocks or the threads. ``f`` itself should be serial --
a parallel or BLAS-calling ``f`` inside these loops oversubscribes the cores.

Failures. An exception raised by ``f`` inside a parallel region is lost by Numba (or
surfaces as ``SystemError``), and an output of another length would be written out of
place. So each block's loop runs in its own compiled function (a ``try`` inside a
``prange`` body would make the loop serial) that stops at the first failure and returns
``item + 1`` when ``f`` raised, ``-(item + 1)`` when ``f`` returned the wrong number of
values, 0 otherwise; the kernel stores it in ``status[block]``. The Python wrapper then
calls ``f`` again at that point, from Python, which raises the user's own exception.

The kernels are compiled with ``cache=False``: a signature holding a function
argument cannot be found again in the on-disk cache by a new process.
"""
import numpy as np

from fastgrad._jit import inline, kernel, prange


@inline
def _chunk(b, nb, n):
    """The half-open range of block ``b`` when ``n`` items are cut into ``nb`` near-equal blocks."""
    return b * n // nb, (b + 1) * n // nb


@kernel(cache=False)
def _scalar_values_range(f, points, out, lo, hi):
    for i in range(lo, hi):
        try:
            out[i] = f(points[i])
        except Exception:  # noqa: BLE001 -- re-raised from Python by the wrapper
            return i + 1
    return 0


@kernel(parallel=True, cache=False)
def scalar_values(f, points, out, nb, status):
    """``out[i] = f(points[i])`` for a scalar function ``f``; ``points``, ``out`` 1-D; ``status`` ``(nb,)`` int64."""
    n = points.size
    if nb == 1:
        status[0] = _scalar_values_range(f, points, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            status[b] = _scalar_values_range(f, points, out, lo, hi)


@kernel(cache=False)
def _partial_values_range(f, x, steps, out, lo, hi):
    w = x.copy()
    for i in range(lo, hi):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            try:
                out[k, i] = f(w)
            except Exception:  # noqa: BLE001
                return i + 1
        w[i] = x[i]
    return 0


@kernel(parallel=True, cache=False)
def partial_values(f, x, steps, out, nb, status):
    """``out[k, i] = f(x with x[i] replaced by steps[k, i])``; ``steps``, ``out`` are ``(K, n)``."""
    n = x.size
    if nb == 1:
        status[0] = _partial_values_range(f, x, steps, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            status[b] = _partial_values_range(f, x, steps, out, lo, hi)


@kernel(cache=False)
def _partial_vectors_range(f, x, steps, out, lo, hi):
    w = x.copy()
    m = out.shape[2]
    for i in range(lo, hi):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            try:
                r = np.atleast_1d(f(w))
            except Exception:  # noqa: BLE001
                return i + 1
            if r.size != m:
                return -(i + 1)
            for j in range(m):
                out[k, i, j] = r[j]
        w[i] = x[i]
    return 0


@kernel(parallel=True, cache=False)
def partial_vectors(f, x, steps, out, nb, status):
    """``out[k, i, :] = f(x with x[i] replaced by steps[k, i])`` for a vector ``f``; ``out`` ``(K, n, m)``."""
    n = x.size
    if nb == 1:
        status[0] = _partial_vectors_range(f, x, steps, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            status[b] = _partial_vectors_range(f, x, steps, out, lo, hi)


@kernel(cache=False)
def _pair_values_range(f, x, plus, minus, rows, cols, out, lo, hi):
    w = x.copy()
    for p in range(lo, hi):
        i = rows[p]
        j = cols[p]
        try:
            w[i] = plus[i]
            w[j] = plus[j]
            out[p, 0] = f(w)
            w[j] = minus[j]
            out[p, 1] = f(w)
            w[i] = minus[i]
            out[p, 3] = f(w)
            w[j] = plus[j]
            out[p, 2] = f(w)
        except Exception:  # noqa: BLE001
            return p + 1
        w[i] = x[i]
        w[j] = x[j]
    return 0


@kernel(parallel=True, cache=False)
def pair_values(f, x, plus, minus, rows, cols, out, nb, status):
    """The four corners of the cross stencil for each pair ``p = (rows[p], cols[p])``, ``i != j``.

    ``out[p] = f at (x_i, x_j) stepped to (plus, plus), (plus, minus), (minus, plus), (minus, minus)``;
    ``plus``/``minus`` hold the stepped coordinates ``x + h``/``x - h``; ``out`` is ``(P, 4)``.
    """
    n = rows.size
    if nb == 1:
        status[0] = _pair_values_range(f, x, plus, minus, rows, cols, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            status[b] = _pair_values_range(f, x, plus, minus, rows, cols, out, lo, hi)

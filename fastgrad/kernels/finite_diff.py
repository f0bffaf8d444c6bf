"""Compiled evaluation of a user's compiled function at finite-difference stencil points.

Each kernel takes the user's Numba-compiled ``f`` as its first argument (Numba
specialises the kernel per function) and fills an output array with values of ``f``;
the stencil points come from :mod:`fastgrad._stencils` and the weighted combination
happens there too, so the compiled path and the Python path (the twins in
:mod:`fastgrad.reference.finite_diff`) share everything but the calls to ``f``.

Parallel kernels split their items into ``nb`` blocks (chosen by the caller; 1 means
the serial branch). Every block works on its own copy of ``x``, made once per block:
a coordinate is stepped, ``f`` is called, the coordinate is restored. ``f`` itself
should be serial -- a parallel or BLAS-calling ``f`` inside these loops oversubscribes
the cores.

The kernels are compiled with ``cache=False``: a signature holding a function
argument cannot be found again in the on-disk cache by a new process.
"""
from fastgrad._jit import inline, kernel, prange


@inline
def _chunk(b, nb, n):
    """The half-open range of block ``b`` when ``n`` items are cut into ``nb`` near-equal blocks."""
    return b * n // nb, (b + 1) * n // nb


@inline
def _scalar_values_range(f, points, out, lo, hi):
    for i in range(lo, hi):
        out[i] = f(points[i])


@kernel(parallel=True, cache=False)
def scalar_values(f, points, out, nb):
    """``out[i] = f(points[i])`` for a scalar function ``f``; ``points``, ``out`` 1-D."""
    n = points.size
    if nb == 1:
        _scalar_values_range(f, points, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            _scalar_values_range(f, points, out, lo, hi)


@inline
def _partial_values_range(f, x, steps, out, lo, hi):
    w = x.copy()
    for i in range(lo, hi):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            out[k, i] = f(w)
        w[i] = x[i]


@kernel(parallel=True, cache=False)
def partial_values(f, x, steps, out, nb):
    """``out[k, i] = f(x with x[i] replaced by steps[k, i])``; ``steps``, ``out`` are ``(K, n)``."""
    n = x.size
    if nb == 1:
        _partial_values_range(f, x, steps, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            _partial_values_range(f, x, steps, out, lo, hi)


@inline
def _partial_vectors_range(f, x, steps, out, lo, hi):
    w = x.copy()
    for i in range(lo, hi):
        for k in range(steps.shape[0]):
            w[i] = steps[k, i]
            out[k, i, :] = f(w)
        w[i] = x[i]


@kernel(parallel=True, cache=False)
def partial_vectors(f, x, steps, out, nb):
    """``out[k, i, :] = f(x with x[i] replaced by steps[k, i])`` for a vector ``f``; ``out`` ``(K, n, m)``."""
    n = x.size
    if nb == 1:
        _partial_vectors_range(f, x, steps, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            _partial_vectors_range(f, x, steps, out, lo, hi)


@inline
def _pair_values_range(f, x, plus, minus, rows, cols, out, lo, hi):
    w = x.copy()
    for p in range(lo, hi):
        i = rows[p]
        j = cols[p]
        w[i] = plus[i]
        w[j] = plus[j]
        out[p, 0] = f(w)
        w[j] = minus[j]
        out[p, 1] = f(w)
        w[i] = minus[i]
        out[p, 3] = f(w)
        w[j] = plus[j]
        out[p, 2] = f(w)
        w[i] = x[i]
        w[j] = x[j]


@kernel(parallel=True, cache=False)
def pair_values(f, x, plus, minus, rows, cols, out, nb):
    """The four corners of the cross stencil for each pair ``p = (rows[p], cols[p])``, ``i != j``.

    ``out[p] = f at (x_i, x_j) stepped to (plus, plus), (plus, minus), (minus, plus), (minus, minus)``;
    ``plus``/``minus`` hold the stepped coordinates ``x + h``/``x - h``; ``out`` is ``(P, 4)``.
    """
    n = rows.size
    if nb == 1:
        _pair_values_range(f, x, plus, minus, rows, cols, out, 0, n)
    else:
        for b in prange(nb):
            lo, hi = _chunk(b, nb, n)
            _pair_values_range(f, x, plus, minus, rows, cols, out, lo, hi)

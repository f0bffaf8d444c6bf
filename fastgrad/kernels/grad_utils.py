"""Gradient clipping and statistics on flat buffers, callable from Python and compiled code.

Norms accumulate in float64 per block of ``BLOCK`` items (blocks fixed by the size) and
the block partials are combined in order, one after the other (never ``partial.sum()``,
which Numba would turn into a reduction grouped by thread), so a result is
bit-identical for any number of threads.
``norm_type`` is a float > 0 or ``inf``.
"""
import math

import numpy as np

from fastgrad._jit import block_bounds, inline, kernel, like, n_blocks, prange
from fastgrad.kernels.reduce import LANES, fold_lanes, sum_in_order

N_STATS = 5  # sum of squares, max |g|, sum |g|, count of zeros, count of non-finite


@inline
def _power(x, norm_type):
    """|x|^p in float64 (x * x and |x| for the common p = 2 and 1)."""
    a = abs(np.float64(x))
    if norm_type == 2.0:
        return a * a
    if norm_type == 1.0:
        return a
    return a ** norm_type


@inline
def _power_sum_range(g, norm_type):
    """sum |g|^p over ``LANES`` lanes (see kernels/reduce.py); max |g| (NaN if any) for p = inf."""
    if math.isinf(norm_type):
        top = 0.0
        for i in range(g.size):
            top = max(top, abs(np.float64(g[i])))
        # max() drops NaN; a NaN anywhere must make the norm NaN, as in PyTorch
        for i in range(g.size):
            if g[i] != g[i]:
                return np.nan
        return top
    n = g.size
    rows = n // LANES
    acc = np.zeros(LANES)
    # one loop per common p: a test of norm_type inside the lane loop would stop it vectorizing
    if norm_type == 2.0:
        # a * a, then +: not fused (muladd), so that the sum is its NumPy twin's bit for bit on
        # every CPU; a fused square-add differed in float64 by an ulp now and then (hypothesis found it)
        for r in range(rows):
            base = r * LANES
            for j in range(LANES):
                a = np.float64(g[base + j])
                acc[j] += a * a
    elif norm_type == 1.0:
        for r in range(rows):
            base = r * LANES
            for j in range(LANES):
                acc[j] += abs(np.float64(g[base + j]))
    else:
        for r in range(rows):
            base = r * LANES
            for j in range(LANES):
                acc[j] += _power(g[base + j], norm_type)
    for i in range(rows * LANES, n):
        acc[0] += _power(g[i], norm_type)
    return fold_lanes(acc)


@kernel(parallel=True)
def power_sum(grads, norm_type):
    """``sum |g|^p`` over the 1-D array ``grads`` (``max |g|`` for ``p = inf``), in float64."""
    n = grads.size
    nb = n_blocks(n)
    if nb == 1:
        return _power_sum_range(grads, norm_type)
    partial = np.empty(nb)
    for b in prange(nb):
        lo, hi = block_bounds(b, nb, n)
        partial[b] = _power_sum_range(grads[lo:hi], norm_type)
    if math.isinf(norm_type):
        top = 0.0
        for b in range(nb):
            if partial[b] != partial[b]:
                return np.nan
            top = max(top, partial[b])
        return top
    return sum_in_order(partial)


@kernel
def finish_norm(acc, norm_type):
    """The norm from a :func:`power_sum` (summed over arrays): ``acc^(1/p)``; ``acc`` for inf."""
    if math.isinf(norm_type):
        return acc
    if norm_type == 2.0:
        return math.sqrt(acc)
    if norm_type == 1.0:
        return acc
    return acc ** (1.0 / norm_type)


@kernel
def grad_norm(grads, norm_type):
    """The ``norm_type``-norm of the 1-D array ``grads`` (float64)."""
    return finish_norm(power_sum(grads, norm_type), norm_type)


@kernel
def clip_coef(total_norm, max_norm):
    """PyTorch's factor ``min(1, max_norm / (total_norm + 1e-6))``; NaN stays NaN."""
    coef = max_norm / (total_norm + 1e-6)
    return coef if not coef > 1.0 else 1.0


@inline
def _scale_range(g, f):
    for i in range(g.size):
        g[i] *= f


@kernel(parallel=True)
def scale_inplace(grads, factor):
    """``grads *= factor`` in place; ``factor`` is cast to the dtype of ``grads``."""
    f = like(grads, factor)
    n = grads.size
    nb = n_blocks(n)
    if nb == 1:
        _scale_range(grads, f)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            _scale_range(grads[lo:hi], f)


@kernel
def clip_grad_norm(grads, max_norm, norm_type):
    """Scale ``grads`` in place so that its norm is at most ``max_norm``; returns the norm before.

    ``g *= min(1, max_norm / (norm + 1e-6))`` (a factor of 1 skips the pass: same result).
    """
    total = grad_norm(grads, norm_type)
    coef = clip_coef(total, max_norm)
    if coef != 1.0:
        scale_inplace(grads, coef)
    return total


@kernel
def clip_to_max_norm(grads, max_norm):
    """The training loop's clipping (``fit(clip_norm=...)``): returns the L2 norm of ``grads``
    (float64) and, when it is finite and above ``max_norm``, scales ``grads`` in place by
    ``max_norm / (norm + 1e-6)`` (PyTorch's factor; a norm at or below ``max_norm`` leaves
    them as they are)."""
    norm = grad_norm(grads, 2.0)
    if math.isfinite(norm) and norm > max_norm:
        scale_inplace(grads, max_norm / (norm + 1e-6))
    return norm


@inline
def _clip_value_range(g, c):
    # every entry stored, a select of three: stores in the two branches alone (unchanged
    # entries left alone) vectorize as masked stores, 6x slower on AMD Zen (see mathfns._nan_from)
    for i in range(g.size):
        x = g[i]
        y = c if x > c else x
        g[i] = -c if x < -c else y   # NaN compares false both times: stays NaN


@kernel(parallel=True)
def clip_grad_value(grads, clip_value):
    """Clamp ``grads`` in place to ``[-clip_value, clip_value]``; NaN stays NaN."""
    c = like(grads, clip_value)
    n = grads.size
    nb = n_blocks(n)
    if nb == 1:
        _clip_value_range(grads, c)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            _clip_value_range(grads[lo:hi], c)


@inline
def _stats_range(g, out):
    sum_sq = 0.0
    max_abs = 0.0
    sum_abs = 0.0
    n_zero = 0
    n_nonfinite = 0
    for i in range(g.size):
        x = np.float64(g[i])
        if math.isfinite(x):
            a = abs(x)
            sum_sq += a * a
            sum_abs += a
            max_abs = max(max_abs, a)
            n_zero += x == 0.0
        else:
            n_nonfinite += 1
    out[0] = sum_sq
    out[1] = max_abs
    out[2] = sum_abs
    out[3] = n_zero
    out[4] = n_nonfinite


@kernel(parallel=True)
def grad_stats_sums(grads, out):
    """Write into ``out`` (float64, ``N_STATS``) the sums over the finite entries of ``grads``:
    ``[sum g^2, max |g|, sum |g|, count of zeros, count of non-finite]``.
    """
    n = grads.size
    nb = n_blocks(n)
    if nb == 1:
        _stats_range(grads, out)
        return
    partial = np.empty((nb, N_STATS))
    for b in prange(nb):
        lo, hi = block_bounds(b, nb, n)
        _stats_range(grads[lo:hi], partial[b])
    out[:] = 0.0
    for b in range(nb):
        out[0] += partial[b, 0]
        out[1] = max(out[1], partial[b, 1])
        out[2] += partial[b, 2]
        out[3] += partial[b, 3]
        out[4] += partial[b, 4]


@inline
def _count_nonfinite_range(g):
    count = 0
    for i in range(g.size):
        count += not math.isfinite(g[i])
    return count


@kernel(parallel=True)
def count_nonfinite(grads):
    """How many entries of ``grads`` are NaN or +-inf."""
    n = grads.size
    nb = n_blocks(n)
    if nb == 1:
        return _count_nonfinite_range(grads)
    count = 0
    for b in prange(nb):
        lo, hi = block_bounds(b, nb, n)
        count += _count_nonfinite_range(grads[lo:hi])
    return count

"""Layer normalisation over the last axis (``torch.nn.LayerNorm(n)``), forward and backward,
and the affine part ``out = xhat * gamma + beta`` that batch normalisation shares.

Shapes: x, out, xhat, grad_out, grad_x (m, n), C-contiguous, one float dtype (float32 or
float64), m >= 1; gamma, beta, grad_gamma, grad_beta (n,), or all of them size 0 for a
layer without the affine transform; rstd (m,).

Precision: each row's mean and biased variance are accumulated in float64 (two passes over
the row: the mean, then the sum of squared deviations from it, in ``LANES`` vectorizable
lanes as in :mod:`fastgrad.kernels.reduce`), and ``xhat = (x - mean) * rstd`` is evaluated in float64 and
rounded once to the array's dtype; the affine transform and the backward's elementwise
products are in the array's dtype, their sums (row means of the backward, column sums for
grad_gamma/grad_beta) in float64. So float64 agrees with PyTorch to round-off, and float32
is at least as accurate as PyTorch's float32 (which accumulates in float32).

Scratch: a few float64 vectors (``LANES`` lanes, n column sums) are allocated once per call,
never per row.
"""
import numpy as np

from fastgrad._jit import inline, kernel, like
from fastgrad.kernels.reduce import LANES, fold_lanes


@inline
def _lane_sum(row, center, square, acc):
    """sum of (row - center), or of its square when ``square``, over the 1-D ``row`` in float64:
    element base + k of each full chunk of ``acc.size`` goes to lane k (a loop without a
    reduction, which LLVM vectorizes without ``reassoc``; ``square`` is tested outside the
    loops, which a test inside would stop vectorizing), the lanes are folded pairwise, the
    tail is added in order (``acc`` is scratch)."""
    n = row.size
    L = acc.size
    full = n - n % L
    for k in range(L):
        acc[k] = 0.0
    if square:
        for base in range(0, full, L):
            chunk = row[base:base + L]  # a slice: LLVM then sees a loop of known length over it
            for k in range(L):
                d = np.float64(chunk[k]) - center
                acc[k] += d * d
    else:
        for base in range(0, full, L):
            chunk = row[base:base + L]
            for k in range(L):
                acc[k] += np.float64(chunk[k]) - center
    total = fold_lanes(acc)
    for i in range(full, n):
        d = np.float64(row[i]) - center
        total += d * d if square else d
    return total


@inline
def _row_moments(row, acc):
    """(mean, biased variance) of the 1-D ``row`` in float64, two passes (``acc``: lane scratch)."""
    n = row.size
    mean = _lane_sum(row, 0.0, False, acc) / n
    return mean, _lane_sum(row, mean, True, acc) / n


@inline
def normalize_row(row, mean, rstd, xhat_row):
    """xhat_row = (row - mean) * rstd, evaluated in float64 (mean, rstd float64), rounded once."""
    for j in range(row.size):
        xhat_row[j] = (np.float64(row[j]) - mean) * rstd


@inline
def affine_row(xhat_row, gamma, beta, out_row):
    """out_row = xhat_row * gamma + beta (in the array's dtype), or a copy of xhat_row when
    gamma is size 0 (no affine transform)."""
    if gamma.size == 0:
        for j in range(xhat_row.size):
            out_row[j] = xhat_row[j]
    else:
        for j in range(xhat_row.size):
            out_row[j] = xhat_row[j] * gamma[j] + beta[j]


@inline
def accumulate_param_grads(go_row, xhat_row, sum_go, sum_go_xhat):
    """sum_go += go_row and sum_go_xhat += go_row * xhat_row (float64 accumulators; the
    product in the array's dtype): one row's share of grad_beta and grad_gamma."""
    for j in range(go_row.size):
        sum_go[j] += np.float64(go_row[j])
        sum_go_xhat[j] += np.float64(go_row[j] * xhat_row[j])


@inline
def store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta):
    """grad_gamma = sum_go_xhat and grad_beta = sum_go, rounded to their dtype (if not size 0)."""
    for j in range(grad_gamma.size):
        grad_gamma[j] = sum_go_xhat[j]
    for j in range(grad_beta.size):
        grad_beta[j] = sum_go[j]


@kernel
def layer_norm_forward(x, gamma, beta, eps, out, xhat, rstd):
    """Per row r: xhat = (x - mean_r) * rstd_r, rstd_r = 1 / sqrt(var_r + eps) (biased
    variance), out = xhat * gamma + beta (out = xhat without affine). Writes out, xhat, rstd."""
    m = x.shape[0]
    eps64 = np.float64(eps)
    acc = np.empty(LANES)
    for r in range(m):
        mean, var = _row_moments(x[r], acc)
        s = 1.0 / np.sqrt(var + eps64)
        rstd[r] = s
        normalize_row(x[r], mean, s, xhat[r])
        affine_row(xhat[r], gamma, beta, out[r])


@kernel
def layer_norm_backward(grad_out, xhat, rstd, gamma, grad_x, grad_gamma, grad_beta, need_grad_x):
    """grad_gamma = sum_r grad_out * xhat, grad_beta = sum_r grad_out (skipped when size 0);
    with g = grad_out * gamma (grad_out without affine), per row
    grad_x = rstd_r * (g - mean_j g - xhat * mean_j(g * xhat)) unless ``need_grad_x`` is false."""
    m, n = grad_out.shape
    affine = gamma.size != 0
    sum_go = np.zeros(n if affine else 0)
    sum_go_xhat = np.zeros(n if affine else 0)
    acc_g = np.empty(LANES)
    acc_gx = np.empty(LANES)
    L = LANES
    full = n - n % L
    for r in range(m):
        go = grad_out[r]
        xh = xhat[r]
        if affine:  # in the row loop, while the row is in cache
            accumulate_param_grads(go, xh, sum_go, sum_go_xhat)
        if not need_grad_x:
            continue
        gx = grad_x[r]
        if affine:
            for j in range(n):
                gx[j] = go[j] * gamma[j]
        else:
            for j in range(n):
                gx[j] = go[j]
        for k in range(L):
            acc_g[k] = 0.0
            acc_gx[k] = 0.0
        for base in range(0, full, L):
            g_chunk = gx[base:base + L]
            xh_chunk = xh[base:base + L]
            for k in range(L):
                g = g_chunk[k]
                acc_g[k] += np.float64(g)
                acc_gx[k] += np.float64(g * xh_chunk[k])
        a0 = fold_lanes(acc_g)
        a1 = fold_lanes(acc_gx)
        for j in range(full, n):
            a0 += np.float64(gx[j])
            a1 += np.float64(gx[j] * xh[j])
        mean_g = like(gx, a0 / n)
        mean_gx = like(gx, a1 / n)
        s = rstd[r]
        for j in range(n):
            gx[j] = s * (gx[j] - mean_g - xh[j] * mean_gx)
    store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta)

"""Layer normalisation over the last axis (``torch.nn.LayerNorm(n)``), forward and backward,
and the affine part ``out = xhat * gamma + beta`` that batch normalisation shares.

Shapes: x, out, xhat, grad_out, grad_x (m, n), C-contiguous, one float dtype (float32 or
float64), m >= 1; gamma, beta, grad_gamma, grad_beta (n,), or all of them size 0 for a
layer without the affine transform; rstd (m,).

Precision: each row's mean and biased variance are accumulated in float64 (two passes over
the row: the mean, then the sum of squared deviations from it, four lanes each as in
:mod:`fastgrad.kernels.reduce`), and ``xhat = (x - mean) * rstd`` is evaluated in float64 and
rounded once to the array's dtype; the affine transform and the backward's elementwise
products are in the array's dtype, their sums (row means of the backward, column sums for
grad_gamma/grad_beta) in float64. So float64 agrees with PyTorch to round-off, and float32
is at least as accurate as PyTorch's float32 (which accumulates in float32).
"""
import numpy as np

from fastgrad._jit import inline, kernel, like


@inline
def _row_moments(row):
    """(mean, biased variance) of the 1-D ``row`` in float64: two passes, four lanes each."""
    n = row.size
    n4 = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, n4, 4):
        a0 += np.float64(row[i])
        a1 += np.float64(row[i + 1])
        a2 += np.float64(row[i + 2])
        a3 += np.float64(row[i + 3])
    for i in range(n4, n):
        a0 += np.float64(row[i])
    mean = ((a0 + a1) + (a2 + a3)) / n
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(0, n4, 4):
        d0 = np.float64(row[i]) - mean
        d1 = np.float64(row[i + 1]) - mean
        d2 = np.float64(row[i + 2]) - mean
        d3 = np.float64(row[i + 3]) - mean
        a0 += d0 * d0
        a1 += d1 * d1
        a2 += d2 * d2
        a3 += d3 * d3
    for i in range(n4, n):
        d = np.float64(row[i]) - mean
        a0 += d * d
    return mean, ((a0 + a1) + (a2 + a3)) / n


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
    for r in range(m):
        mean, var = _row_moments(x[r])
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
    if affine:
        sum_go = np.zeros(n)
        sum_go_xhat = np.zeros(n)
        for r in range(m):
            accumulate_param_grads(grad_out[r], xhat[r], sum_go, sum_go_xhat)
        store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta)
    if not need_grad_x:
        return
    for r in range(m):
        go = grad_out[r]
        xh = xhat[r]
        gx = grad_x[r]
        a0 = 0.0
        a1 = 0.0
        if affine:
            for j in range(n):
                g = go[j] * gamma[j]
                gx[j] = g
                a0 += np.float64(g)
                a1 += np.float64(g * xh[j])
        else:
            for j in range(n):
                g = go[j]
                gx[j] = g
                a0 += np.float64(g)
                a1 += np.float64(g * xh[j])
        mean_g = like(gx, a0 / n)
        mean_gx = like(gx, a1 / n)
        s = rstd[r]
        for j in range(n):
            gx[j] = s * (gx[j] - mean_g - xh[j] * mean_gx)

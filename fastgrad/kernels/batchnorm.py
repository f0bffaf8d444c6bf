"""Batch normalisation of (m, n) activations per column (``torch.nn.BatchNorm1d(n)`` on 2-D
input), forward and backward.

Shapes: x, out, xhat, grad_out, grad_x (m, n), C-contiguous, one float dtype; gamma, beta,
grad_gamma, grad_beta (n,) or all size 0 (no affine); running_mean, running_var (n,) or
both size 0 (not tracked); rstd (n,).

Precision as in :mod:`fastgrad.kernels.layernorm`: column means and biased variances
(two passes over the batch) and the parameter-gradient sums are accumulated in float64
(the loops run over rows and vectorize over columns, so the accumulators are two
float64 vectors of length n allocated per call), ``xhat`` is evaluated in float64 and
rounded once, the rest is in the array's dtype. The running statistics are updated in
float64 as PyTorch's CPU kernel does (``momentum * stat + (1 - momentum) * running``).
The affine part is :mod:`fastgrad.kernels.layernorm`'s.
"""
import numpy as np

from fastgrad._jit import kernel, like
from fastgrad.kernels.layernorm import accumulate_param_grads, affine_row, store_param_grads


@kernel
def batch_norm_forward(x, gamma, beta, eps, momentum, running_mean, running_var, use_batch_stats,
                       update_running, out, xhat, rstd):
    """Per column j: xhat = (x - mean_j) * rstd_j, rstd_j = 1 / sqrt(var_j + eps),
    out = xhat * gamma + beta (out = xhat without affine).

    ``use_batch_stats``: mean_j and the biased var_j of this batch, else the running ones.
    ``update_running`` (with batch statistics; m >= 2): running_mean = (1 - momentum) *
    running_mean + momentum * mean_j, running_var likewise with the unbiased var_j * m / (m - 1).
    """
    m, n = x.shape
    eps64 = np.float64(eps)
    mean = np.zeros(n)
    var = np.zeros(n)
    if use_batch_stats:
        for r in range(m):
            row = x[r]
            for j in range(n):
                mean[j] += np.float64(row[j])
        for j in range(n):
            mean[j] /= m
        for r in range(m):
            row = x[r]
            for j in range(n):
                d = np.float64(row[j]) - mean[j]
                var[j] += d * d
        if update_running:
            mom = np.float64(momentum)
            keep = 1.0 - mom
            for j in range(n):
                running_mean[j] = mom * mean[j] + keep * np.float64(running_mean[j])
                running_var[j] = mom * (var[j] / (m - 1)) + keep * np.float64(running_var[j])
        for j in range(n):
            var[j] /= m
    else:
        for j in range(n):
            mean[j] = running_mean[j]
            var[j] = running_var[j]
    for j in range(n):
        var[j] = 1.0 / np.sqrt(var[j] + eps64)  # var now holds rstd in float64
        rstd[j] = var[j]
    for r in range(m):
        xh = xhat[r]
        row = x[r]
        for j in range(n):
            xh[j] = (np.float64(row[j]) - mean[j]) * var[j]
        affine_row(xh, gamma, beta, out[r])


@kernel
def batch_norm_backward(grad_out, xhat, rstd, gamma, used_batch_stats, grad_x, grad_gamma,
                        grad_beta, need_grad_x):
    """grad_gamma = sum_r grad_out * xhat, grad_beta = sum_r grad_out (skipped when size 0);
    with g = grad_out * gamma (grad_out without affine):
    batch statistics: grad_x = rstd_j / m * (m g - sum_r g - xhat * sum_r(g * xhat));
    running statistics: grad_x = g * rstd_j. grad_x is skipped unless ``need_grad_x``."""
    m, n = grad_out.shape
    sum_go = np.zeros(n)
    sum_go_xhat = np.zeros(n)
    if gamma.size != 0 or (need_grad_x and used_batch_stats):
        for r in range(m):
            accumulate_param_grads(grad_out[r], xhat[r], sum_go, sum_go_xhat)
    store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta)
    if not need_grad_x:
        return
    # g = grad_out * gamma_j, so sum_r g = gamma_j * sum_go and sum_r g * xhat = gamma_j * sum_go_xhat;
    # scale_j folds gamma_j and rstd_j: grad_x = scale_j * (grad_out - c1_j - xhat * c2_j)
    scale = np.empty(n, dtype=grad_out.dtype)
    c1 = np.empty(n, dtype=grad_out.dtype)
    c2 = np.empty(n, dtype=grad_out.dtype)
    for j in range(n):
        g = like(grad_out, 1.0) if gamma.size == 0 else gamma[j]
        scale[j] = g * rstd[j]
        c1[j] = sum_go[j] / m
        c2[j] = sum_go_xhat[j] / m
    for r in range(m):
        go = grad_out[r]
        xh = xhat[r]
        gx = grad_x[r]
        if used_batch_stats:
            for j in range(n):
                gx[j] = scale[j] * (go[j] - c1[j] - xh[j] * c2[j])
        else:
            for j in range(n):
                gx[j] = go[j] * scale[j]

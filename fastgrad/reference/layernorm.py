"""NumPy twins of :mod:`fastgrad.kernels.layernorm`: layer normalisation over the last axis
(``torch.nn.LayerNorm``) and the affine part shared with batch normalisation.

Same names, signatures and precision rules as the kernels: statistics and sums in float64,
``xhat = (x - mean) * rstd`` in float64 rounded once to the array's dtype, the affine
transform and elementwise products of the backward in the array's dtype. Results are
written into the ``out``-style arguments.
"""
import numpy as np


def normalize_row(row, mean, rstd, xhat_row):
    """xhat_row = (row - mean) * rstd in float64, rounded once (broadcasts over rows too)."""
    xhat_row[...] = (np.asarray(row, dtype=np.float64) - mean) * rstd


def affine_row(xhat_row, gamma, beta, out_row):
    """out_row = xhat_row * gamma + beta, or xhat_row when gamma is size 0 (no affine)."""
    out_row[...] = xhat_row if gamma.size == 0 else xhat_row * gamma + beta


def accumulate_param_grads(go_row, xhat_row, sum_go, sum_go_xhat):
    """sum_go += go_row and sum_go_xhat += go_row * xhat_row (float64 sums, product in the dtype)."""
    sum_go += go_row
    sum_go_xhat += go_row * xhat_row


def store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta):
    """grad_gamma = sum_go_xhat, grad_beta = sum_go (each unless size 0)."""
    if grad_gamma.size:
        grad_gamma[...] = sum_go_xhat
    if grad_beta.size:
        grad_beta[...] = sum_go


def column_param_grads(grad_out, xhat):
    """(sum_r grad_out, sum_r grad_out * xhat) as float64 vectors: the sums behind grad_beta
    and grad_gamma, for layer and batch normalisation alike."""
    return (grad_out.astype(np.float64).sum(axis=0),
            (grad_out * xhat).astype(np.float64).sum(axis=0))


def layer_norm_forward(x, gamma, beta, eps, out, xhat, rstd):
    """Per row: mean_r, biased var_r; rstd_r = 1/sqrt(var_r + eps); xhat = (x - mean_r) rstd_r;
    out = xhat * gamma + beta (out = xhat without affine)."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1)
    var = ((x64 - mean[:, None]) ** 2).mean(axis=1)
    s = 1.0 / np.sqrt(var + np.float64(eps))
    rstd[...] = s
    normalize_row(x64, mean[:, None], s[:, None], xhat)
    affine_row(xhat, gamma, beta, out)


def layer_norm_backward(grad_out, xhat, rstd, gamma, grad_x, grad_gamma, grad_beta, need_grad_x):
    """grad_gamma = sum_r grad_out xhat, grad_beta = sum_r grad_out; with g = grad_out * gamma,
    grad_x = rstd_r (g - mean_j g - xhat mean_j(g xhat)) (skipped unless need_grad_x)."""
    if gamma.size:
        store_param_grads(*column_param_grads(grad_out, xhat), grad_gamma, grad_beta)
    if not need_grad_x:
        return
    t = grad_out.dtype.type
    g = grad_out * gamma if gamma.size else grad_out
    mean_g = g.astype(np.float64).mean(axis=1).astype(t)
    mean_gx = (g * xhat).astype(np.float64).mean(axis=1).astype(t)
    grad_x[...] = rstd[:, None] * (g - mean_g[:, None] - xhat * mean_gx[:, None])

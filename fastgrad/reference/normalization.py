"""Plain-NumPy twins of :mod:`fastgrad.functional.normalization` (same names and signatures,
no validation): layer and batch normalisation and dropout on (m, n) arrays, built on the
kernel twins in :mod:`fastgrad.reference.layernorm`, ``.batchnorm`` and ``.dropout``."""
import numpy as np

from fastgrad.reference.batchnorm import batch_norm_backward as _bn_backward, batch_norm_forward as _bn_forward
from fastgrad.reference.dropout import dropout_backward as _do_backward, dropout_forward as _do_forward
from fastgrad.reference.layernorm import layer_norm_backward as _ln_backward, layer_norm_forward as _ln_forward


def _affine(x, weight, bias):
    if weight is None and bias is None:
        return np.empty(0, x.dtype), np.empty(0, x.dtype)
    n = x.shape[1]
    gamma = np.ones(n, x.dtype) if weight is None else np.asarray(weight, x.dtype)
    beta = np.zeros(n, x.dtype) if bias is None else np.asarray(bias, x.dtype)
    return gamma, beta


def _layer_norm(x, weight, bias, eps):
    gamma, beta = _affine(x, weight, bias)
    out, xhat, rstd = np.empty_like(x), np.empty_like(x), np.empty(x.shape[0], x.dtype)
    _ln_forward(x, gamma, beta, x.dtype.type(eps), out, xhat, rstd)
    return out, xhat, rstd, gamma


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """out = (x - mean_r) / sqrt(var_r + eps) * weight + bias, per row r."""
    return _layer_norm(x, weight, bias, eps)[0]


def layer_norm_backward(x, grad_out, weight=None, eps=1e-5):
    """(grad_x, grad_weight, grad_bias) of layer_norm; the parameter gradients are None without weight."""
    _, xhat, rstd, gamma = _layer_norm(x, weight, None, eps)
    grad_x, grad_gamma, grad_beta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    _ln_backward(np.asarray(grad_out, x.dtype), xhat, rstd, gamma, grad_x, grad_gamma, grad_beta, True)
    return grad_x, (grad_gamma if weight is not None else None), (grad_beta if weight is not None else None)


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, update):
    gamma, beta = _affine(x, weight, bias)
    tracked = running_mean is not None
    empty = np.empty(0, x.dtype)
    out, xhat, rstd = np.empty_like(x), np.empty_like(x), np.empty(x.shape[1], x.dtype)
    _bn_forward(x, gamma, beta, x.dtype.type(eps), np.float64(momentum),
                running_mean if tracked else empty, running_var if tracked else empty,
                training, update and training and tracked, out, xhat, rstd)
    return out, xhat, rstd, gamma


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """out = (x - mean_j) / sqrt(var_j + eps) * weight + bias per column j: batch statistics when
    training (running statistics updated in place when given), running statistics otherwise."""
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, True)[0]


def batch_norm_backward(x, grad_out, running_mean=None, running_var=None, weight=None, training=False,
                        eps=1e-5):
    """(grad_x, grad_weight, grad_bias) of batch_norm (running statistics not updated)."""
    _, xhat, rstd, gamma = _batch_norm(x, running_mean, running_var, weight, None, training, 0.0, eps, False)
    grad_x, grad_gamma, grad_beta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    _bn_backward(np.asarray(grad_out, x.dtype), xhat, rstd, gamma, training, grad_x, grad_gamma, grad_beta, True)
    return grad_x, (grad_gamma if weight is not None else None), (grad_beta if weight is not None else None)


def dropout(x, p=0.5, training=True, seed=0, step=0):
    """out = x * keep / (1 - p) with the counter-based mask of (seed, step, op=0); a copy when not training."""
    if not training:
        return x.copy()
    out = np.empty_like(x)
    _do_forward(x, out, p, seed, step, 0)
    return out


def dropout_backward(grad_out, p=0.5, seed=0, step=0):
    """grad_x = grad_out * keep / (1 - p) with dropout's mask."""
    grad_x = np.empty_like(grad_out)
    _do_backward(grad_out, grad_x, p, seed, step, 0)
    return grad_x

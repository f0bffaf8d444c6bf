"""Layer normalisation, batch normalisation and dropout on (m, n) activations (public wrappers).

``x`` is 2-D: m rows (samples) of n features, float32 or float64 (bool/integer input becomes
float64, float16 is computed in float32 and returned as float16); ``weight``/``bias`` and
running statistics are vectors of n. Results have x's dtype. Statistics and sums are
accumulated in float64 (see :mod:`fastgrad.kernels.layernorm`). The ``*_backward``
functions recompute the forward's saved values from ``x`` and return the vector-Jacobian
products. Each function has a NumPy twin of the same name in :mod:`fastgrad.reference`.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_int, as_scalar, check_same_shape, in_dtype
from fastgrad.functional._inputs import float_input, restore
from fastgrad.kernels import batchnorm as KB
from fastgrad.kernels import dropout as KD
from fastgrad.kernels import layernorm as KL

_INT64 = np.iinfo(np.int64)


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _input(x, name="x"):
    return float_input(x, name, ndim=2)


def _grad(grad_out, x):
    grad_out, _ = float_input(grad_out, "grad_out", ndim=2, dtype=x.dtype)
    check_same_shape(x, grad_out, "x", "grad_out")
    return grad_out


def _vector(v, name, x):
    """``v`` as a vector of x's n features in x's dtype, or None."""
    if v is None:
        return None
    v, _ = float_input(v, name, ndim=1, dtype=x.dtype)
    if v.shape != (x.shape[1],):
        raise ValueError(f"{name} must have shape ({x.shape[1]},) to match x's {x.shape[1]} features, got {v.shape}")
    return v


def _affine(x, weight, bias):
    """(gamma, beta) for the kernels: both size 0 without weight and bias, else a missing one
    is filled with ones (weight) or zeros (bias)."""
    gamma, beta = _vector(weight, "weight", x), _vector(bias, "bias", x)
    if gamma is None and beta is None:
        empty = np.empty(0, dtype=x.dtype)
        return empty, empty
    n = x.shape[1]
    return (np.ones(n, x.dtype) if gamma is None else gamma), (np.zeros(n, x.dtype) if beta is None else beta)


def _eps(eps, x):
    return in_dtype(as_scalar(eps, "eps", low=0.0), "eps", x.dtype, "x's dtype")


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Layer normalisation of each row, as ``torch.nn.functional.layer_norm(x, (n,), weight, bias, eps)``.

    out = (x - mean_r) / sqrt(var_r + eps) * weight + bias, with mean_r and the biased
    variance var_r of row r (Ba, Kiros & Hinton 2016, arXiv:1607.06450). x (m, n);
    weight, bias (n,) or None (no scale / no shift). Returns out (m, n) in x's dtype.
    Raises ValueError for x not 2-D or empty, weight/bias not of shape (n,), eps < 0;
    TypeError for non-real input.
    """
    x, out_dtype = _input(x)
    gamma, beta = _affine(x, weight, bias)
    out, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty(x.shape[0], dtype=x.dtype)
    KL.layer_norm_forward(x, gamma, beta, _eps(eps, x), out, xhat, rstd)
    return restore(out, out_dtype)


def layer_norm_backward(x, grad_out, weight=None, eps=1e-5):
    """(grad_x, grad_weight, grad_bias) of :func:`layer_norm` at x for grad_out = dL/d out.

    With xhat = (x - mean_r) rstd_r and g = grad_out * weight: grad_x = rstd_r (g - mean_j g
    - xhat mean_j(g xhat)); grad_weight = sum_r grad_out xhat; grad_bias = sum_r grad_out.
    grad_x (m, n), grad_weight and grad_bias (n,), all in x's dtype; without ``weight`` (no
    affine) both parameter gradients are None (the gradient of a bias used alone is
    ``grad_out.sum(0)``). Raises as :func:`layer_norm`, and ValueError when grad_out's shape
    differs from x's.
    """
    x, out_dtype = _input(x)
    grad_out = _grad(grad_out, x)
    gamma, beta = _affine(x, weight, None)
    out, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty(x.shape[0], dtype=x.dtype)
    KL.layer_norm_forward(x, gamma, beta, _eps(eps, x), out, xhat, rstd)
    grad_x = np.empty_like(x)
    grad_gamma, grad_beta = np.empty_like(gamma), np.empty_like(gamma)
    KL.layer_norm_backward(grad_out, xhat, rstd, gamma, grad_x, grad_gamma, grad_beta, True)
    affine = weight is not None
    return (restore(grad_x, out_dtype), restore(grad_gamma, out_dtype) if affine else None,
            restore(grad_beta, out_dtype) if affine else None)


def _running(running_mean, running_var, x, training):
    """The running statistics checked (both or neither; 1-D C-contiguous ndarrays of x's
    computing dtype and shape (n,), writeable when training), as kernel arguments (size 0 if None)."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together or both be None, got "
                         f"running_mean {'None' if running_mean is None else 'an array'} and "
                         f"running_var {'None' if running_var is None else 'an array'}")
    if running_mean is None:
        if not training:
            raise ValueError("running_mean and running_var are required when training=False "
                             "(evaluation normalises with the running statistics)")
        empty = np.empty(0, dtype=x.dtype)
        return empty, empty, False
    n = x.shape[1]
    for name, arr in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array of dtype {x.dtype} (it is updated in place), "
                            f"got {type(arr).__name__}")
        if arr.dtype != x.dtype:
            raise TypeError(f"{name} must have x's dtype {x.dtype} (it is updated in place), got {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match x's {n} features, got {arr.shape}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (it is updated in place)")
        if training and not arr.flags.writeable:
            raise ValueError(f"{name} must be writeable when training (it is updated in place)")
    return running_mean, running_var, True


def _batch_setup(x, running_mean, running_var, training):
    training = _flag(training, "training")
    rm, rv, tracked = _running(running_mean, running_var, x, training)
    if training and x.shape[0] < 2:
        raise ValueError(f"batch_norm needs more than 1 value per channel when training, got x of shape {x.shape}")
    return training, rm, rv, tracked


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation of each column, as ``torch.nn.functional.batch_norm`` on (m, n) input.

    out = (x - mean_j) / sqrt(var_j + eps) * weight + bias (Ioffe & Szegedy 2015,
    arXiv:1502.03167). ``training=True``: mean_j and the biased var_j of this batch, and when
    running statistics are given they are updated in place as PyTorch does:
    running_mean = (1 - momentum) running_mean + momentum mean_j, running_var likewise with
    the unbiased variance var_j m / (m - 1). ``training=False``: the running statistics are
    used (and required). x (m, n); running_mean, running_var (n,) C-contiguous arrays of x's
    dtype (float32 for float16 x) or None; weight, bias (n,) or None. Returns out (m, n).
    Raises ValueError for x not 2-D or empty, m < 2 when training, vectors not of shape
    (n,), only one running array, none when not training, momentum outside [0, 1], eps < 0;
    TypeError for running arrays that are not ndarrays of x's dtype, training not a bool.
    """
    x, out_dtype = _input(x)
    training, rm, rv, tracked = _batch_setup(x, running_mean, running_var, training)
    momentum = as_scalar(momentum, "momentum", low=0.0, high=1.0)
    gamma, beta = _affine(x, weight, bias)
    out, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty(x.shape[1], dtype=x.dtype)
    KB.batch_norm_forward(x, gamma, beta, _eps(eps, x), np.float64(momentum), rm, rv, training,
                          training and tracked, out, xhat, rstd)
    return restore(out, out_dtype)


def batch_norm_backward(x, grad_out, running_mean=None, running_var=None, weight=None, training=False,
                        eps=1e-5):
    """(grad_x, grad_weight, grad_bias) of :func:`batch_norm` at x for grad_out = dL/d out
    (the running statistics are read, never updated).

    g = grad_out * weight; training (batch statistics): grad_x = rstd_j / m (m g - sum_r g
    - xhat sum_r(g xhat)); evaluation (running statistics): grad_x = g rstd_j.
    grad_weight = sum_r grad_out xhat, grad_bias = sum_r grad_out, both None without weight.
    Shapes and errors as :func:`batch_norm`, plus ValueError when grad_out's shape differs from x's.
    """
    x, out_dtype = _input(x)
    grad_out = _grad(grad_out, x)
    training, rm, rv, _ = _batch_setup(x, running_mean, running_var, training)
    gamma, beta = _affine(x, weight, None)
    out, xhat = np.empty_like(x), np.empty_like(x)
    rstd = np.empty(x.shape[1], dtype=x.dtype)
    KB.batch_norm_forward(x, gamma, beta, _eps(eps, x), np.float64(0.0), rm, rv, training, False,
                          out, xhat, rstd)
    grad_x = np.empty_like(x)
    grad_gamma, grad_beta = np.empty_like(gamma), np.empty_like(gamma)
    KB.batch_norm_backward(grad_out, xhat, rstd, gamma, training, grad_x, grad_gamma, grad_beta, True)
    affine = weight is not None
    return (restore(grad_x, out_dtype), restore(grad_gamma, out_dtype) if affine else None,
            restore(grad_beta, out_dtype) if affine else None)


def _dropout_keys(p, seed, step):
    p = as_scalar(p, "p", low=0.0, high=1.0)
    keys = []
    for name, v in (("seed", seed), ("step", step)):
        v = as_int(v, name)
        if not _INT64.min <= v <= _INT64.max:
            raise ValueError(f"{name} must fit in a signed 64-bit integer, got {v}")
        keys.append(np.int64(v))
    return np.float64(p), keys[0], keys[1]


def dropout(x, p=0.5, training=True, seed=0, step=0):
    """Inverted dropout, as ``torch.nn.functional.dropout``: out = x * keep / (1 - p).

    keep_ij = (u >= p) with u = fastgrad.kernels.dropout.uniform(seed, step, 0, i * n + j), a
    counter-based uniform in [0, 1): the same (seed, step) give the same mask in every
    process and thread count, for float32 and float64 alike. Each element is kept with
    probability 1 - p; a dropped NaN or inf gives NaN (x * 0, as PyTorch). p = 0 or
    ``training=False`` returns a copy of x; p = 1 gives zeros. x (m, n). Returns out (m, n).
    Raises ValueError for x not 2-D or empty, p outside [0, 1], seed/step outside int64;
    TypeError for a non-integer seed/step or a non-bool training.
    """
    x, out_dtype = _input(x)
    training = _flag(training, "training")
    p, seed, step = _dropout_keys(p, seed, step)
    if not training:
        return restore(x.copy(), out_dtype)
    out = np.empty_like(x)
    KD.dropout_forward(x, out, p, seed, step, np.int64(0))
    return restore(out, out_dtype)


def dropout_backward(grad_out, p=0.5, seed=0, step=0):
    """grad_x = grad_out * keep / (1 - p) for the mask of ``dropout(x, p, True, seed, step)``.

    grad_out (m, n); returns grad_x (m, n) in grad_out's dtype. Raises as :func:`dropout`.
    """
    grad_out, out_dtype = _input(grad_out, "grad_out")
    p, seed, step = _dropout_keys(p, seed, step)
    grad_x = np.empty_like(grad_out)
    KD.dropout_backward(grad_out, grad_x, p, seed, step, np.int64(0))
    return restore(grad_x, out_dtype)

"""The dense (fully connected) layer: y = act(x @ W + b) and its backward pass."""
from __future__ import annotations

import numpy as np

from fastgrad._checks import check_same_shape
from fastgrad.functional._inputs import float_input, restore
from fastgrad._threads import blas_phase
from fastgrad.functional.activations import activation_spec
from fastgrad.kernels import dense as K
from fastgrad.kernels.gemm import MACHINE_CORES


def _check_layer(x, W, b=None):
    """(x, W, b, out_dtype) checked; b stays None when None (no bias)."""
    x, out_dtype = float_input(x, "x", ndim=2)
    W, _ = float_input(W, "W", ndim=2, dtype=x.dtype)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"W must have shape ({x.shape[1]}, n_out) to match x's {x.shape[1]} features, got {W.shape}")
    if b is not None:
        b, _ = float_input(b, "b", ndim=1, dtype=x.dtype)
        if b.shape != (W.shape[1],):
            raise ValueError(f"b must have shape ({W.shape[1]},) to match W {W.shape}, got {b.shape}")
    return x, W, b, out_dtype


def dense_forward(x, W, b, activation="identity", return_preactivation=False, **activation_options):
    """y = act(z) with z = x @ W + b.

    x (n, n_in), W (n_in, n_out), b (n_out,) or None (no bias), float32 or float64 (W
    and b are cast to x's dtype; float16 is computed in float32 and returned as
    float16); y and z (n, n_out). ``activation`` is any name of
    ``fastgrad.functional.ACTIVATIONS`` (softmax/log_softmax act along each row), with
    its options as keywords (``alpha=0.2``, ``approximate="tanh"``, ...). The product is
    BLAS, cut into pieces fixed by the sizes and run on Numba's threads, so the result does
    not depend on the thread count and equals a model's Dense layer bit for bit
    (kernels/gemm.py); the bias add and the activation are one fused pass. Returns y, or
    (y, z) when ``return_preactivation``.
    """
    x, W, b, out_dtype = _check_layer(x, W, b)
    code, p1, p2 = activation_spec(activation, **activation_options)
    t = x.dtype.type
    if b is None:
        b = np.zeros(W.shape[1], dtype=x.dtype)
    z = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    y = np.empty_like(z)
    with blas_phase():
        K.dense_forward(x, W, b, z, y, code, t(p1), t(p2), MACHINE_CORES)
    y, z = restore(y, out_dtype), restore(z, out_dtype)
    return (y, z) if return_preactivation else y


def dense_backward(x, W, z, grad_y, activation="identity", bias=True, **activation_options):
    """(grad_x, grad_W, grad_b) of y = act(x @ W + b), given z = x @ W + b and grad_y = dL/dy.

    delta = grad_y * act'(z) (row-wise Jacobian product for softmax/log_softmax);
    grad_W = x^T delta (n_in, n_out); grad_b = sum over rows of delta (n_out,), or None
    when ``bias=False`` (a layer called with ``b=None``); grad_x = delta W^T (n, n_in).
    All in x's dtype (float16 input: computed in float32, returned as float16). The
    products as in :func:`dense_forward`.
    """
    x, W, _, out_dtype = _check_layer(x, W)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {type(bias).__name__} {bias!r}")
    z, _ = float_input(z, "z", ndim=2, dtype=x.dtype)
    if z.shape != (x.shape[0], W.shape[1]):
        raise ValueError(f"z must have shape {(x.shape[0], W.shape[1])} (x @ W), got {z.shape}")
    grad_y, _ = float_input(grad_y, "grad_y", ndim=2, dtype=x.dtype)
    check_same_shape(z, grad_y, "z", "grad_y")
    code, p1, p2 = activation_spec(activation, **activation_options)
    t = x.dtype.type
    delta = np.empty_like(z)
    grad_x = np.empty_like(x)
    grad_W = np.empty_like(W)
    grad_b = np.empty(W.shape[1], dtype=x.dtype)
    with blas_phase():
        K.dense_backward(x, W, z, grad_y, code, t(p1), t(p2), delta, grad_x, grad_W, grad_b, True, MACHINE_CORES)
    return restore(grad_x, out_dtype), restore(grad_W, out_dtype), (restore(grad_b, out_dtype) if bias else None)

"""The dense (fully connected) layer: y = act(x @ W + b) and its backward pass."""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_float_array, check_same_shape
from fastgrad._threads import blas_phase
from fastgrad.functional.activations import activation_spec
from fastgrad.kernels import dense as K


def _check_layer(x, W, b=None):
    x = as_float_array(x, "x", ndim=2)
    W = as_float_array(W, "W", ndim=2, dtype=x.dtype)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"W must have shape ({x.shape[1]}, n_out) to match x's {x.shape[1]} features, got {W.shape}")
    if b is not None:
        b = as_float_array(b, "b", ndim=1, dtype=x.dtype)
        if b.shape != (W.shape[1],):
            raise ValueError(f"b must have shape ({W.shape[1]},) to match W {W.shape}, got {b.shape}")
    return x, W, b


def dense_forward(x, W, b, activation="identity", return_preactivation=False, **activation_options):
    """y = act(z) with z = x @ W + b.

    x (n, n_in), W (n_in, n_out), b (n_out,), float32 or float64 (W and b are cast to
    x's dtype); y and z (n, n_out). The product is NumPy's BLAS (its threads); the fused
    pass runs on the calling thread (see fastgrad._threads for why). ``activation`` is any name of
    ``fastgrad.functional.ACTIVATIONS`` (softmax/log_softmax act along each row), with
    its options as keywords (``alpha=0.2``, ``approximate="tanh"``, ...). The product is
    BLAS; the bias add and the activation are one fused pass. Returns y, or (y, z)
    when ``return_preactivation``.
    """
    x, W, b = _check_layer(x, W, b)
    code, p1, p2 = activation_spec(activation, **activation_options)
    t = x.dtype.type
    z = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    y = np.empty_like(z)
    np.matmul(x, W, out=z)
    with blas_phase():
        K.forward_after_product(z, b, y, code, t(p1), t(p2))
    return (y, z) if return_preactivation else y


def dense_backward(x, W, z, grad_y, activation="identity", **activation_options):
    """(grad_x, grad_W, grad_b) of y = act(x @ W + b), given z = x @ W + b and grad_y = dL/dy.

    delta = grad_y * act'(z) (row-wise Jacobian product for softmax/log_softmax);
    grad_W = x^T delta (n_in, n_out); grad_b = sum over rows of delta (n_out,);
    grad_x = delta W^T (n, n_in). All in x's dtype.
    """
    x, W, _ = _check_layer(x, W)
    z = as_float_array(z, "z", ndim=2, dtype=x.dtype)
    if z.shape != (x.shape[0], W.shape[1]):
        raise ValueError(f"z must have shape {(x.shape[0], W.shape[1])} (x @ W), got {z.shape}")
    grad_y = as_float_array(grad_y, "grad_y", ndim=2, dtype=x.dtype)
    check_same_shape(z, grad_y, "z", "grad_y")
    code, p1, p2 = activation_spec(activation, **activation_options)
    t = x.dtype.type
    delta = np.empty_like(z)
    grad_x = np.empty_like(x)
    grad_W = np.empty_like(W)
    grad_b = np.empty(W.shape[1], dtype=x.dtype)
    with blas_phase():
        K.backward_before_products(z, grad_y, code, t(p1), t(p2), delta, grad_b)
    np.matmul(x.T, delta, out=grad_W)
    np.matmul(delta, W.T, out=grad_x)
    return grad_x, grad_W, grad_b

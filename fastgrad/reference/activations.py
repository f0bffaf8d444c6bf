"""Activations in plain NumPy: the readable definitions the kernels are tested against.

Same names and signatures as :mod:`fastgrad.functional`. ``z`` is an array of any
shape; outputs keep its dtype. ``<name>_backward(z, grad_a)`` is the vector-Jacobian
product grad_a * da/dz (row-wise Jacobian product for softmax/log_softmax).
"""
import numpy as np

_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def identity(z):
    return z.copy()


def identity_backward(z, grad_a):
    return grad_a.copy()


def relu(z):
    return np.where(z > 0, z, 0).astype(z.dtype)


def relu_backward(z, grad_a):
    return np.where(z > 0, grad_a, 0).astype(z.dtype)


def leaky_relu(z, alpha=0.01):
    return np.where(z > 0, z, alpha * z).astype(z.dtype)


def leaky_relu_backward(z, grad_a, alpha=0.01):
    return np.where(z > 0, grad_a, alpha * grad_a).astype(z.dtype)


def elu(z, alpha=1.0):
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))).astype(z.dtype)


def elu_backward(z, grad_a, alpha=1.0):
    return (grad_a * np.where(z > 0, 1, alpha * np.exp(np.minimum(z, 0)))).astype(z.dtype)


def _erf(x):
    from scipy.special import erf  # imported on use: scipy.special costs ~0.25 s to import
    return erf(x)


def gelu(z, approximate="none"):
    if approximate == "tanh":
        return (0.5 * z * (1 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3)))).astype(z.dtype)
    return (0.5 * z * (1 + _erf(z / np.sqrt(2)))).astype(z.dtype)


def gelu_backward(z, grad_a, approximate="none"):
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3))
        du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * z**2)
        d = 0.5 * (1 + t) + 0.5 * z * (1 - t**2) * du
    else:
        d = 0.5 * (1 + _erf(z / np.sqrt(2))) + z * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return (grad_a * d).astype(z.dtype)


def sigmoid(z):
    return _sigmoid(z).astype(z.dtype)


def sigmoid_backward(z, grad_a):
    s = _sigmoid(z)
    return (grad_a * s * (1 - s)).astype(z.dtype)


def tanh(z):
    return np.tanh(z)


def tanh_backward(z, grad_a):
    return (grad_a * (1 - np.tanh(z) ** 2)).astype(z.dtype)


def softplus(z, beta=1.0, threshold=20.0):
    bz = beta * z
    return np.where(bz > threshold, z, (np.maximum(bz, 0) + np.log1p(np.exp(-np.abs(bz)))) / beta).astype(z.dtype)


def softplus_backward(z, grad_a, beta=1.0, threshold=20.0):
    bz = beta * z
    return (grad_a * np.where(bz > threshold, 1, _sigmoid(bz))).astype(z.dtype)


def silu(z):
    return (z * _sigmoid(z)).astype(z.dtype)


def silu_backward(z, grad_a):
    s = _sigmoid(z)
    return (grad_a * s * (1 + z * (1 - s))).astype(z.dtype)


def _softmax(z, axis):
    m = np.max(z, axis=axis, keepdims=True)
    inf_rows = np.isposinf(m)
    shifted = np.where(inf_rows, np.where(np.isposinf(z), 0.0, -np.inf), z - np.where(inf_rows, 0, m))
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True), shifted


def softmax(z, axis=-1):
    return _softmax(z, axis)[0].astype(z.dtype)


def softmax_backward(z, grad_a, axis=-1):
    a = _softmax(z, axis)[0]
    return (a * (grad_a - np.sum(grad_a * a, axis=axis, keepdims=True))).astype(z.dtype)


def log_softmax(z, axis=-1):
    p, shifted = _softmax(z, axis)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))).astype(z.dtype)


def log_softmax_backward(z, grad_a, axis=-1):
    a = _softmax(z, axis)[0]
    return (grad_a - a * np.sum(grad_a, axis=axis, keepdims=True)).astype(z.dtype)

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


def _nan_or(z, value):
    """NaN where z is NaN, else ``value``: a derivative at NaN is NaN."""
    return np.where(np.isnan(z), z, value)


def relu(z):
    return np.where(z < 0, 0, z).astype(z.dtype)


def relu_backward(z, grad_a):
    return np.where(z > 0, grad_a, _nan_or(z, 0)).astype(z.dtype)


def leaky_relu(z, alpha=0.01):
    return np.where(z > 0, z, alpha * z).astype(z.dtype)


def leaky_relu_backward(z, grad_a, alpha=0.01):
    return np.where(z > 0, grad_a, _nan_or(z, alpha * grad_a)).astype(z.dtype)


def elu(z, alpha=1.0):
    # np.where, not np.minimum(z, 0): that gives +0.0 for -0.0, and elu(-0.0) is -0.0
    return np.where(z > 0, z, alpha * np.expm1(np.where(z > 0, 0, z))).astype(z.dtype)


def elu_backward(z, grad_a, alpha=1.0):
    return (grad_a * np.where(z > 0, 1, alpha * np.exp(np.minimum(z, 0)))).astype(z.dtype)


def _normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2 (no cancellation in the negative tail)."""
    from scipy.special import erfc  # imported on use: scipy.special costs ~0.25 s to import
    return 0.5 * erfc(-x / np.sqrt(2))


def gelu(z, approximate="none"):
    """z Phi(z); "tanh": 0.5 z (1 + tanh u) = z sigmoid(2u), u = sqrt(2/pi) (z + 0.044715 z^3)."""
    x = z.astype(np.float64)
    if approximate == "tanh":
        return (x * _sigmoid(2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3))).astype(z.dtype)
    return (x * _normal_cdf(x)).astype(z.dtype)


def gelu_backward(z, grad_a, approximate="none"):
    x = z.astype(np.float64)
    if approximate == "tanh":
        # finite |x| beyond 1e4 at the bound (the derivative is 0 or 1 there; x**3 would overflow)
        x = np.where(np.isfinite(x), np.clip(x, -1e4, 1e4), x)
        u2 = 2 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        du2 = 2 * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x**2)
        d = _sigmoid(u2) * (1 + x * _sigmoid(-u2) * du2)
    else:
        d = _normal_cdf(x) + x * np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
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
    """(softmax, z - max, log(sum exp(z - max))) in float64 along ``axis``.

    log(sum) is log1p of the sum without the max's own term (exactly 1), which keeps
    small log-probabilities accurate; a row whose max is +inf gets equal mass on its
    +inf entries; a NaN anywhere makes its row NaN (through its max).
    """
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    inf_rows = np.isposinf(m)
    with np.errstate(invalid="ignore"):
        shifted = np.where(inf_rows, np.where(np.isposinf(z), 0.0, -np.inf), z - np.where(inf_rows, 0, m))
        e = np.exp(shifted)
        first_max = np.cumsum(shifted == 0, axis=axis) == 1
        rest = np.sum(np.where(first_max & (shifted == 0), 0.0, e), axis=axis, keepdims=True)
        return e / (1 + rest), shifted, np.log1p(rest)


def softmax(z, axis=-1):
    return _softmax(z, axis)[0].astype(z.dtype)


def softmax_backward(z, grad_a, axis=-1):
    a = _softmax(z, axis)[0]
    return (a * (grad_a - np.sum(grad_a * a, axis=axis, keepdims=True))).astype(z.dtype)


def log_softmax(z, axis=-1):
    _, shifted, log_s = _softmax(z, axis)
    return (shifted - log_s).astype(z.dtype)


def log_softmax_backward(z, grad_a, axis=-1):
    a = _softmax(z, axis)[0]
    return (grad_a - a * np.sum(grad_a, axis=axis, keepdims=True)).astype(z.dtype)

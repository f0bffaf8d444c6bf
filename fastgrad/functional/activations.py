"""Activation functions and their vector-Jacobian products (the public, validating wrappers).

Every function takes ``z`` of any shape, 0-d included (softmax/log_softmax: 1-D or
2-D), float32 or float64 (bool/integer input becomes float64; float16 is computed in
float32 and returned as float16; pandas nullable columns become floats with NaN for
missing values; non-contiguous input is copied) and returns a new array of z's dtype
and shape. NaN in ``z`` gives NaN at the same position of the output and of the
gradient (NumPy's rule; PyTorch's relu/leaky_relu backward return a finite gradient
at a NaN input instead). ``<name>_backward(z, grad_a)`` returns
``grad_z = grad_a * d act(z) / dz`` (for softmax/log_softmax the full row-wise
Jacobian product). Empty arrays, complex/object dtypes and a ``grad_a`` of another
shape raise ``ValueError``/``TypeError``.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_int, as_scalar, check_choice, check_in_dtype, check_same_shape
from fastgrad.functional._inputs import float_input, restore
from fastgrad.kernels import activations as K
from fastgrad.kernels import softmax as KS


# The names of the kernels' scalar options p1, p2 per activation code (for messages).
OPTION_NAMES = {K.LEAKY_RELU: ("alpha",), K.ELU: ("alpha",), K.SOFTPLUS: ("beta", "threshold")}


def options_in_dtype(code, p1, p2, dtype, where):
    """(p1, p2) of activation ``code`` as scalars of ``dtype``, or ``ValueError`` naming the option
    when rounding changes it (``_checks.check_in_dtype``: ``softplus(beta=1e300)`` is inf in
    float32, and its output NaN)."""
    names = OPTION_NAMES.get(code)
    if names:
        check_in_dtype([(name, value, True) for name, value in zip(names, (p1, p2))], dtype, where)
    t = np.dtype(dtype).type
    return t(p1), t(p2)


def _forward(code, z, p1=0.0, p2=0.0):
    z, out_dtype = float_input(z, "z")
    a = np.empty_like(z)
    K.activation_forward(code, z.reshape(-1), a.reshape(-1), *options_in_dtype(code, p1, p2, z.dtype, "z's dtype"))
    return restore(a, out_dtype)


def _backward(code, z, grad_a, p1=0.0, p2=0.0):
    z, out_dtype = float_input(z, "z")
    grad_a, _ = float_input(grad_a, "grad_a", dtype=z.dtype)
    check_same_shape(z, grad_a, "z", "grad_a")
    grad_z = np.empty_like(z)
    K.activation_backward(code, z.reshape(-1), grad_a.reshape(-1), grad_z.reshape(-1),
                          *options_in_dtype(code, p1, p2, z.dtype, "z's dtype"))
    return restore(grad_z, out_dtype)


def identity(z):
    """a = z (a copy, in z's float dtype)."""
    return _forward(K.IDENTITY, z)


def identity_backward(z, grad_a):
    """grad_z = grad_a."""
    return _backward(K.IDENTITY, z, grad_a)


def relu(z):
    """a = max(z, 0)."""
    return _forward(K.RELU, z)


def relu_backward(z, grad_a):
    """grad_z = grad_a * [z > 0] (0 at z = 0, as PyTorch)."""
    return _backward(K.RELU, z, grad_a)


def leaky_relu(z, alpha=0.01):
    """a = z if z > 0 else alpha * z."""
    return _forward(K.LEAKY_RELU, z, as_scalar(alpha, "alpha"))


def leaky_relu_backward(z, grad_a, alpha=0.01):
    """grad_z = grad_a * (1 if z > 0 else alpha)."""
    return _backward(K.LEAKY_RELU, z, grad_a, as_scalar(alpha, "alpha"))


def elu(z, alpha=1.0):
    """a = z if z > 0 else alpha * (exp(z) - 1)."""
    return _forward(K.ELU, z, as_scalar(alpha, "alpha"))


def elu_backward(z, grad_a, alpha=1.0):
    """grad_z = grad_a * (1 if z > 0 else alpha * exp(z))."""
    return _backward(K.ELU, z, grad_a, as_scalar(alpha, "alpha"))


def _gelu_code(approximate):
    check_choice(approximate, "approximate", ("none", "tanh"))
    return K.GELU_TANH if approximate == "tanh" else K.GELU


def gelu(z, approximate="none"):
    """a = z * Phi(z) (Phi: standard normal CDF); ``approximate="tanh"``:
    0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), as PyTorch."""
    return _forward(_gelu_code(approximate), z)


def gelu_backward(z, grad_a, approximate="none"):
    """grad_z = grad_a * (Phi(z) + z phi(z)) (or the derivative of the tanh form)."""
    return _backward(_gelu_code(approximate), z, grad_a)


def sigmoid(z):
    """a = 1 / (1 + exp(-z)), computed from exp(-|z|): never overflows."""
    return _forward(K.SIGMOID, z)


def sigmoid_backward(z, grad_a):
    """grad_z = grad_a * s (1 - s), s = sigmoid(z)."""
    return _backward(K.SIGMOID, z, grad_a)


def tanh(z):
    """a = tanh(z)."""
    return _forward(K.TANH, z)


def tanh_backward(z, grad_a):
    """grad_z = grad_a * (1 - tanh(z)^2)."""
    return _backward(K.TANH, z, grad_a)


def _softplus_params(beta, threshold):
    return (as_scalar(beta, "beta", low=0.0, low_open=True), as_scalar(threshold, "threshold"))


def softplus(z, beta=1.0, threshold=20.0):
    """a = log(1 + exp(beta z)) / beta, and a = z where beta z > threshold (PyTorch's rule)."""
    return _forward(K.SOFTPLUS, z, *_softplus_params(beta, threshold))


def softplus_backward(z, grad_a, beta=1.0, threshold=20.0):
    """grad_z = grad_a * sigmoid(beta z) (1 where beta z > threshold)."""
    return _backward(K.SOFTPLUS, z, grad_a, *_softplus_params(beta, threshold))


def silu(z):
    """a = z * sigmoid(z) (swish)."""
    return _forward(K.SILU, z)


def silu_backward(z, grad_a):
    """grad_z = grad_a * s (1 + z (1 - s)), s = sigmoid(z)."""
    return _backward(K.SILU, z, grad_a)


def _rows(z, axis, name="z"):
    """z (a checked 1-D or 2-D float array) as a C-contiguous 2-D array whose rows run
    along ``axis``, and how to undo that."""
    axis = as_int(axis, "axis")   # TypeError for a bool, a float or a string: axis=True is not 1
    if not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be an integer in [{-z.ndim}, {z.ndim}) for a {z.ndim}-D z, got {axis!r}")
    if z.ndim == 1:
        return z.reshape(1, -1), lambda out: out.reshape(-1)
    if axis % 2 == 1:
        return z, lambda out: out
    return np.ascontiguousarray(z.T), lambda out: np.ascontiguousarray(out.T)


def _softmax_forward(z, axis, log):
    z, out_dtype = float_input(z, "z", ndim=(1, 2))
    rows, undo = _rows(z, axis)
    out = np.empty_like(rows)
    KS.softmax_forward(rows, out, log)
    return restore(undo(out), out_dtype)


def _softmax_backward(z, grad_a, axis, log):
    z_arr, out_dtype = float_input(z, "z", ndim=(1, 2))
    grad_a, _ = float_input(grad_a, "grad_a", dtype=z_arr.dtype)
    check_same_shape(z_arr, grad_a, "z", "grad_a")
    rows, undo = _rows(z_arr, axis)
    g_rows, _ = _rows(grad_a, axis, "grad_a")
    out = np.empty_like(rows)
    KS.softmax_backward(rows, g_rows, out, log)
    return restore(undo(out), out_dtype)


def softmax(z, axis=-1):
    """a = exp(z - max) / sum(exp(z - max)) along ``axis`` (never overflows; +inf entries share the mass)."""
    return _softmax_forward(z, axis, False)


def softmax_backward(z, grad_a, axis=-1):
    """grad_z = a * (grad_a - sum(grad_a * a)) along ``axis``, a = softmax(z)."""
    return _softmax_backward(z, grad_a, axis, False)


def log_softmax(z, axis=-1):
    """a = z - max - log(sum(exp(z - max))) along ``axis``."""
    return _softmax_forward(z, axis, True)


def log_softmax_backward(z, grad_a, axis=-1):
    """grad_z = grad_a - softmax(z) * sum(grad_a) along ``axis``."""
    return _softmax_backward(z, grad_a, axis, True)


# name -> (forward, backward); the one table for lookup by string.
ACTIVATIONS = {
    "identity": (identity, identity_backward),
    "relu": (relu, relu_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
    "elu": (elu, elu_backward),
    "gelu": (gelu, gelu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "softplus": (softplus, softplus_backward),
    "silu": (silu, silu_backward),
    "softmax": (softmax, softmax_backward),
    "log_softmax": (log_softmax, log_softmax_backward),
}

_CODES = {"identity": K.IDENTITY, "relu": K.RELU, "leaky_relu": K.LEAKY_RELU, "elu": K.ELU,
          "sigmoid": K.SIGMOID, "tanh": K.TANH, "softplus": K.SOFTPLUS, "silu": K.SILU,
          "softmax": K.SOFTMAX, "log_softmax": K.LOG_SOFTMAX}
_DEFAULTS = {"leaky_relu": {"alpha": 0.01}, "elu": {"alpha": 1.0},
             "softplus": {"beta": 1.0, "threshold": 20.0}, "gelu": {"approximate": "none"}}


# Other libraries' names for the same activations (Keras's ``swish``).
ACTIVATION_ALIASES = {"swish": "silu"}


def activation_spec(name, **options):
    """(kernel code, p1, p2) for activation ``name`` (or an alias: ``swish`` is ``silu``) and its
    options, e.g. ``alpha=0.2``.

    Raises ``ValueError`` for an unknown name or an option the activation does not take.
    """
    check_choice(name, "activation", tuple(ACTIVATIONS) + tuple(ACTIVATION_ALIASES))
    name = ACTIVATION_ALIASES.get(name, name)
    params = dict(_DEFAULTS.get(name, {}))
    unknown = set(options) - set(params)
    if unknown:
        raise ValueError(f"activation {name!r} takes options {sorted(params) or 'none'}, got {sorted(unknown)}")
    params.update(options)
    if name == "gelu":
        return _gelu_code(params["approximate"]), 0.0, 0.0
    if name == "softplus":
        return (K.SOFTPLUS, *_softplus_params(params["beta"], params["threshold"]))
    if name in ("leaky_relu", "elu"):
        return _CODES[name], as_scalar(params["alpha"], "alpha"), 0.0
    return _CODES[name], 0.0, 0.0

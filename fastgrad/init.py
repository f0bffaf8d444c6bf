"""Weight initializers with one signature, ``(shape, gain=1.0, rng=None, dtype=float64)``.

Fans follow fastgrad's layout of a dense weight, ``W`` of shape ``(n_in, n_out)``:
``fan_in = shape[0]``, ``fan_out = shape[1]``; for a 1-D shape (a bias)
``fan_in = fan_out = shape[0]``. Variances (times ``gain**2``):

* Xavier/Glorot: ``2 / (fan_in + fan_out)`` -- uniform on ``[-a, a]`` with ``a = sqrt(3 var)``, or normal;
* He/Kaiming: ``2 / fan_in`` (the ReLU factor 2 is built in: use ``gain=1`` with ReLU);
* LeCun: ``1 / fan_in`` (normal, not truncated).

``rng`` is a ``numpy.random.Generator`` (advanced by the draw), a seed, or None
(fresh entropy). Draws are made in float64 and cast, so a seed gives the same
numbers in either dtype. ``zeros``/``ones`` take the same arguments and ignore
``gain`` and ``rng``, so that any initializer can be looked up by name in
:data:`INITIALIZERS` and called alike.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from fastgrad._checks import as_float_dtype, as_int, as_scalar

__all__ = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal", "zeros", "ones",
           "calculate_gain", "fans", "INITIALIZERS", "GAINS")


def _shape(shape) -> tuple:
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = tuple(as_int(s, f"shape[{i}]", low=1) for i, s in enumerate(shape))
    if len(shape) not in (1, 2):
        raise ValueError(f"shape must be 1-D (n,) or 2-D (n_in, n_out), got {shape}")
    return shape


def fans(shape) -> tuple:
    """``(fan_in, fan_out)``: ``(shape[0], shape[1])`` for 2-D, ``(n, n)`` for 1-D shapes."""
    shape = _shape(shape)
    return (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])


def _draw(kind, shape, std, rng, dtype):
    shape = _shape(shape)
    dtype = as_float_dtype(dtype)
    rng = np.random.default_rng(rng)
    if kind == "uniform":
        a = math.sqrt(3.0) * std
        return rng.uniform(-a, a, size=shape).astype(dtype, copy=False)
    return (std * rng.standard_normal(shape)).astype(dtype, copy=False)


def _gain(gain):
    return as_scalar(gain, "gain", low=0.0)


def xavier_uniform(shape, gain=1.0, rng=None, dtype=np.float64):
    """Uniform with variance ``gain^2 * 2 / (fan_in + fan_out)``: ``U(-a, a)``, ``a = gain sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return _draw("uniform", shape, _gain(gain) * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def xavier_normal(shape, gain=1.0, rng=None, dtype=np.float64):
    """Normal with std ``gain sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return _draw("normal", shape, _gain(gain) * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def he_uniform(shape, gain=1.0, rng=None, dtype=np.float64):
    """Uniform with variance ``gain^2 * 2 / fan_in``: ``U(-a, a)``, ``a = gain sqrt(6 / fan_in)``."""
    return _draw("uniform", shape, _gain(gain) * math.sqrt(2.0 / fans(shape)[0]), rng, dtype)


def he_normal(shape, gain=1.0, rng=None, dtype=np.float64):
    """Normal with std ``gain sqrt(2 / fan_in)``."""
    return _draw("normal", shape, _gain(gain) * math.sqrt(2.0 / fans(shape)[0]), rng, dtype)


def lecun_normal(shape, gain=1.0, rng=None, dtype=np.float64):
    """Normal with std ``gain sqrt(1 / fan_in)``."""
    return _draw("normal", shape, _gain(gain) * math.sqrt(1.0 / fans(shape)[0]), rng, dtype)


def zeros(shape, gain=1.0, rng=None, dtype=np.float64):
    """An array of zeros (``gain`` and ``rng`` are ignored)."""
    return np.zeros(_shape(shape), dtype=as_float_dtype(dtype))


def ones(shape, gain=1.0, rng=None, dtype=np.float64):
    """An array of ones (``gain`` and ``rng`` are ignored)."""
    return np.ones(_shape(shape), dtype=as_float_dtype(dtype))


INITIALIZERS = {"xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal, "he_uniform": he_uniform,
                "he_normal": he_normal, "lecun_normal": lecun_normal, "zeros": zeros, "ones": ones}
# Keras's names (Glorot) and PyTorch's (Kaiming, whose default mode fan_in and gain sqrt(2) are He's).
INITIALIZER_ALIASES = {"glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
                       "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}

# torch.nn.init.calculate_gain's values where it knows the name; 1 for the others.
GAINS = {"identity": 1.0, "linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0),
         "selu": 3.0 / 4.0, "elu": 1.0, "gelu": 1.0, "softplus": 1.0, "silu": 1.0, "softmax": 1.0,
         "log_softmax": 1.0}


def calculate_gain(activation, param=None) -> float:
    """The gain recommended for ``activation`` (torch.nn.init.calculate_gain's values).

    identity/linear 1, sigmoid 1, tanh 5/3, relu sqrt(2), selu 3/4,
    leaky_relu ``sqrt(2 / (1 + a^2))`` with negative slope ``a = param`` (default 0.01);
    elu, gelu, softplus, silu, softmax, log_softmax: 1 (PyTorch has no value for them).
    Raises ``ValueError`` for an unknown name.
    """
    if activation == "leaky_relu":
        slope = 0.01 if param is None else as_scalar(param, "param")
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if activation not in GAINS:
        names = ", ".join(sorted([*GAINS, "leaky_relu"]))
        raise ValueError(f"activation must be one of {names}; got {activation!r}")
    return GAINS[activation]

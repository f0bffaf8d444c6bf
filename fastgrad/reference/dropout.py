"""NumPy twin of :mod:`fastgrad.kernels.dropout`: the same counter-based generator (SplitMix64's
finalizer on uint64 arrays, wrapping modulo 2**64), hence bit-identical masks, and the same
inverted dropout ``out = x * (keep ? 1/(1-p) : 0)`` with ``1/(1-p)`` in the array's dtype."""
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _u64(v):
    """An int64 (or int64 array) reinterpreted as uint64 (two's complement wrap)."""
    return np.asarray(v, dtype=np.int64).astype(np.uint64)


def mix64(z):
    """SplitMix64's finalizer of uint64 ``z`` (scalar or array)."""
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stream_key(seed, step, op):
    """h = mix64((h ^ key) + GOLDEN) for key = seed, step, op in turn, from h = 0 (uint64)."""
    h = np.uint64(0)
    with np.errstate(over="ignore"):
        for key in (seed, step, op):
            h = mix64((h ^ _u64(key)) + GOLDEN)
    return h


def uniform_at(key, i):
    """float64 in [0, 1): the top 53 bits of mix64(key + (i + 1) GOLDEN) times 2**-53 (i: int or array)."""
    with np.errstate(over="ignore"):
        h = mix64(np.uint64(key) + (_u64(i) + np.uint64(1)) * GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def uniform(seed, step, op, i):
    """The generator's value for the four int64 keys (i may be an array of element indices)."""
    return uniform_at(stream_key(seed, step, op), i)


def _apply_mask(src, dst, p, seed, step, op):
    m, n = src.shape
    t = src.dtype.type
    keep = uniform(seed, step, op, np.arange(m * n).reshape(m, n)) >= p
    with np.errstate(divide="ignore"):  # p = 1: the factor is inf, and never selected
        scale = t(1.0) / t(1.0 - p)
    dst[...] = src * np.where(keep, scale, t(0.0))


def dropout_forward(x, out, p, seed, step, op):
    """out = x * keep / (1 - p), keep = uniform(seed, step, op, r * n + j) >= p."""
    _apply_mask(x, out, p, seed, step, op)


def dropout_backward(grad_out, grad_x, p, seed, step, op):
    """grad_x = grad_out * keep / (1 - p) with the forward's mask."""
    _apply_mask(grad_out, grad_x, p, seed, step, op)

"""Inverted dropout (``torch.nn.Dropout`` semantics) with masks from a counter-based generator.

Element ``i = r * n + j`` of an (m, n) array is kept when ``uniform(seed, step, op, i) >= p``
and then scaled by ``1 / (1 - p)``: out = x * (keep ? 1/(1-p) : 0). As in PyTorch's CPU code
(``input * (bernoulli(1 - p) / (1 - p))``) the factor ``1/(1-p)`` is computed in the array's
dtype and multiplied in, so a dropped NaN or inf gives NaN (NaN * 0), p = 0 is the identity
and p = 1 gives x * 0.

The generator: a key for the (seed, step, op) stream is made by absorbing the three int64
keys one at a time with ``h = mix64((h ^ key) + GOLDEN)`` from h = 0; element ``i`` of the
stream is ``mix64(key + (i + 1) * GOLDEN)``, the i-th output of SplitMix64 seeded with the
key. ``mix64`` is SplitMix64's finalizer (Steele, Lea & Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014; constants of Vigna's splitmix64.c,
https://prng.di.unimi.it/splitmix64.c), and the top 53 bits give a float64 in [0, 1).
Integer arithmetic wraps modulo 2**64, so the same keys give the same value in every
process, for every thread count and dtype; :mod:`fastgrad.reference.dropout` recomputes it
bit for bit with NumPy uint64 arrays.

Shapes: x, out, grad_out, grad_x (m, n) C-contiguous, one float dtype; p a float64 in
[0, 1]; seed, step, op int64.
"""
import numpy as np

from fastgrad._jit import inline, kernel, like

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_UNIT = 2.0 ** -53


@inline
def mix64(z):
    """SplitMix64's finalizer of the uint64 ``z`` (a bijection with full avalanche)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@inline
def stream_key(seed, step, op):
    """The uint64 key of the (seed, step, op) stream: each int64 key absorbed by
    h = mix64((h ^ key) + GOLDEN), starting from h = 0."""
    h = np.uint64(0)
    h = mix64((h ^ np.uint64(seed)) + GOLDEN)
    h = mix64((h ^ np.uint64(step)) + GOLDEN)
    return mix64((h ^ np.uint64(op)) + GOLDEN)


@inline
def uniform_at(key, i):
    """Element ``i`` of the stream ``key`` as a float64 in [0, 1): the top 53 bits of
    mix64(key + (i + 1) * GOLDEN), times 2**-53."""
    h = mix64(key + (np.uint64(i) + np.uint64(1)) * GOLDEN)
    return np.float64(np.int64(h >> _S11)) * _UNIT


@inline
def uniform(seed, step, op, i):
    """A float64 in [0, 1) determined by the four int64 keys alone (see the module doc)."""
    return uniform_at(stream_key(seed, step, op), i)


@inline
def _threshold(p):
    """ceil(p * 2**53) as uint64: with u = k * 2**-53 (k the top 53 bits of the hash),
    u >= p exactly when k >= ceil(p * 2**53) (p * 2**53 is exact), so the mask is compared
    in integers, without converting each hash to a float."""
    return np.uint64(np.ceil(p * 9007199254740992.0))


@inline
def _apply_mask(src, dst, p, seed, step, op):
    """dst = src * (keep ? 1/(1-p) : 0), keep = uniform(seed, step, op, r * n + j) >= p."""
    m, n = src.shape
    key = stream_key(seed, step, op)
    threshold = _threshold(p)
    scale = like(src, 1.0) / like(src, 1.0 - p)
    zero = like(src, 0.0)
    for r in range(m):
        s = src[r]
        d = dst[r]
        counter = key + np.uint64(r * n + 1) * GOLDEN  # SplitMix64's state before element r * n
        for j in range(n):
            keep = (mix64(counter) >> _S11) >= threshold
            d[j] = s[j] * (scale if keep else zero)
            counter += GOLDEN


@kernel
def dropout_forward(x, out, p, seed, step, op):
    """out = x * keep / (1 - p), keep = uniform(seed, step, op, r * n + j) >= p."""
    _apply_mask(x, out, p, seed, step, op)


@kernel
def dropout_backward(grad_out, grad_x, p, seed, step, op):
    """grad_x = grad_out * keep / (1 - p), with the forward's mask recomputed from the keys."""
    _apply_mask(grad_out, grad_x, p, seed, step, op)

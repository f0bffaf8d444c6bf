"""Activation functions and their derivatives, written once as scalars and reused.

Each activation is a pair of inlined scalar functions, ``<name>(z, p1, p2)`` and
``<name>_grad(z, p1, p2)`` (d a / d z). ``forward_range``/``backward_range`` apply one of
them, chosen by an integer code, to a slice of a flat array: the functional
kernels, the dense-layer kernels and the compiled training loop all go through
these two, so every activation's math exists exactly once in compiled code.

NaN in ``z`` gives NaN in ``a`` and in ``grad_z`` at the same position (relu and
leaky_relu included, whose ``z > 0`` tests would otherwise pick a finite branch).

Parameters ``p1``/``p2`` carry the activation's options in the array's dtype:
leaky_relu (alpha, -), elu (alpha, -), softplus (beta, threshold); unused otherwise.
"""


import numpy as np

from fastgrad._jit import block_bounds, by_float_type, inline, kernel, like, muladd, n_blocks, prange, spliced
from fastgrad.kernels.mathfns import erfc, exp, exp32_sum, expm1, log1p_unit

IDENTITY, RELU, LEAKY_RELU, ELU, GELU, GELU_TANH, SIGMOID, TANH, SOFTPLUS, SILU = range(10)
# Row-wise activations: handled by kernels/softmax.py, dispatched by the dense kernels.
SOFTMAX, LOG_SOFTMAX = 10, 11

_SQRT_HALF = 0.7071067811865476      # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327   # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_C = 0.044715
_U2_A = 2.0 * _SQRT_2_OVER_PI * _GELU_C   # GELU-tanh's 2u = z (A z^2 + B)
_U2_B = 2.0 * _SQRT_2_OVER_PI


@spliced
def sigmoid(z):
    """1 / (1 + exp(-z)), from exp(-|z|) so that it never overflows."""
    one = like(z, 1.0)
    e = exp(-np.abs(z))
    r = one / (one + e)
    return r if z >= 0 else e * r


@spliced
def sigmoid_grad(z):
    s = sigmoid(z)
    return s * (like(z, 1.0) - s)


@spliced
def tanh(z):
    """tanh from one exp: (1 - e) / (1 + e), e = exp(-2|z|), and its odd Taylor series
    below |z| = 1/16 where that quotient would cancel. libm's tanh costs ~5 exps here."""
    az = np.abs(z)
    if az < like(z, 0.0625):
        z2 = z * z
        poly = like(z, 21844.0 / 6081075.0)
        poly = muladd(poly, z2, like(z, -1382.0 / 155925.0))
        poly = muladd(poly, z2, like(z, 62.0 / 2835.0))
        poly = muladd(poly, z2, like(z, -17.0 / 315.0))
        poly = muladd(poly, z2, like(z, 2.0 / 15.0))
        poly = muladd(poly, z2, like(z, -1.0 / 3.0))
        # the sign of z: the sum is +0 at z = -0 (IEEE: -0 + +0 = +0); tanh(-0) = -0 (C99, NumPy)
        return np.copysign(muladd(z * z2, poly, z), z)
    e = exp(like(z, -2.0) * az)
    t = (like(z, 1.0) - e) / (like(z, 1.0) + e)
    return t if z >= 0 else -t


@spliced
def tanh_grad(z):
    t = tanh(z)
    return muladd(-t, t, like(z, 1.0))


@spliced
def _normal_cdf(z):
    """Phi(z) = erfc(-z / sqrt 2) / 2: no cancellation in the negative tail, where
    (1 + erf(z / sqrt 2)) / 2 loses every digit (x = -8: 6e-16 of 1). erfc is the
    vectorizable one of kernels.mathfns (libm's, a call per element, was 10x slower)."""
    return like(z, 0.5) * erfc(-z * like(z, _SQRT_HALF))


@spliced
def gelu(z):
    """z * Phi(z), Phi the standard normal CDF."""
    return z * _normal_cdf(z)


@spliced
def gelu_grad(z):
    half = like(z, 0.5)
    return muladd(z * like(z, _INV_SQRT_2PI), exp(-half * z * z), _normal_cdf(z))


@spliced
def _gelu_tanh_u2(z):
    """2u = 2 sqrt(2/pi) (z + 0.044715 z^3), as z (a + b z^2): three roundings."""
    return z * muladd(like(z, _U2_A), z * z, like(z, _U2_B))


@spliced
def _sigmoid_pair(e, nonnegative):
    """(sigmoid(x), sigmoid(-x)) from e = exp(-|x|) and whether x >= 0: 1/(1+e) and e/(1+e)."""
    r = like(e, 1.0) / (like(e, 1.0) + e)
    er = e * r
    return (r, er) if nonnegative else (er, r)


@spliced
def _gelu_tanh_sigmoids64(z):
    u2 = _gelu_tanh_u2(z)
    return _sigmoid_pair(exp(-np.abs(u2)), u2 >= 0)


_U2_A32 = np.float32(_U2_A), np.float32(_U2_A - float(np.float32(_U2_A)))   # float32 head and tail
_U2_B32 = np.float32(_U2_B), np.float32(_U2_B - float(np.float32(_U2_B)))


@spliced
def _gelu_tanh_sigmoids32(z):
    """As the float64 form, with 2u carried to exp as a float32 pair hi + lo (exp32_sum): exp(-|2u|)
    multiplies the relative error of 2u by |2u| (87 at z = -10), and 2u rounded three times in
    float32 (with rounded constants) gave up to 1.3e-5 relative error in the negative tail.
    Here z^2 and z p are split exactly by fused multiply-adds and the constants carry a tail,
    so 2u keeps only the rounding of p = A z^2 + B (half an ulp). On a CPU without FMA the
    tails vanish and the error is the old one."""
    t = z * z
    t_err = muladd(z, z, -t)
    p = muladd(_U2_A32[0], t, _U2_B32[0])
    p_err = muladd(_U2_A32[0], t_err, muladd(_U2_A32[1], t, _U2_B32[1]))
    hi = z * p
    lo = muladd(z, p_err, muladd(z, p, -hi))
    lo = lo if np.abs(hi) < np.float32(np.inf) else np.float32(0.0)
    e = exp32_sum(-np.abs(hi), -lo if hi >= 0 else lo)
    return _sigmoid_pair(e, hi >= 0)


# (sigmoid(2u), sigmoid(-2u)) from one exp, 2u = 2 sqrt(2/pi) (z + 0.044715 z^3).
_gelu_tanh_sigmoids = by_float_type(_gelu_tanh_sigmoids32, _gelu_tanh_sigmoids64)


@spliced
def gelu_tanh(z):
    """0.5 z (1 + tanh u), u = sqrt(2/pi) (z + 0.044715 z^3), computed as z sigmoid(2u):
    the same number without the cancellation of 1 + tanh u in the negative tail."""
    s, _ = _gelu_tanh_sigmoids(z)
    return z * s


@spliced
def gelu_tanh_grad(z):
    """s + z s (1 - s) 2u', s = sigmoid(2u); 1 - s is taken as sigmoid(-2u) (no cancellation).
    Written s + ((s z) sigmoid(-2u)) 2u' with z^2 in 2u' at most 1e8 (|z| = 1e4, where the
    derivative is already 0 or 1 in both dtypes), so that no finite z meets 0 * inf: with
    s (1 + z sigmoid(-2u) 2u') the bracket overflowed from |z| ~ 1e13 (float32) and gave NaN.
    NaN and +-inf give NaN, as in PyTorch."""
    s, sm = _gelu_tanh_sigmoids(z)
    z2 = z * z
    z2 = z2 if z2 < like(z, 1e8) else like(z, 1e8)
    du2 = like(z, _U2_B) * muladd(like(z, 3.0 * _GELU_C), z2, like(z, 1.0))
    return muladd(s * z * sm, du2, s)


@spliced
def softplus(z, beta, threshold):
    """log(1 + exp(beta z)) / beta, and z itself where beta z > threshold (PyTorch's rule),
    as (max(beta z, 0) + log(1 + exp(-|beta z|))) / beta, which never overflows."""
    bz = beta * z
    return z if bz > threshold else (max(bz, like(z, 0.0)) + log1p_unit(exp(-np.abs(bz)))) / beta


@spliced
def softplus_grad(z, beta, threshold):
    bz = beta * z
    return like(z, 1.0) if bz > threshold else sigmoid(bz)


@spliced
def silu(z):
    return z * sigmoid(z)


@spliced
def silu_grad(z):
    s = sigmoid(z)
    return s * muladd(z, like(z, 1.0) - s, like(z, 1.0))


@spliced
def elu(z, alpha):
    return z if z > 0 else alpha * expm1(z)


@spliced
def elu_grad(z, alpha):
    return like(z, 1.0) if z > 0 else alpha * exp(z)


@spliced
def nan_or(z, value):
    """``z`` where z is NaN, else ``value``: a derivative at NaN is NaN (a branch on
    ``z > 0`` alone would hand back a finite gradient for a NaN input)."""
    return z if z != z else value


# One loop per activation and direction over flat slices (a may be z; grad_z may be grad_a),
# each compiled on its own: forward_range/backward_range choose one by code, and a caller
# with the code fixed (kernels/activation_layer.py's per-activation kernels) compiles only
# the loop it calls. Callers pass slices (``z[lo:hi]``) rather than bounds: LLVM vectorizes
# a loop over a whole slice, but not one over ``range(lo, hi)`` of the full arrays (5-20x).

@inline
def _identity_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = z[i]


@inline
def _relu_forward(z, a, p1, p2):
    zero = like(z, 0.0)
    for i in range(z.size):
        a[i] = zero if z[i] < zero else z[i]  # NaN stays NaN, -0.0 stays -0.0 (as NumPy, PyTorch)


@inline
def _leaky_relu_forward(z, a, p1, p2):
    zero = like(z, 0.0)
    for i in range(z.size):
        a[i] = z[i] if z[i] > zero else p1 * z[i]


@inline
def _elu_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = elu(z[i], p1)


@inline
def _gelu_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = gelu(z[i])


@inline
def _gelu_tanh_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = gelu_tanh(z[i])


@inline
def _sigmoid_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = sigmoid(z[i])


@inline
def _tanh_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = tanh(z[i])


@inline
def _softplus_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = softplus(z[i], p1, p2)


@inline
def _silu_forward(z, a, p1, p2):
    for i in range(z.size):
        a[i] = silu(z[i])


@inline
def _identity_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i]


@inline
def _relu_backward(z, grad_a, grad_z, p1, p2):
    zero = like(z, 0.0)
    for i in range(z.size):
        grad_z[i] = grad_a[i] if z[i] > zero else nan_or(z[i], zero)


@inline
def _leaky_relu_backward(z, grad_a, grad_z, p1, p2):
    zero = like(z, 0.0)
    for i in range(z.size):
        grad_z[i] = grad_a[i] if z[i] > zero else nan_or(z[i], p1 * grad_a[i])


@inline
def _elu_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * elu_grad(z[i], p1)


@inline
def _gelu_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * gelu_grad(z[i])


@inline
def _gelu_tanh_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * gelu_tanh_grad(z[i])


@inline
def _sigmoid_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * sigmoid_grad(z[i])


@inline
def _tanh_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * tanh_grad(z[i])


@inline
def _softplus_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * softplus_grad(z[i], p1, p2)


@inline
def _silu_backward(z, grad_a, grad_z, p1, p2):
    for i in range(z.size):
        grad_z[i] = grad_a[i] * silu_grad(z[i])


@inline
def forward_range(code, z, a, p1, p2):
    """a[i] = act(z[i]) over flat z and a (they may be the same array), for activation ``code``."""
    if code == IDENTITY:
        _identity_forward(z, a, p1, p2)
    elif code == RELU:
        _relu_forward(z, a, p1, p2)
    elif code == LEAKY_RELU:
        _leaky_relu_forward(z, a, p1, p2)
    elif code == ELU:
        _elu_forward(z, a, p1, p2)
    elif code == GELU:
        _gelu_forward(z, a, p1, p2)
    elif code == GELU_TANH:
        _gelu_tanh_forward(z, a, p1, p2)
    elif code == SIGMOID:
        _sigmoid_forward(z, a, p1, p2)
    elif code == TANH:
        _tanh_forward(z, a, p1, p2)
    elif code == SOFTPLUS:
        _softplus_forward(z, a, p1, p2)
    elif code == SILU:
        _silu_forward(z, a, p1, p2)


@inline
def backward_range(code, z, grad_a, grad_z, p1, p2):
    """grad_z[i] = grad_a[i] * act'(z[i]) over flat slices (see forward_range); grad_z may alias grad_a."""
    if code == IDENTITY:
        _identity_backward(z, grad_a, grad_z, p1, p2)
    elif code == RELU:
        _relu_backward(z, grad_a, grad_z, p1, p2)
    elif code == LEAKY_RELU:
        _leaky_relu_backward(z, grad_a, grad_z, p1, p2)
    elif code == ELU:
        _elu_backward(z, grad_a, grad_z, p1, p2)
    elif code == GELU:
        _gelu_backward(z, grad_a, grad_z, p1, p2)
    elif code == GELU_TANH:
        _gelu_tanh_backward(z, grad_a, grad_z, p1, p2)
    elif code == SIGMOID:
        _sigmoid_backward(z, grad_a, grad_z, p1, p2)
    elif code == TANH:
        _tanh_backward(z, grad_a, grad_z, p1, p2)
    elif code == SOFTPLUS:
        _softplus_backward(z, grad_a, grad_z, p1, p2)
    elif code == SILU:
        _silu_backward(z, grad_a, grad_z, p1, p2)


@kernel(parallel=True)
def activation_forward(code, z, a, p1, p2):
    """a = act(z) elementwise over flat arrays z, a (same length and dtype)."""
    n = z.size
    nb = n_blocks(n)
    if nb == 1:
        forward_range(code, z, a, p1, p2)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            forward_range(code, z[lo:hi], a[lo:hi], p1, p2)


@kernel(parallel=True)
def activation_backward(code, z, grad_a, grad_z, p1, p2):
    """grad_z = grad_a * act'(z) elementwise over flat arrays."""
    n = z.size
    nb = n_blocks(n)
    if nb == 1:
        backward_range(code, z, grad_a, grad_z, p1, p2)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            backward_range(code, z[lo:hi], grad_a[lo:hi], grad_z[lo:hi], p1, p2)

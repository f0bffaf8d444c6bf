"""exp, expm1 and log1p written in plain arithmetic, so that loops calling them vectorize.

Numba's ``np.exp`` is a call into libm that LLVM cannot vectorize (no vector math
library is linked), so every exp costs ~3 ns; NumPy's own is SIMD. ``exp`` here is the
classic Cody-Waite reduction ``x = k ln2 + r``, |r| <= ln2/2, a polynomial for e**r and
2**k built from its bits: branch-free, so LLVM turns a loop of it into SIMD code.
Accuracy: float32 ~1 ulp (Cephes expf's polynomial), float64 ~1 ulp (degree-13
Taylor, truncation < 5e-18), within 0.7 ln2 of the bottom of the normal range the
last digits go (2**k times e**r falls among the subnormals). NaN stays NaN. Range: x above (k_max + 1/2) ln2 (88.38 for
float32, 709.44 for float64) gives inf, a sliver early (the true value overflows at
88.72/709.78); results below the smallest normal number flush to 0 (NumPy gives
subnormals). fastgrad only calls it with x <= 0 (exp(-|z|), exp(z - max), ...).
"""
import numpy as np

from fastgrad._jit import by_float_type, float_from_bits, kernel, ordered, spliced

_LOG2E = 1.4426950408889634
_LN2_HI64, _LN2_LO64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LN2_HI32, _LN2_LO32 = 0.693359375, -2.12194440e-4


@ordered
def _exp32(x):
    hi = np.float32(88.37626)  # 127.5 ln2: keeps k <= 127
    lo = np.float32(-87.33654)
    xc = min(max(x, lo), hi)
    k = np.floor(xc * np.float32(_LOG2E) + np.float32(0.5))
    r = xc - k * np.float32(_LN2_HI32) - k * np.float32(_LN2_LO32)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    e = p * (r * r) + r + np.float32(1.0)
    scale = float_from_bits(np.int32((np.int32(k) + np.int32(127)) << np.int32(23)))
    y = e * scale
    if x > hi:
        y = np.float32(np.inf)
    if x < lo:
        y = np.float32(0.0)
    if x != x:
        y = x
    return y


@ordered
def _exp64(x):
    hi = 709.436139303104  # 1023.5 ln2: keeps k <= 1023
    lo = -708.3964185322641
    xc = min(max(x, lo), hi)
    k = np.floor(xc * _LOG2E + 0.5)
    r = xc - k * _LN2_HI64 - k * _LN2_LO64
    p = 1.0 / 6227020800.0  # Taylor coefficients 1/13! ... 1/0!, Horner form
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = p * float_from_bits((np.int64(k) + np.int64(1023)) << np.int64(52))
    if x > hi:
        y = np.inf
    if x < lo:
        y = 0.0
    if x != x:
        y = x
    return y


# e**x in x's float type, vectorizable (see the module docstring for accuracy).
exp = by_float_type(_exp32, _exp64)


@ordered
def _log1p_unit32(e):
    s = e / (np.float32(2.0) + e)
    s2 = s * s
    p = np.float32(1.0 / 17.0)
    for k in range(15, 0, -2):
        p = p * s2 + np.float32(1.0) / np.float32(k)
    return np.float32(2.0) * s * p


@ordered
def _log1p_unit64(e):
    s = e / (2.0 + e)
    s2 = s * s
    p = 1.0 / 35.0
    for k in range(33, 0, -2):
        p = p * s2 + 1.0 / k
    return 2.0 * s * p


# expm1: Cephes's rational approximation near 0 (Moshier, public domain; the one scipy.special
# compiles), branch-free so that loops calling it vectorize. float32 arguments are evaluated
# in float64 and rounded once (correctly rounded nearly always).
_EXPM1_P = (1.2617719307481059087798e-4, 3.0299440770744196129956e-2, 9.9999999999999999991025e-1)
_EXPM1_Q = (3.0019850513866445504159e-6, 2.5244834034968410419224e-3, 2.2726554820815502876593e-1,
            2.0000000000000000000897e0)


_exp64_spliced = spliced(_exp64.py_func)   # inlined by Numba: LLVM would not inline it into expm1


@spliced
def _expm1_64(x):
    """exp(x) - 1: for |x| <= 1/2 Cephes's 2 r / (Q(x^2) - r), r = x P(x^2) (relative error
    ~1e-16, no cancellation near 0); outside, exp(x) - 1, whose result is at least 0.39 in
    magnitude, so the subtraction loses nothing. NaN stays NaN; -inf gives -1."""
    xx = x * x
    r = x * ((_EXPM1_P[0] * xx + _EXPM1_P[1]) * xx + _EXPM1_P[2])
    q = ((_EXPM1_Q[0] * xx + _EXPM1_Q[1]) * xx + _EXPM1_Q[2]) * xx + _EXPM1_Q[3]
    near = r / (q - r)
    far = _exp64_spliced(x) - 1.0
    return near + near if abs(x) <= 0.5 else far


@spliced
def _expm1_32(x):
    return np.float32(_expm1_64(np.float64(x)))


# exp(x) - 1 in x's float type, vectorizable.
expm1 = by_float_type(_expm1_32, _expm1_64)

# log(1 + e) for e in [0, 1], as 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = e / (2 + e) <= 1/3:
# accurate to ~1 ulp for every e in the range, tiny ones included (the use: softplus's
# log(1 + exp(-|x|))). Outside [0, 1] it is not accurate.
log1p_unit = by_float_type(_log1p_unit32, _log1p_unit64)


@kernel
def exp_array(x, out):
    """out = exp(x) elementwise over flat arrays (the scalar exp above, applied in a loop)."""
    for i in range(x.size):
        out[i] = exp(x[i])


@kernel
def expm1_array(x, out):
    """out = expm1(x) elementwise over flat arrays (the scalar expm1 above, in a loop)."""
    for i in range(x.size):
        out[i] = expm1(x[i])


@kernel
def log1p_unit_array(e, out):
    """out = log(1 + e) elementwise for e in [0, 1] (the scalar log1p_unit above, in a loop)."""
    for i in range(e.size):
        out[i] = log1p_unit(e[i])

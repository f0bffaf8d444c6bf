"""exp, expm1, erfc and log1p written in plain arithmetic, so that loops calling them vectorize.

Their polynomials are evaluated with explicit fused multiply-adds (``fastgrad._jit.muladd``):
the kernels compile without the ``contract`` fast-math flag, and without it each ``p * r + c``
would be a multiply and an add (the cost: see ``muladd``).

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

from fastgrad._jit import bits_from_float, by_float_type, float_from_bits, kernel, like, muladd, ordered, spliced

_LOG2E = 1.4426950408889634
_LN2_HI64, _LN2_LO64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LN2_HI32, _LN2_LO32 = 0.693359375, -2.12194440e-4


@spliced
def _exp32_kr(k, r):
    """e**r * 2**k for |r| <= ln2/2 (Cephes expf's polynomial), k an integral float32."""
    p = np.float32(1.9875691500e-4)
    p = muladd(p, r, np.float32(1.3981999507e-3))
    p = muladd(p, r, np.float32(8.3334519073e-3))
    p = muladd(p, r, np.float32(4.1665795894e-2))
    p = muladd(p, r, np.float32(1.6666665459e-1))
    p = muladd(p, r, np.float32(5.0000001201e-1))
    e = muladd(p, r * r, r) + np.float32(1.0)
    return e * float_from_bits(np.int32((np.int32(k) + np.int32(127)) << np.int32(23)))


@spliced
def _nan_from(x, y):
    """y, or a NaN where x is NaN (``x * x`` there, not ``x``): the NaN branch of a function that
    loops apply in place (``a[i] = f(a[i])``: softmax's exp and log1p). A branch giving back the
    loaded x lets LLVM store only the other lanes, a masked store (``vmaskmovps``), which AMD's
    Zen cores run as microcode: softmax's in-place exp ran at 78 us per 1e5 float32 with it,
    47 us without (tests/test_vector_code.py scans the kernels for masked stores). Out of place
    ``y = x`` is the cheaper form (LLVM merges it with the argument's clamp: sigmoid 3-6% faster,
    measured), so exp and erfc keep it."""
    if x != x:
        y = x * x
    return y


_EXP32_HI = np.float32(88.37626)  # 127.5 ln2: keeps k <= 127
_EXP32_LO = np.float32(-87.33654)


@spliced
def _low_limit(x, y, lo):
    """y, or 0 where x < lo (exp leaves the normal range below), or x where x is NaN."""
    if x < lo:
        y = like(y, 0.0)
    if x != x:
        y = x
    return y


@spliced
def _exp32_limits(x, y):
    """y, or the limit where exp(x) leaves the normal range (inf above, 0 below); NaN stays NaN."""
    if x > _EXP32_HI:
        y = np.float32(np.inf)
    return _low_limit(x, y, _EXP32_LO)


@spliced
def _exp32_in_range(xc):
    """e**xc for xc in [_EXP32_LO, _EXP32_HI]: Cody-Waite reduction, then the polynomial."""
    k = np.floor(muladd(xc, np.float32(_LOG2E), np.float32(0.5)))
    r = muladd(-k, np.float32(_LN2_LO32), muladd(-k, np.float32(_LN2_HI32), xc))
    return _exp32_kr(k, r)


@ordered
def _exp32(x):
    return _exp32_limits(x, _exp32_in_range(min(max(x, _EXP32_LO), _EXP32_HI)))


@ordered
def _exp32_nonpos(x):
    """exp(x) for x <= 0, -inf or NaN: exp's value without its upper limit's test and clamp, and
    safe to apply in place (its NaN from :func:`_nan_from`)."""
    y = _exp32_in_range(max(x, _EXP32_LO))
    return _nan_from(x, like(y, 0.0) if x < _EXP32_LO else y)


@spliced
def exp32_sum(a, b):
    """exp(a + b) for an exact a and a small b (|b| < 1), without rounding a + b first:
    r = (a - k ln2_hi) + b - k ln2_lo, where a - k ln2_hi is exact. Used for exp(-x**2)."""
    x = a + b
    xc = min(max(x, _EXP32_LO), _EXP32_HI)
    k = np.floor(muladd(xc, np.float32(_LOG2E), np.float32(0.5)))
    r = muladd(-k, np.float32(_LN2_LO32), muladd(-k, np.float32(_LN2_HI32), a) + b)
    return _exp32_limits(x, _exp32_kr(k, r))


@spliced
def _exp64_kr(k, r):
    """e**r * 2**k for |r| <= ln2/2 (degree-13 Taylor), k an integral float64."""
    p = 1.0 / 6227020800.0  # Taylor coefficients 1/13! ... 1/0!, Horner form
    p = muladd(p, r, 1.0 / 479001600.0)
    p = muladd(p, r, 1.0 / 39916800.0)
    p = muladd(p, r, 1.0 / 3628800.0)
    p = muladd(p, r, 1.0 / 362880.0)
    p = muladd(p, r, 1.0 / 40320.0)
    p = muladd(p, r, 1.0 / 5040.0)
    p = muladd(p, r, 1.0 / 720.0)
    p = muladd(p, r, 1.0 / 120.0)
    p = muladd(p, r, 1.0 / 24.0)
    p = muladd(p, r, 1.0 / 6.0)
    p = muladd(p, r, 0.5)
    p = muladd(p, r, 1.0)
    p = muladd(p, r, 1.0)
    return p * float_from_bits((np.int64(k) + np.int64(1023)) << np.int64(52))


_EXP64_HI = 709.436139303104  # 1023.5 ln2: keeps k <= 1023
_EXP64_LO = -708.3964185322641


@spliced
def _exp64_limits(x, y):
    if x > _EXP64_HI:
        y = np.inf
    return _low_limit(x, y, _EXP64_LO)


@spliced
def _exp64_in_range(xc):
    """e**xc for xc in [_EXP64_LO, _EXP64_HI] (see _exp32_in_range)."""
    k = np.floor(muladd(xc, _LOG2E, 0.5))
    r = muladd(-k, _LN2_LO64, muladd(-k, _LN2_HI64, xc))
    return _exp64_kr(k, r)


@ordered
def _exp64(x):
    return _exp64_limits(x, _exp64_in_range(min(max(x, _EXP64_LO), _EXP64_HI)))


@ordered
def _exp64_nonpos(x):
    """exp(x) for x <= 0, -inf or NaN (see _exp32_nonpos)."""
    y = _exp64_in_range(max(x, _EXP64_LO))
    return _nan_from(x, 0.0 if x < _EXP64_LO else y)


@spliced
def _exp64_sum(a, b):
    """exp(a + b) for an exact a and a small b (see exp32_sum)."""
    x = a + b
    xc = min(max(x, _EXP64_LO), _EXP64_HI)
    k = np.floor(muladd(xc, _LOG2E, 0.5))
    r = muladd(-k, _LN2_LO64, muladd(-k, _LN2_HI64, a) + b)
    return _exp64_limits(x, _exp64_kr(k, r))


# e**x in x's float type, vectorizable (see the module docstring for accuracy).
exp = by_float_type(_exp32, _exp64)
# exp's values for arguments <= 0 (softmax's z - max), with fewer operations.
exp_nonpos = by_float_type(_exp32_nonpos, _exp64_nonpos)


@ordered
def _log1p_unit32(e):
    s = e / (np.float32(2.0) + e)
    s2 = s * s
    p = np.float32(1.0 / 17.0)
    for k in range(15, 0, -2):
        p = muladd(p, s2, np.float32(1.0) / np.float32(k))
    return np.float32(2.0) * s * p


@ordered
def _log1p_unit64(e):
    s = e / (2.0 + e)
    s2 = s * s
    p = 1.0 / 35.0
    for k in range(33, 0, -2):
        p = muladd(p, s2, 1.0 / k)
    return 2.0 * s * p


# expm1: Cephes's rational approximation near 0 (Moshier, public domain; the one scipy.special
# compiles), branch-free so that loops calling it vectorize. float32 has its own form, all in
# float32 (twice the lanes of float64 and no float64 division): see _expm1_32.
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
    r = x * muladd(muladd(_EXPM1_P[0], xx, _EXPM1_P[1]), xx, _EXPM1_P[2])
    q = muladd(muladd(muladd(_EXPM1_Q[0], xx, _EXPM1_Q[1]), xx, _EXPM1_Q[2]), xx, _EXPM1_Q[3])
    near = r / (q - r)
    far = _exp64_spliced(x) - 1.0
    return near + near if abs(x) <= 0.5 else far


_exp32_spliced = spliced(_exp32.py_func)   # as _exp64_spliced


@spliced
def _expm1_32(x):
    """exp(x) - 1 in float32: for |x| <= 1/2 the Taylor series x + x (x q), q = 1/2 + x/6 + ... +
    x^7/9! in Horner form (truncation below 5.4e-10 relative; the rounding of the small x q
    term is all that reaches the result, so no cancellation near 0; -0 stays -0);
    outside, exp(x) - 1, whose result is at least 0.39 in magnitude. Against mpmath: at most
    0.71 ulp for |x| <= 1/2 and 1.32 ulp beyond (exp's error), measured on [-40, 88]; the test
    bound is 3 ulp (tests/test_package.py). NaN stays NaN; -inf gives -1."""
    q = np.float32(1.0 / 362880.0)
    for k in (40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0):
        q = muladd(q, x, np.float32(1.0 / k))
    near = muladd(x, x * q, x)   # x + (+0) at x = -0: the select below keeps the sign
    far = _exp32_spliced(x) - np.float32(1.0)
    y = near if np.abs(x) <= np.float32(0.5) else far
    return x if x == 0 else y


# exp(x) - 1 in x's float type, vectorizable.
expm1 = by_float_type(_expm1_32, _expm1_64)

# erfc for x >= 0 as t exp(-x**2 + g(t)), t = 1 / (1 + x/2): g is smooth on t in (0, 1] (it
# tends to -log(2 sqrt(pi)) as x -> inf), so a short polynomial fits it to every digit: a
# Chebyshev series in u (t mapped onto [-1, 1]) expanded into powers of u (their absolute values
# sum to 1.3: Horner's rule loses nothing). The form and the substitution are those of Numerical Recipes' erfcc (Press et al.,
# 2007, section 6.2.2); the polynomials here are fitted by tools/fit_erfc.py (mpmath, 40 digits)
# on x in [0, ERFC_XMAX], beyond which erfc underflows the type's normal range. x**2 is
# split as xh**2 (exact: xh has half the mantissa) + xl (x + xh), and exp takes the exact
# part apart (_exp*_sum), so no rounding of x**2 reaches the result. Branch-free: loops of it
# vectorize. Relative error against mpmath (tests/test_package.py): float32 <= 4 eps,
# float64 <= 8 eps (eps = 2**-23, 2**-52), wherever erfc is normal; erfc(x < 0) = 2 - erfc(-x).
_ERFC32 = np.array((-0.5595380663871765, 0.571197380196636, 0.0159460305864405, -0.029609641707977603,
                    -0.0011014565143978449, 0.0037408550432616997, -0.00022168833282171593,
                    -0.000542124661997524, 7.271048523661135e-05, 5.59946360792156e-05), np.float32)
_ERFC32_XMAX = 10.1
_ERFC64 = np.array((-0.6251953118881121, 0.6316996845897436, 0.03240928768107601, -0.039698260231190725,
                    -0.005057692505522522, 0.0065183199000378, 0.0004070716182204242, -0.0014044550862865094,
                    0.00013733834755911978, 0.00029909759824131793, -9.849314329893232e-05,
                    -4.87480079898717e-05, 3.697812435482527e-05, 1.6124324672395123e-06,
                    -9.547608499700303e-06, 2.5423965477725765e-06, 1.5005890524641177e-06,
                    -1.0701842163100181e-06, -1.7710731361560264e-08, 2.2848201704460468e-07,
                    -5.156403497504694e-08, -2.2653931074605557e-08, 8.824496406968444e-09))
_ERFC64_XMAX = 27.0


@spliced
def _erfc32(x):
    xa = min(np.abs(x), np.float32(_ERFC32_XMAX))
    t = np.float32(1.0) / muladd(np.float32(0.5), xa, np.float32(1.0))
    tlo = 1.0 / (1.0 + 0.5 * _ERFC32_XMAX)
    u = muladd(t - np.float32(1.0), np.float32(2.0 / (1.0 - tlo)), np.float32(1.0))  # u(x = 0) = 1 exactly
    g = _ERFC32[-1]
    for k in range(len(_ERFC32) - 2, -1, -1):  # Horner
        g = muladd(g, u, _ERFC32[k])
    c = xa * np.float32(4097.0)  # Veltkamp: xh keeps the top 12 bits of xa
    xh = c - (c - xa)
    xl = xa - xh
    y = t * exp32_sum(-(xh * xh), muladd(-xl, xa + xh, g))
    if np.abs(x) > np.float32(_ERFC32_XMAX):
        y = np.float32(0.0)
    if x < 0:
        y = np.float32(2.0) - y
    if x != x:
        y = x
    return y


@spliced
def _erfc64(x):
    xa = min(np.abs(x), _ERFC64_XMAX)
    t = 1.0 / muladd(0.5, xa, 1.0)
    tlo = 1.0 / (1.0 + 0.5 * _ERFC64_XMAX)
    u = muladd(t - 1.0, 2.0 / (1.0 - tlo), 1.0)  # u(x = 0) = 1 exactly
    g = _ERFC64[-1]
    for k in range(len(_ERFC64) - 2, -1, -1):  # Horner
        g = muladd(g, u, _ERFC64[k])
    c = xa * 134217729.0  # Veltkamp: xh keeps the top 26 bits of xa
    xh = c - (c - xa)
    xl = xa - xh
    y = t * _exp64_sum(-(xh * xh), muladd(-xl, xa + xh, g))
    if np.abs(x) > _ERFC64_XMAX:
        y = 0.0
    if x < 0:
        y = 2.0 - y
    if x != x:
        y = x
    return y


# erfc(x) in x's float type, vectorizable.
erfc = by_float_type(_erfc32, _erfc64)


# log(1 + e) for e in [0, 1], as 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = e / (2 + e) <= 1/3:
# accurate to ~1 ulp for every e in the range, tiny ones included (the use: softplus's
# log(1 + exp(-|x|))). Outside [0, 1] it is not accurate.
log1p_unit = by_float_type(_log1p_unit32, _log1p_unit64)


@ordered
def _log1p_nonneg32(x):
    s = np.float32(1.0) + x
    c = (x - (s - np.float32(1.0))) if s < np.float32(2.0) else (np.float32(1.0) - (s - x))  # 1 + x - s, exact
    bits = bits_from_float(s)
    k = np.float32((bits >> np.int32(23)) - np.int32(127))
    f = float_from_bits(np.int32((bits & np.int32(0x7FFFFF)) | np.int32(127 << 23))) - np.float32(1.0)
    y = muladd(k, np.float32(_LN2_HI32), muladd(k, np.float32(_LN2_LO32), _log1p_unit32(f) + c / s))
    if x == np.inf:
        y = like(y, np.inf)
    return _nan_from(x, y)


@ordered
def _log1p_nonneg64(x):
    s = 1.0 + x
    c = (x - (s - 1.0)) if s < 2.0 else (1.0 - (s - x))
    bits = bits_from_float(s)
    k = np.float64((bits >> np.int64(52)) - np.int64(1023))
    f = float_from_bits((bits & np.int64(0xFFFFFFFFFFFFF)) | np.int64(1023 << 52)) - 1.0
    y = muladd(k, _LN2_HI64, muladd(k, _LN2_LO64, _log1p_unit64(f) + c / s))
    if x == np.inf:
        y = like(y, np.inf)
    return _nan_from(x, y)


# log(1 + x) for x >= 0 in x's float type, vectorizable (libm's log1p is a call per element; the
# use: softmax's log of each row's sum, a loop over rows). 1 + x = 2**k (1 + f), f in [0, 1), with
# c = 1 + x - fl(1 + x) (exact: Sterbenz), so log1p(x) = k ln2 + log1p_unit(f) + c / (1 + x): the
# reduction of fdlibm's log1p (Sun, 1993), with log1p_unit for the interval. Within 2 ulp of
# mpmath (tests/test_package.py); NaN stays NaN, inf gives inf; x < 0 is not handled.
log1p_nonneg = by_float_type(_log1p_nonneg32, _log1p_nonneg64)


@kernel
def log1p_nonneg_array(x, out):
    """out = log1p(x) elementwise for x >= 0 (the scalar log1p_nonneg above, in a loop)."""
    for i in range(x.size):
        out[i] = log1p_nonneg(x[i])


@kernel
def exp_array(x, out):
    """out = exp(x) elementwise over flat arrays (the scalar exp above, applied in a loop)."""
    for i in range(x.size):
        out[i] = exp(x[i])


@kernel
def exp_nonpos_array(x, out):
    """out = exp(x) elementwise for x <= 0, -inf or NaN (exp_nonpos: exp's bits there)."""
    for i in range(x.size):
        out[i] = exp_nonpos(x[i])


@kernel
def expm1_array(x, out):
    """out = expm1(x) elementwise over flat arrays (the scalar expm1 above, in a loop)."""
    for i in range(x.size):
        out[i] = expm1(x[i])


@kernel
def erfc_array(x, out):
    """out = erfc(x) elementwise over flat arrays (the scalar erfc above, in a loop)."""
    for i in range(x.size):
        out[i] = erfc(x[i])


@kernel
def log1p_unit_array(e, out):
    """out = log(1 + e) elementwise for e in [0, 1] (the scalar log1p_unit above, in a loop)."""
    for i in range(e.size):
        out[i] = log1p_unit(e[i])


@kernel
def muladd_array(a, b, c, out):
    """out = a * b + c elementwise over flat arrays of one dtype, by :func:`fastgrad._jit.muladd`
    (one rounding where the CPU has FMA instructions)."""
    for i in range(a.size):
        out[i] = muladd(a[i], b[i], c[i])

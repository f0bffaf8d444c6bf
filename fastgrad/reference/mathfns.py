"""The twin of kernels/mathfns.py: NumPy's exp, expm1 and log1p, SciPy's erfc."""
import numpy as np


def exp_array(x, out):
    """out = exp(x) elementwise."""
    np.exp(x, out=out)


def exp_nonpos_array(x, out):
    """out = exp(x) elementwise, for x <= 0, -inf or NaN."""
    np.exp(x, out=out)


def exp32_sum(a, b):
    """exp(a + b) in float32, for a float32 pair a + b carried without rounding (the sum taken in float64)."""
    return np.float32(np.exp(np.float64(a) + np.float64(b)))


def expm1_array(x, out):
    """out = exp(x) - 1 elementwise (NumPy's expm1)."""
    np.expm1(x, out=out)


def log1p_unit_array(e, out):
    """out = log(1 + e) elementwise (NumPy's log1p; the kernel is for e in [0, 1])."""
    np.log1p(e, out=out)


def log1p_nonneg_array(x, out):
    """out = log(1 + x) elementwise (NumPy's log1p; the kernel is for x >= 0)."""
    np.log1p(x, out=out)


def erfc_array(x, out):
    """out = erfc(x) elementwise (SciPy's, Cephes)."""
    from scipy.special import erfc
    erfc(x, out=out)


def muladd_array(a, b, c, out):
    """out = a * b + c elementwise, with two roundings (the kernel rounds once where the CPU
    has fused multiply-add instructions, so the two differ by at most an ulp of the product)."""
    np.add(a * b, c, out=out)

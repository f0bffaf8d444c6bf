"""Fit the polynomials of kernels/mathfns.py's erfc (prints them; needs mpmath).

    python tools/fit_erfc.py

erfc(x) = t exp(-x**2 + g(t)) for x >= 0, t = 1 / (1 + x/2): g(t) = log(erfc(x)) + x**2 - log(t)
is smooth on t in (0, 1], so it is fitted as a Chebyshev series in u, t mapped linearly from
[t_lo, 1] onto [-1, 1] (t_lo = the t of the largest x before erfc underflows the type's normal
range), by least squares at 400 Chebyshev nodes with g evaluated to 40 digits, then expanded into
powers of u for Horner's rule, the constant term moved so that erfc(0) = 1 exactly. The degree is the smallest whose fit error is well below the
type's rounding (float32: 9 -> 5e-8; float64: 22 -> 6e-15).
"""
import mpmath as mp
import numpy as np

P = 0.5
FITS = (("_ERFC32", 9, 10.1, np.float32), ("_ERFC64", 22, 27.0, np.float64))


def fit(degree, x_max, dtype, nodes=400):
    t_lo = 1 / (1 + P * x_max)
    u = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    t = t_lo + (1 - t_lo) * (u + 1) / 2
    with mp.workdps(40):
        def g(tt):
            tt = mp.mpf(float(tt))
            x = (1 - tt) / (P * tt)
            return mp.log(mp.erfc(x)) + x * x - mp.log(tt)
        values = np.array([float(g(tt)) for tt in t])
    powers = np.polynomial.chebyshev.cheb2poly(np.polynomial.chebyshev.chebfit(u, values, degree))
    return pinned_at_zero(powers, dtype)


def pinned_at_zero(powers, dtype):
    """The powers with the constant term moved so that Horner's rule in ``dtype`` gives exactly
    g = 0 at u = 1 (x = 0), so that erfc(0) = 1 exactly (a shift within the fit's error)."""
    for _ in range(8):
        g = dtype(powers[-1])
        for c in powers[-2::-1]:
            g = g * dtype(1.0) + dtype(c)
        if g == 0:
            break
        powers[0] = float(dtype(powers[0]) - g)
    return powers


if __name__ == "__main__":
    for name, degree, x_max, dtype in FITS:
        print(f"{name} = ({', '.join(repr(float(c)) for c in fit(degree, x_max, dtype))})  # x_max = {x_max}")

"""The STREAM triad in NumPy (two passes and a temporary): twin of :mod:`fastgrad.kernels.stream`."""


def triad(a, b, c, s):
    """``a[:] = b + s c``."""
    a[:] = b + a.dtype.type(s) * c

"""The twin of kernels/mathfns.py: NumPy's exp."""
import numpy as np


def exp_array(x, out):
    """out = exp(x) elementwise."""
    np.exp(x, out=out)


def log1p_unit_array(e, out):
    """out = log(1 + e) elementwise (NumPy's log1p; the kernel is for e in [0, 1])."""
    np.log1p(e, out=out)

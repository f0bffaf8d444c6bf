"""The residual connection in plain NumPy: the twin of :mod:`fastgrad.kernels.residual`."""


def fork_forward(x, out):
    """out = x."""
    out[...] = x


def fork_backward(grad_out, grad_skip, grad_x):
    """grad_x = grad_out + grad_skip (the sum of :func:`add_forward`)."""
    add_forward(grad_out, grad_skip, grad_x)


def add_forward(x, skip, out):
    """out = x + skip."""
    out[...] = x + skip


def add_backward(grad_out, grad_x, grad_skip):
    """grad_x = grad_skip = grad_out."""
    grad_x[...] = grad_out
    grad_skip[...] = grad_out

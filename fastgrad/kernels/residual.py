"""The residual connection of a model's program: out = x + block(x), as two ops.

``FORK`` (where the block begins) passes its input on unchanged; ``ADD`` (where it ends)
adds the ``FORK``'s output, the skip path, to the block's output. Backward, ``ADD``
sends its output gradient both into the block and, kept aside, along the skip path;
``FORK`` adds the two. All arrays (m, n) C-contiguous, one float dtype.
"""
from fastgrad._jit import kernel
from fastgrad.kernels.util import copy_2d


@kernel
def fork_forward(x, out):
    """out = x."""
    copy_2d(x, out)


@kernel
def add_forward(x, skip, out):
    """out = x + skip (the block's output plus the block's input)."""
    m, n = out.shape
    for r in range(m):
        for j in range(n):
            out[r, j] = x[r, j] + skip[r, j]


@kernel
def fork_backward(grad_out, grad_skip, grad_x):
    """grad_x = grad_out (through the block) + grad_skip (along the skip path): the sum of
    :func:`add_forward`."""
    add_forward(grad_out, grad_skip, grad_x)


@kernel
def add_backward(grad_out, grad_x, grad_skip):
    """grad_x = grad_skip = grad_out (d(x + skip)/dx and /dskip are the identity)."""
    copy_2d(grad_out, grad_x)
    copy_2d(grad_out, grad_skip)

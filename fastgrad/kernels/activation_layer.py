"""The Activation op of a model's program: a = act(x) as a layer of its own, forward and backward.

Any of the activations of :mod:`fastgrad.kernels.activations` (codes there), softmax and
log_softmax row-wise (:mod:`fastgrad.kernels.softmax`); serial passes, like the rest of
the compiled training loop (kernels.train). x, a, grad_a, grad_x: (m, n) C-contiguous,
one float dtype; ``p1``/``p2`` the activation's options in that dtype.
"""
from fastgrad._jit import kernel
from fastgrad.kernels.activations import LOG_SOFTMAX, SOFTMAX, backward_range, forward_range
from fastgrad.kernels.softmax import _backward_rows, _forward_rows


@kernel
def activation_layer_forward(x, a, code, p1, p2):
    """a = act(x) (row-wise for softmax/log_softmax)."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _forward_rows(x, a, code == LOG_SOFTMAX, 0, x.shape[0])
    else:
        forward_range(code, x.reshape(-1), a.reshape(-1), p1, p2)


@kernel
def activation_layer_backward(x, grad_a, grad_x, code, p1, p2):
    """grad_x = grad_a * act'(x) (the row-wise Jacobian product for softmax/log_softmax)."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _backward_rows(x, grad_a, grad_x, code == LOG_SOFTMAX, 0, x.shape[0])
    else:
        backward_range(code, x.reshape(-1), grad_a.reshape(-1), grad_x.reshape(-1), p1, p2)

"""The Activation op of a model's program: a = act(x) as a layer of its own, forward and backward.

Any of the activations of :mod:`fastgrad.kernels.activations` (codes there), softmax and
log_softmax row-wise (:mod:`fastgrad.kernels.softmax`); serial passes, like the rest of
the compiled training loop (kernels.train). x, a, grad_a, grad_x: (m, n) C-contiguous,
one float dtype; ``p1``/``p2`` the activation's options in that dtype.
"""
from fastgrad._jit import kernel, spliced
from fastgrad.kernels.activations import LOG_SOFTMAX, SOFTMAX, backward_range, forward_range
from fastgrad.kernels.softmax import _backward_rows, _forward_rows

# spliced into the bodies below, so that a body with its code fixed (FORWARD, BACKWARD) keeps
# one activation's loop only
_forward_range = spliced(forward_range.py_func)
_backward_range = spliced(backward_range.py_func)


@kernel
def activation_layer_forward(x, a, code, p1, p2):
    """a = act(x) (row-wise for softmax/log_softmax)."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _forward_rows(x, a, code == LOG_SOFTMAX, 0, x.shape[0])
    else:
        _forward_range(code, x.reshape(-1), a.reshape(-1), p1, p2)


@kernel
def activation_layer_backward(x, grad_a, grad_x, code, p1, p2):
    """grad_x = grad_a * act'(x) (the row-wise Jacobian product for softmax/log_softmax)."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _backward_rows(x, grad_a, grad_x, code == LOG_SOFTMAX, 0, x.shape[0])
    else:
        _backward_range(code, x.reshape(-1), grad_a.reshape(-1), grad_x.reshape(-1), p1, p2)


# One compiled function per activation and direction, for the training loop's activation
# slots (kernels/slots.py ``ACT_FORWARD``/``ACT_BACKWARD``): the bodies above with the code
# fixed, so Numba prunes every other activation's branch before typing it and a model
# compiles only the activations it uses (a first ReLU fit no longer compiles GELU's erf).
_forward_body = spliced(activation_layer_forward.py_func)
_backward_body = spliced(activation_layer_backward.py_func)


def _forward_for(code):
    def activation_forward(x, a, p1, p2):
        _forward_body(x, a, code, p1, p2)
    return kernel(activation_forward)


def _backward_for(code):
    def activation_backward(x, grad_a, grad_x, p1, p2):
        _backward_body(x, grad_a, grad_x, code, p1, p2)
    return kernel(activation_backward)


FORWARD = {code: _forward_for(code) for code in range(LOG_SOFTMAX + 1)}
"""Activation code -> its compiled forward over (m, n) blocks (the ``ACT_FORWARD`` slot)."""
BACKWARD = {code: _backward_for(code) for code in range(LOG_SOFTMAX + 1)}
"""Activation code -> its compiled backward over (m, n) blocks (the ``ACT_BACKWARD`` slot)."""

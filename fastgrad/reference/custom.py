"""A user's loss and activation in the NumPy training path: the twin of
:mod:`fastgrad.kernels.custom`, built by the same walk (``specialize``) over
:mod:`fastgrad.reference.train`, whose functions are plain Python (nothing compiles here
but the user's own functions)."""
import numpy as np

from fastgrad.kernels.custom import specialized
from fastgrad.kernels.program import CUSTOM_ACTIVATION
from fastgrad.reference import activation_layer, train


def loss_replacement(value, gradient):
    """``reference.train._output_loss`` for a user's loss: (value, d value / d out)."""
    def output_loss(out, yf, yl, use_labels, wb, loss_code, loss_param):
        grad = np.empty_like(out)
        gradient(out, yf, grad)
        return float(value(out, yf)), grad
    return output_loss


def activation_replacements(forward, backward):
    """The reference Activation op's functions, running the user's for :data:`CUSTOM_ACTIVATION`."""
    builtin_forward = activation_layer.activation_layer_forward
    builtin_backward = activation_layer.activation_layer_backward

    def activation_forward(x, a, code, p1, p2):
        if code == CUSTOM_ACTIVATION:
            forward(x, a)
        else:
            builtin_forward(x, a, code, p1, p2)

    def activation_backward(x, grad_a, grad_x, code, p1, p2):
        if code == CUSTOM_ACTIVATION:
            backward(x, grad_a, grad_x)
        else:
            builtin_backward(x, grad_a, grad_x, code, p1, p2)
    return {builtin_forward: activation_forward, builtin_backward: activation_backward}


def compiled_train(loss=None, activation=None):
    """:mod:`reference.train` with a user's loss and/or activation (the twin of
    ``kernels.custom.compiled_train``, same name so that a model picks it by backend)."""
    return specialized(train, loss_replacement, activation_replacements, loss, activation)

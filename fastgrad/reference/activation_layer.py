"""The Activation op in plain NumPy: the twin of :mod:`fastgrad.kernels.activation_layer`."""
from fastgrad.kernels import activations as K
from fastgrad.reference import activations as _act

# Activation code -> (reference name, names of the options carried in (p1, p2)). The codes
# are the kernels' own (imported as constants only: nothing compiles).
_ACTIVATIONS = {K.IDENTITY: ("identity", ()), K.RELU: ("relu", ()), K.LEAKY_RELU: ("leaky_relu", ("alpha",)),
                K.ELU: ("elu", ("alpha",)), K.GELU: ("gelu", ()), K.GELU_TANH: ("gelu", ()),
                K.SIGMOID: ("sigmoid", ()), K.TANH: ("tanh", ()), K.SOFTPLUS: ("softplus", ("beta", "threshold")),
                K.SILU: ("silu", ()), K.SOFTMAX: ("softmax", ()), K.LOG_SOFTMAX: ("log_softmax", ())}


def activation_by_code(code, p1, p2):
    """(name, options) of the reference activation for a kernel code and its (p1, p2)."""
    name, keys = _ACTIVATIONS[int(code)]
    options = {key: float((p1, p2)[i]) for i, key in enumerate(keys)}
    if int(code) == K.GELU_TANH:
        options["approximate"] = "tanh"
    return name, options


def activation_layer_forward(x, a, code, p1, p2):
    """a = act(x) (row-wise for softmax/log_softmax)."""
    name, options = activation_by_code(code, p1, p2)
    a[...] = getattr(_act, name)(x, **options)


def activation_layer_backward(x, grad_a, grad_x, code, p1, p2):
    """grad_x = grad_a * act'(x) (the row-wise Jacobian product for softmax/log_softmax)."""
    name, options = activation_by_code(code, p1, p2)
    grad_x[...] = getattr(_act, name + "_backward")(x, grad_a, **options)

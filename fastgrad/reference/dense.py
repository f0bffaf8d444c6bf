"""The dense layer in plain NumPy: y = act(x @ W + b) and its backward pass."""

from fastgrad.reference import activations as _act
from fastgrad.reference.activation_layer import activation_layer_backward, activation_layer_forward


def _activation(name, options):
    forward = {"identity": _act.identity, "relu": _act.relu, "leaky_relu": _act.leaky_relu,
               "elu": _act.elu, "gelu": _act.gelu, "sigmoid": _act.sigmoid, "tanh": _act.tanh,
               "softplus": _act.softplus, "silu": _act.silu, "softmax": _act.softmax,
               "log_softmax": _act.log_softmax}[name]
    backward = {"identity": _act.identity_backward, "relu": _act.relu_backward,
                "leaky_relu": _act.leaky_relu_backward, "elu": _act.elu_backward,
                "gelu": _act.gelu_backward, "sigmoid": _act.sigmoid_backward,
                "tanh": _act.tanh_backward, "softplus": _act.softplus_backward,
                "silu": _act.silu_backward, "softmax": _act.softmax_backward,
                "log_softmax": _act.log_softmax_backward}[name]
    return (lambda z: forward(z, **options)), (lambda z, g: backward(z, g, **options))


def dense_forward(x, W, b, activation="identity", return_preactivation=False, **options):
    """y = act(z), z = x @ W + b; x (n, n_in), W (n_in, n_out), b (n_out,) or None (no bias)."""
    forward, _ = _activation(activation, options)
    z = x @ W if b is None else x @ W + b
    y = forward(z)
    return (y, z) if return_preactivation else y


def dense_backward(x, W, z, grad_y, activation="identity", bias=True, **options):
    """(grad_x, grad_W, grad_b) with delta = grad_y * act'(z): delta W^T, x^T delta, sum_rows delta
    (None without a bias)."""
    _, backward = _activation(activation, options)
    delta = backward(z, grad_y)
    return delta @ W.T, x.T @ delta, (delta.sum(axis=0) if bias else None)


def dense_layer_forward(x, W, b, z, a, act, p1, p2, most):
    """The twin of ``kernels.dense.dense_layer_forward``: z = x @ W + b, a = act(z), written
    into z and a; ``b`` empty for a layer without bias; ``act`` the activation's code (the
    compiled kernel takes the address of that activation's compiled forward instead);
    ``most`` only matters to the compiled kernel (how many pieces its product is cut into)."""
    z[...] = x @ W + b if b.size else x @ W
    activation_layer_forward(z, a, act, p1, p2)


def dense_layer_backward(x, W, z, grad_a, act, p1, p2, delta, grad_x, grad_W, grad_b, need_grad_x, most):
    """The twin of ``kernels.dense.dense_layer_backward``: delta = grad_a * act'(z) (``act`` the
    activation's code, see :func:`dense_layer_forward`), then grad_W = x^T delta, grad_b =
    column sums of delta, grad_x = delta W^T."""
    activation_layer_backward(z, grad_a, delta, act, p1, p2)
    grad_W[...] = x.T @ delta
    if grad_b.size:
        grad_b[...] = delta.sum(axis=0)
    if need_grad_x:
        grad_x[...] = delta @ W.T

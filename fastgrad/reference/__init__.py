"""Plain-NumPy twins of fastgrad's kernels: the readable math, the tests' oracle, the benchmarks' baseline.

Each public function here has the same name and signature as its compiled counterpart
in :mod:`fastgrad.functional` (and, in the submodules ``optim`` and ``diff``, as the
kernels of :mod:`fastgrad.optim` and :mod:`fastgrad.diff`).
"""
from fastgrad.reference.activations import (
    elu, elu_backward, gelu, gelu_backward, identity, identity_backward, leaky_relu,
    leaky_relu_backward, log_softmax, log_softmax_backward, relu, relu_backward, sigmoid,
    sigmoid_backward, silu, silu_backward, softmax, softmax_backward, softplus, softplus_backward,
    tanh, tanh_backward)
from fastgrad.reference.dense import dense_backward, dense_forward
from fastgrad.reference.losses import (
    binary_cross_entropy, binary_cross_entropy_with_logits, huber, mae, mse, softmax_cross_entropy)
from fastgrad.reference.normalization import (
    batch_norm, batch_norm_backward, dropout, dropout_backward, layer_norm, layer_norm_backward)

__all__ = (
    "identity", "identity_backward", "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward", "gelu", "gelu_backward", "sigmoid", "sigmoid_backward", "tanh",
    "tanh_backward", "softplus", "softplus_backward", "silu", "silu_backward", "softmax",
    "softmax_backward", "log_softmax", "log_softmax_backward",
    "mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "softmax_cross_entropy", "dense_forward", "dense_backward",
    "layer_norm", "layer_norm_backward", "batch_norm", "batch_norm_backward", "dropout",
    "dropout_backward",
)

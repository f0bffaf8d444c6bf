"""fastgrad's functional API (also ``fastgrad.F``): activations, losses and the dense layer.

Every function validates its inputs, accepts float32 and float64 (bool/integer input
becomes float64) and returns the input's dtype; each has a plain-NumPy twin of the
same name and signature in :mod:`fastgrad.reference`.
"""
from fastgrad.functional.activations import (
    ACTIVATIONS, activation_spec, elu, elu_backward, gelu, gelu_backward, identity,
    identity_backward, leaky_relu, leaky_relu_backward, log_softmax, log_softmax_backward, relu,
    relu_backward, sigmoid, sigmoid_backward, silu, silu_backward, softmax, softmax_backward,
    softplus, softplus_backward, tanh, tanh_backward)
from fastgrad.functional.dense import dense_backward, dense_forward
from fastgrad.functional.losses import (
    binary_cross_entropy, binary_cross_entropy_with_logits, huber, mae, mse, softmax_cross_entropy)
from fastgrad.functional.normalization import (
    batch_norm, batch_norm_backward, dropout, dropout_backward, layer_norm, layer_norm_backward)

__all__ = (
    "identity", "identity_backward", "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward", "gelu", "gelu_backward", "sigmoid", "sigmoid_backward", "tanh",
    "tanh_backward", "softplus", "softplus_backward", "silu", "silu_backward", "softmax",
    "softmax_backward", "log_softmax", "log_softmax_backward",
    "mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "softmax_cross_entropy", "dense_forward", "dense_backward",
    "layer_norm", "layer_norm_backward", "batch_norm", "batch_norm_backward", "dropout",
    "dropout_backward", "ACTIVATIONS", "activation_spec",
)

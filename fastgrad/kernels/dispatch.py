"""Which compiled kernels a model's training loop calls, and their addresses (kernels/slots.py).

Plain Python, run before a compiled call: each kernel named here is compiled (or loaded from
the disk cache) the first time a model uses it, for the slot's signature in the model's
dtype, and its address is memoized per process (:class:`fastgrad._jit.native.Slot`).
"""
import numpy as np

from fastgrad.kernels import activation_layer, optim, slots, train
from fastgrad.kernels.activations import IDENTITY
from fastgrad.kernels.program import ACT, ACTIVATION, CUSTOM_ACTIVATION, DENSE, OP


def op_addresses(program, dtype, custom_activation=None):
    """(op_fwd, op_bwd, act_fwd, act_bwd), each (n_ops,) int64: the addresses of every op's
    forward and backward and of its activation's (0 where an op has none).
    ``custom_activation``: the (forward, backward) kernels for CUSTOM_ACTIVATION."""
    n = program.shape[0]
    op_fwd, op_bwd, act_fwd, act_bwd = (np.zeros(n, np.int64) for _ in range(4))
    for i in range(n):
        kind = int(program[i, OP])
        op_fwd[i] = slots.OP_FORWARD.address(train.OP_FORWARD[kind], dtype)
        op_bwd[i] = slots.OP_BACKWARD.address(train.OP_BACKWARD[kind], dtype)
        if kind in (DENSE, ACTIVATION):
            code = int(program[i, ACT])
            forward, backward = (custom_activation if code == CUSTOM_ACTIVATION else
                                 (activation_layer.FORWARD[code], activation_layer.BACKWARD[code]))
            act_fwd[i] = slots.ACT_FORWARD.address(forward, dtype)
            act_bwd[i] = slots.ACT_BACKWARD.address(backward, dtype)
    return op_fwd, op_bwd, act_fwd, act_bwd


def loss_address(dtype, custom_loss=None) -> int:
    """The address of the batch loss: every built-in loss's (``train._output_loss``, chosen
    by code inside) or a user's (``custom_loss``)."""
    return slots.OUTPUT_LOSS.address(train._output_loss if custom_loss is None else custom_loss, dtype)


def optimizer_address(code, dtype) -> int:
    """The address of optimizer ``code``'s update (``optim.STEP_INTO``)."""
    return slots.OPTIMIZER_STEP.address(optim.STEP_INTO[int(code)], dtype)


def activation_address(code, dtype) -> int:
    """The address of activation ``code``'s forward over (m, n) blocks, 0 for IDENTITY (as
    ``predict_batches`` takes its post-processing)."""
    code = int(code)
    return 0 if code == IDENTITY else slots.ACT_FORWARD.address(activation_layer.FORWARD[code], dtype)


def compile_all(dtype) -> None:
    """Compile (or load) every built-in kernel the training loop can call, for ``dtype``."""
    for kind in train.OP_FORWARD:
        slots.OP_FORWARD.address(train.OP_FORWARD[kind], dtype)
        slots.OP_BACKWARD.address(train.OP_BACKWARD[kind], dtype)
    for code in activation_layer.FORWARD:
        slots.ACT_FORWARD.address(activation_layer.FORWARD[code], dtype)
        slots.ACT_BACKWARD.address(activation_layer.BACKWARD[code], dtype)
    for code in optim.STEP_INTO:
        optimizer_address(code, dtype)
    loss_address(dtype)

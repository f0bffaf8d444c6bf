"""Which compiled kernels a model's training loop calls, and their addresses (kernels/slots.py).

Plain Python, run before a compiled call: each kernel named here is compiled (or loaded from
the disk cache) the first time a model uses it, for the slot's signature in the model's
dtype, and its address is memoized per process (:class:`fastgrad._jit.native.Slot`).
"""
import numpy as np

from fastgrad.kernels import activation_layer, grad_utils, ops, optim, slots, train
from fastgrad.kernels.activations import IDENTITY
from fastgrad.kernels.program import (ACT, ACTIVATION, CUSTOM_ACTIVATION, DENSE, K_ACT_BWD, K_ACT_FWD, K_BWD, K_FWD,
                                      OP)


def op_addresses(program, dtype, custom_activation=None):
    """(n_ops, 4) int64: per op, the addresses of its forward and backward and of its
    activation's (columns K_FWD, K_BWD, K_ACT_FWD, K_ACT_BWD; 0 where an op has none).
    ``custom_activation``: the (forward, backward) kernels for CUSTOM_ACTIVATION."""
    n = program.shape[0]
    kernels = np.zeros((n, 4), np.int64)
    for i in range(n):
        kind = int(program[i, OP])
        kernels[i, K_FWD] = slots.OP_FORWARD.address(ops.OP_FORWARD[kind], dtype)
        kernels[i, K_BWD] = slots.OP_BACKWARD.address(ops.OP_BACKWARD[kind], dtype)
        if kind in (DENSE, ACTIVATION):
            code = int(program[i, ACT])
            forward, backward = (custom_activation if code == CUSTOM_ACTIVATION else
                                 (activation_layer.FORWARD[code], activation_layer.BACKWARD[code]))
            kernels[i, K_ACT_FWD] = slots.ACT_FORWARD.address(forward, dtype)
            kernels[i, K_ACT_BWD] = slots.ACT_BACKWARD.address(backward, dtype)
    return kernels


def loss_address(code, dtype, custom_loss=None) -> int:
    """The address of loss ``code``'s batch loss (``train.OUTPUT_LOSS``), or of a user's
    (``custom_loss``, for CUSTOM_LOSS)."""
    return slots.OUTPUT_LOSS.address(train.OUTPUT_LOSS[int(code)] if custom_loss is None else custom_loss, dtype)


def optimizer_address(code, dtype) -> int:
    """The address of optimizer ``code``'s update (``optim.STEP_INTO``)."""
    return slots.OPTIMIZER_STEP.address(optim.STEP_INTO[int(code)], dtype)


def penalty_addresses(l1, l2, l1_prox, dtype) -> tuple:
    """(penalty, proximal step) addresses for ``Objective.penalty_fn``/``prox_fn``: each 0
    unless the model has that term (l1 or l2 not 0; ``l1_prox`` with l1 > 0)."""
    penalty = slots.PENALTY.address(train.penalty, dtype) if l1 != 0 or l2 != 0 else 0
    prox = slots.PROXIMAL.address(train.proximal_l1, dtype) if l1_prox and l1 > 0 else 0
    return penalty, prox


def clip_address(clip_norm, dtype) -> int:
    """The clipping's address for ``Update.clip_fn``: 0 unless ``clip_norm`` > 0."""
    return slots.CLIP.address(grad_utils.clip_to_max_norm, dtype) if clip_norm > 0 else 0


def diagnostics_address(dtype) -> int:
    """The address of the per-batch diagnostics (``fit(diagnostics=True)``)."""
    return slots.DIAGNOSTICS.address(train._record_diagnostics, dtype)


def activation_address(code, dtype) -> int:
    """The address of activation ``code``'s forward over (m, n) blocks, 0 for IDENTITY (as
    ``predict_batches`` takes its post-processing)."""
    code = int(code)
    return 0 if code == IDENTITY else slots.ACT_FORWARD.address(activation_layer.FORWARD[code], dtype)


def compile_all(dtype) -> None:
    """Compile (or load) every built-in kernel the training loop can call, for ``dtype``."""
    for kind in ops.OP_FORWARD:
        slots.OP_FORWARD.address(ops.OP_FORWARD[kind], dtype)
        slots.OP_BACKWARD.address(ops.OP_BACKWARD[kind], dtype)
    for code in activation_layer.FORWARD:
        slots.ACT_FORWARD.address(activation_layer.FORWARD[code], dtype)
        slots.ACT_BACKWARD.address(activation_layer.BACKWARD[code], dtype)
    for code in optim.STEP_INTO:
        optimizer_address(code, dtype)
    for code in train.OUTPUT_LOSS:
        loss_address(code, dtype)
    penalty_addresses(1.0, 1.0, True, dtype)
    clip_address(1.0, dtype)
    diagnostics_address(dtype)

"""Which compiled kernels a model's training loop calls, and their addresses (kernels/slots.py).

Plain Python, run before a compiled call: each kernel named here is compiled (or loaded from
the disk cache) the first time a model uses it, for the slot's signature in the model's
dtype, and its address is memoized per process (:class:`fastgrad._jit.native.Slot`).

The kernels come in compile jobs (:func:`job_kernels`), JSON-able tuples that name what a
model needs (:func:`jobs_for`), so that a first ``fit`` can hand some of them to a second
process (fastgrad/_compile_jobs.py).
"""
import numpy as np

from fastgrad._jit.native import argtypes_of, is_ready as _has_code
from fastgrad.kernels import activation_layer, grad_utils, ops, optim, slots, train
from fastgrad.kernels.activations import IDENTITY
from fastgrad.kernels.program import (ACT, ACTIVATION, CUSTOM_ACTIVATION, CUSTOM_LOSS, DENSE, K_ACT_BWD, K_ACT_FWD,
                                      K_BWD, K_FWD, OP)


def job_kernels(job) -> list:
    """The (slot, kernel) pairs of one compile job: ``("op", kind)`` an op kind's forward and
    backward, ``("activation", code)`` an activation's, ``("loss", code)``, ``("optimizer", code)``,
    ``("penalty",)``, ``("proximal",)``, ``("clip",)`` or ``("diagnostics",)``."""
    name, *arg = job
    if name == "op":
        return [(slots.OP_FORWARD, ops.OP_FORWARD[arg[0]]), (slots.OP_BACKWARD, ops.OP_BACKWARD[arg[0]])]
    if name == "activation":
        return [(slots.ACT_FORWARD, activation_layer.FORWARD[arg[0]]),
                (slots.ACT_BACKWARD, activation_layer.BACKWARD[arg[0]])]
    if name == "loss":
        return [(slots.OUTPUT_LOSS, train.OUTPUT_LOSS[arg[0]])]
    if name == "optimizer":
        return [(slots.OPTIMIZER_STEP, optim.STEP_INTO[arg[0]])]
    return [{"penalty": (slots.PENALTY, train.penalty), "proximal": (slots.PROXIMAL, train.proximal_l1),
             "clip": (slots.CLIP, grad_utils.clip_to_max_norm),
             "diagnostics": (slots.DIAGNOSTICS, train._record_diagnostics)}[name]]


def every_job() -> list:
    """Every built-in kernel the training loop can call, as compile jobs."""
    return ([("op", kind) for kind in ops.OP_FORWARD] + [("activation", code) for code in activation_layer.FORWARD]
            + [("loss", code) for code in train.OUTPUT_LOSS] + [("optimizer", code) for code in optim.STEP_INTO]
            + [("penalty",), ("proximal",), ("clip",), ("diagnostics",)])


def jobs_for(program, loss_code, optimizer_code, l1=0.0, l2=0.0, l1_prox=False, clip=0.0, diagnostics=False) -> list:
    """The compile jobs of the built-in kernels a training loop over ``program`` calls (a user's
    loss or activation is not one; ``optimizer_code`` None: no optimizer update)."""
    ops_, acts = program[:, OP].tolist(), program[:, ACT].tolist()
    kinds = sorted(set(ops_))
    codes = sorted({a for k, a in zip(ops_, acts) if k in (DENSE, ACTIVATION) and a != CUSTOM_ACTIVATION})
    jobs = [("op", k) for k in kinds] + [("activation", c) for c in codes]
    if loss_code != CUSTOM_LOSS:
        jobs.append(("loss", int(loss_code)))
    if optimizer_code is not None:
        jobs.append(("optimizer", int(optimizer_code)))
    jobs += ([("penalty",)] if l1 != 0 or l2 != 0 else []) + ([("proximal",)] if l1_prox and l1 > 0 else [])
    return jobs + ([("clip",)] if clip > 0 else []) + ([("diagnostics",)] if diagnostics else [])


LOOPS = {"train": (train.train_epoch, slots.train_epoch_example),
         "evaluate": (train.evaluate_batches, slots.evaluate_batches_example),
         "loss_and_grad": (train.loss_and_grad_batch, slots.loss_and_grad_batch_example),
         "predict": (train.predict_batches, slots.predict_batches_example)}
"""The compiled loops a fit calls from Python, as jobs ``("loop", name)``: (kernel, example args)."""


def compile_job(job, dtype) -> None:
    """Compile (or load) one job's kernels for ``dtype``; a loop for its example's types."""
    if job[0] == "loop":
        kernel, example = LOOPS[job[1]]
        kernel.compile(argtypes_of(example(np.dtype(dtype))))
        return
    for slot, kernel in job_kernels(job):
        slot.address(kernel, dtype)


def is_ready(job, dtype) -> bool:
    """Whether one job's kernels need no compiling: in this process or in the disk cache."""
    if job[0] == "loop":
        kernel, example = LOOPS[job[1]]
        return _has_code(kernel, argtypes_of(example(np.dtype(dtype))))
    return all(slot.is_ready(kernel, dtype) for slot, kernel in job_kernels(job))


def _address(job, dtype) -> int:
    slot, kernel = job_kernels(job)[0]
    return slot.address(kernel, dtype)


def op_addresses(program, dtype, custom_activation=None):
    """(n_ops, 4) int64: per op, the addresses of its forward and backward and of its
    activation's (columns K_FWD, K_BWD, K_ACT_FWD, K_ACT_BWD; 0 where an op has none).
    ``custom_activation``: the (forward, backward) kernels for CUSTOM_ACTIVATION."""
    n = program.shape[0]
    kernels = np.zeros((n, 4), np.int64)
    for i in range(n):
        kind = int(program[i, OP])
        (fwd_slot, forward), (bwd_slot, backward) = job_kernels(("op", kind))
        kernels[i, K_FWD] = fwd_slot.address(forward, dtype)
        kernels[i, K_BWD] = bwd_slot.address(backward, dtype)
        if kind in (DENSE, ACTIVATION):
            code = int(program[i, ACT])
            forward, backward = (custom_activation if code == CUSTOM_ACTIVATION else
                                 [kernel for _, kernel in job_kernels(("activation", code))])
            kernels[i, K_ACT_FWD] = slots.ACT_FORWARD.address(forward, dtype)
            kernels[i, K_ACT_BWD] = slots.ACT_BACKWARD.address(backward, dtype)
    return kernels


def loss_address(code, dtype, custom_loss=None) -> int:
    """The address of loss ``code``'s batch loss (``train.OUTPUT_LOSS``), or of a user's
    (``custom_loss``, for CUSTOM_LOSS)."""
    if custom_loss is not None:
        return slots.OUTPUT_LOSS.address(custom_loss, dtype)
    return _address(("loss", int(code)), dtype)


def optimizer_address(code, dtype) -> int:
    """The address of optimizer ``code``'s update (``optim.STEP_INTO``)."""
    return _address(("optimizer", int(code)), dtype)


def penalty_addresses(l1, l2, l1_prox, dtype) -> tuple:
    """(penalty, proximal step) addresses for ``Objective.penalty_fn``/``prox_fn``: each 0
    unless the model has that term (l1 or l2 not 0; ``l1_prox`` with l1 > 0)."""
    penalty = _address(("penalty",), dtype) if l1 != 0 or l2 != 0 else 0
    return penalty, (_address(("proximal",), dtype) if l1_prox and l1 > 0 else 0)


def clip_address(clip_norm, dtype) -> int:
    """The clipping's address for ``Update.clip_fn``: 0 unless ``clip_norm`` > 0."""
    return _address(("clip",), dtype) if clip_norm > 0 else 0


def diagnostics_address(dtype) -> int:
    """The address of the per-batch diagnostics (``fit(diagnostics=True)``)."""
    return _address(("diagnostics",), dtype)


def activation_address(code, dtype) -> int:
    """The address of activation ``code``'s forward over (m, n) blocks, 0 for IDENTITY (as
    ``predict_batches`` takes its post-processing)."""
    code = int(code)
    return 0 if code == IDENTITY else _address(("activation", code), dtype)


def every_job_and_loop() -> list:
    """:func:`every_job` and every loop of :data:`LOOPS`, as compile jobs."""
    return every_job() + [("loop", name) for name in LOOPS]


def compile_all(dtype) -> None:
    """Compile (or load) every built-in kernel the training loop can call, and every loop, for
    ``dtype``."""
    for job in every_job_and_loop():
        compile_job(job, dtype)

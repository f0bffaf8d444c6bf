"""The program a :class:`~fastgrad.Sequential` compiles to, and the groups of arrays its kernels take.

A model is a list of ops run in order (see DESIGN.md: one flat parameter buffer, a
whole epoch in one compiled call). Row ``i`` of ``program`` (int64, shape
``(n_ops, N_COLS)``) describes op ``i``:

* ``OP``: the op kind (``DENSE``, ``ACTIVATION``, ``DROPOUT``, ``LAYER_NORM``,
  ``BATCH_NORM``, ``FORK``, ``ADD``);
* ``W_OFF``/``B_OFF``: offsets into ``params`` (and ``grads``) of the op's first and
  second trainable array -- Dense's W (n_in, n_out, row-major) and b (n_out,), a norm's
  weight and bias (n_out,) -- or -1 when absent (``use_bias=False``, no affine);
* ``N_IN``/``N_OUT``: the op's input and output widths;
* ``ACT``: the activation code (Dense, Activation);
* ``S_OFF``: offset into ``state`` of non-trainable values (BatchNorm1d's running mean,
  then its running variance), -1 when none;
* ``REF``: for a residual block, the index of the partner op (``FORK`` <-> ``ADD``);
* ``P_LO``/``P_HI``: the op's whole range of ``params`` (equal when it has none).

``op_params`` (n_ops, 2), in the parameters' dtype, holds each op's scalars: an
activation's (p1, p2); Dropout's (p, -); LayerNorm's (eps, -); BatchNorm1d's (eps, momentum).

A residual block ``Residual([...])`` becomes ``FORK``, the block's ops, ``ADD``:
``FORK`` passes its input on, ``ADD`` adds the ``FORK``'s output to its own input; in the
backward pass ``ADD`` leaves the gradient of the skip path in its ``z`` block, which the
``FORK`` adds to the gradient it passes back.

Work buffers: op ``i``'s output (``abuf``), its gradient (``gbuf``) and its saved
intermediates (``zbuf``: Dense's pre-activation, a norm's normalized input) are blocks
of ``m * n_out`` values starting at ``buf_off[i, 0]``; ``sbuf`` holds per-row or
per-column values (a norm's 1/std) from ``buf_off[i, 1]``.

Nothing here is compiled: these are the constants and the named tuples that both
:mod:`fastgrad.kernels.train` and its NumPy twin :mod:`fastgrad.reference.train` take.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

DENSE, ACTIVATION, DROPOUT, LAYER_NORM, BATCH_NORM, FORK, ADD = range(7)
OP_NAMES = ("Dense", "Activation", "Dropout", "LayerNorm", "BatchNorm1d", "Residual (in)", "Residual (out)")
OP, W_OFF, B_OFF, N_IN, N_OUT, ACT, S_OFF, REF, P_LO, P_HI = range(10)
N_COLS = 10
K_FWD, K_BWD, K_ACT_FWD, K_ACT_BWD = range(4)  # columns of Net.kernels

# Modes of a pass: evaluation; training (dropout on, batch statistics); training that also
# updates BatchNorm1d's running statistics (fit and train_step only).
EVAL, TRAIN, TRAIN_UPDATE = 0, 1, 2


CUSTOM_LOSS = 99        # the loss code of a user's fastgrad.Loss (beside kernels.losses' and SOFTMAX_CE)
CUSTOM_ACTIVATION = 99  # the activation code of a user's fastgrad.ActivationFn (beside kernels.activations')

class Net(NamedTuple):
    """The model's structure: ``program`` (n_ops, N_COLS) int64, ``op_params`` (n_ops, 2)
    and ``state`` (n_state,) in the parameters' dtype, ``seed`` (int) keying Dropout's masks,
    ``cores`` (int): the most pieces a Dense op's matrix product is cut into
    (kernels/gemm.py; :data:`fastgrad.kernels.gemm.MACHINE_CORES`, not the thread count);
    ``kernels`` (n_ops, 4) int64: per op, the addresses of its compiled forward and backward
    (columns ``K_FWD``, ``K_BWD``) and of its activation's (``K_ACT_FWD``, ``K_ACT_BWD``; 0
    for ops without one), filled by :mod:`fastgrad.kernels.dispatch` (kernels/slots.py; the
    NumPy twin ignores them)."""
    program: np.ndarray
    op_params: np.ndarray
    state: np.ndarray
    seed: int
    cores: int
    kernels: np.ndarray


class Work(NamedTuple):
    """One thread's work buffers for batches of up to ``batch`` rows (see the module doc):
    ``zbuf``/``abuf``/``gbuf`` (sum of batch * n_out), ``sbuf``, ``delta`` (batch * widest),
    gathered-batch buffers ``xbuf``, ``yfbuf``, ``ylbuf`` (int64), ``wbuf``, ``buf_off``
    (n_ops, 2) int64 and ``spare`` (n_params,), the second parameter buffer of training."""
    zbuf: np.ndarray
    abuf: np.ndarray
    gbuf: np.ndarray
    sbuf: np.ndarray
    delta: np.ndarray
    xbuf: np.ndarray
    yfbuf: np.ndarray
    ylbuf: np.ndarray
    wbuf: np.ndarray
    buf_off: np.ndarray
    spare: np.ndarray


class Data(NamedTuple):
    """Inputs and targets: ``X`` (n, n_in); float targets ``yf`` (n, k) or int64 labels ``yl``
    (n,) (``use_labels``; the other is a dummy); sample weights ``sw`` (n,) or empty."""
    X: np.ndarray
    yf: np.ndarray
    yl: np.ndarray
    use_labels: bool
    sw: np.ndarray


class Objective(NamedTuple):
    """The loss code and its parameter (Huber's delta, in the parameters' dtype), the
    l1/l2 penalties on Dense weights, and whether l1 is applied by its proximal step
    (soft-thresholding after each update) instead of its subgradient; ``loss_fn``: the address
    of the loss's compiled function (kernels/slots.py ``OUTPUT_LOSS``), ``penalty_fn`` and
    ``prox_fn`` those of the penalty (``PENALTY``, when l1 or l2 is not 0) and of the proximal
    step (``PROXIMAL``, when ``l1_prox`` and l1 > 0); 0 where unused, and for the NumPy twin."""
    code: int
    param: np.floating
    l1: float
    l2: float
    l1_prox: bool = False
    loss_fn: int = 0
    penalty_fn: int = 0
    prox_fn: int = 0


class Update(NamedTuple):
    """The optimizer (``code``, ``state`` rows, ``hyper`` float64 vector, see
    kernels.optim), per-batch learning rates ``lrs``, ``clip_norm`` (0: none), and the
    step count before the first batch ``step0``; ``step_fn``: the address of the optimizer's
    compiled update (kernels/slots.py ``OPTIMIZER_STEP``), ``clip_fn`` that of the clipping
    (``CLIP``, when ``clip_norm`` > 0); 0 where unused, and for the NumPy twin."""
    code: int
    state: np.ndarray
    hyper: np.ndarray
    lrs: np.ndarray
    clip_norm: float
    step0: int
    step_fn: int = 0
    clip_fn: int = 0


class Record(NamedTuple):
    """What an epoch writes: per-batch ``loss`` and ``correct``; ``diag`` (n_ops, 3) sums
    when ``diagnostics``; ``status`` (3,) int64: why a batch failed, and, kept current after
    every update, the updates applied so far and whether the current parameters are in
    ``work.spare`` (1) rather than ``params`` (0) -- what Python needs to keep those updates
    when a user's function raises in the middle of the call (kernels/custom.py); ``diag_fn``:
    the address of the compiled function that adds a batch's diagnostics (kernels/slots.py
    ``DIAGNOSTICS``; 0 when not asked for, and for the NumPy twin)."""
    loss: np.ndarray
    correct: np.ndarray
    diagnostics: bool
    diag: np.ndarray
    status: np.ndarray
    diag_fn: int = 0


def work_buffers(program, batch, n_in, n_out, n_params, dtype) -> Work:
    """Freshly allocated :class:`Work` for ``program`` and batches of up to ``batch`` rows."""
    widths = program[:, N_OUT].astype(np.int64)
    block = batch * widths
    off = np.zeros((program.shape[0], 2), np.int64)
    off[1:, 0] = np.cumsum(block)[:-1]
    per = np.maximum(batch, widths)
    off[1:, 1] = np.cumsum(per)[:-1]
    total = int(block.sum())
    widest = int(max(widths.max(), program[:, N_IN].max()))
    return Work(zbuf=np.empty(total, dtype), abuf=np.empty(total, dtype), gbuf=np.empty(total, dtype),
                sbuf=np.empty(int(per.sum()), dtype), delta=np.empty(batch * widest, dtype),
                xbuf=np.empty(batch * n_in, dtype), yfbuf=np.empty(batch * n_out, dtype),
                ylbuf=np.empty(batch, np.int64), wbuf=np.empty(batch, dtype), buf_off=off,
                spare=np.empty(n_params, dtype))

"""The op kinds of a model's program, as the compiled training loop calls them (kernels/train.py).

One compiled forward and one backward per op kind, each a function of its own that the loop
calls by address (``Net.kernels``, the ``OP_FORWARD``/``OP_BACKWARD`` slots of
kernels/slots.py), so that a model compiles the kinds it has, each once, and the loop's module
does not hold them. Every one takes ``(params[, grads], net, x, work, i, m, mode, step)``
(see :mod:`fastgrad.kernels.program`) and calls the kind's kernel in its own file (dense.py,
activation_layer.py, dropout.py, layernorm.py, batchnorm.py, residual.py) on op ``i``'s views
of the flat buffers. Forward: op i on its input x (m, N_IN), output into op i's ``abuf``
block. Backward: the parameters' gradient into ``grads``, d loss / d x into op i-1's gradient
block (not for op 0: nothing needs d loss / d X). Their NumPy twin is
:func:`fastgrad.reference.train._op_forward`/``_op_backward``.

Also the one-line views of the buffers (``block``, ``vec``, ``weights``, ...) that these and
the loop share, pasted into their callers.
"""
import numpy as np

from fastgrad._jit import kernel, matrix_view, spliced
from fastgrad.kernels.batchnorm import batch_norm_backward, batch_norm_forward
from fastgrad.kernels.dense import dense_layer_backward, dense_layer_forward
from fastgrad.kernels.dropout import dropout_backward, dropout_forward
from fastgrad.kernels.layernorm import layer_norm_backward, layer_norm_forward
from fastgrad.kernels.program import (ACTIVATION, ADD, B_OFF, BATCH_NORM, DENSE, DROPOUT, EVAL, FORK, K_ACT_BWD,
                                      K_ACT_FWD, LAYER_NORM, N_IN, N_OUT, REF, S_OFF, TRAIN_UPDATE, W_OFF)
from fastgrad.kernels.residual import add_backward, add_forward, fork_backward, fork_forward
from fastgrad.kernels.slots import call_act_backward, call_act_forward
from fastgrad.kernels.util import copy_2d


@spliced
def block(buf, buf_off, i, m, n):
    """Op i's (m, n) block of a work buffer (abuf, zbuf, gbuf)."""
    return matrix_view(buf, buf_off[i, 0], m, n)


@spliced
def vec(buf, off, n):
    """buf[off : off + n], or an empty slice when off < 0 (the array is absent)."""
    if off < 0:
        return buf[0:0]
    return buf[off:off + n]


@spliced
def weights(buf, program, i):
    """Dense op i's W (n_in, n_out)."""
    n_in, n_out = program[i, N_IN], program[i, N_OUT]
    return matrix_view(buf, program[i, W_OFF], n_in, n_out)


@spliced
def scratch(buf, m, n):
    return matrix_view(buf, 0, m, n)


@spliced
def op_stats(work, i, size):
    """Op i's saved statistics in ``work.sbuf``: LayerNorm's per-row (size m) or BatchNorm1d's
    per-feature (size n) reciprocal standard deviations."""
    return work.sbuf[work.buf_off[i, 1]:work.buf_off[i, 1] + size]


@spliced
def out_blocks(work, i, m, n):
    return block(work.abuf, work.buf_off, i, m, n), block(work.zbuf, work.buf_off, i, m, n)


@spliced
def grad_in(work, x, i, m, n_in):
    """Op i-1's gradient block (m, n_in), or x when i is 0 (then nothing is written to it)."""
    return block(work.gbuf, work.buf_off, i - 1, m, n_in) if i > 0 else x


@kernel
def _dense_forward(params, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    a, z = out_blocks(work, i, m, n)
    dense_layer_forward(x, weights(params, prog, i), vec(params, prog[i, B_OFF], n), z, a, net.kernels[i, K_ACT_FWD],
                        net.op_params[i, 0], net.op_params[i, 1], net.cores)


@kernel
def _dense_backward(params, grads, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    z = block(work.zbuf, work.buf_off, i, m, n)
    dense_layer_backward(x, weights(params, prog, i), z, block(work.gbuf, work.buf_off, i, m, n),
                         net.kernels[i, K_ACT_BWD],
                         net.op_params[i, 0], net.op_params[i, 1], scratch(work.delta, m, n),
                         grad_in(work, x, i, m, prog[i, N_IN]), weights(grads, prog, i),
                         vec(grads, prog[i, B_OFF], n), i > 0, net.cores)


@kernel
def _activation_forward(params, net, x, work, i, m, mode, step):
    a, z = out_blocks(work, i, m, net.program[i, N_OUT])
    call_act_forward(net.kernels[i, K_ACT_FWD], (x, a, net.op_params[i, 0], net.op_params[i, 1]))


@kernel
def _activation_backward(params, grads, net, x, work, i, m, mode, step):
    if i > 0:
        n = net.program[i, N_OUT]
        call_act_backward(net.kernels[i, K_ACT_BWD], (x, block(work.gbuf, work.buf_off, i, m, n),
                                           grad_in(work, x, i, m, n), net.op_params[i, 0], net.op_params[i, 1]))


@kernel
def _dropout_forward(params, net, x, work, i, m, mode, step):
    a, z = out_blocks(work, i, m, net.program[i, N_OUT])
    if mode == EVAL:
        copy_2d(x, a)
    else:
        dropout_forward(x, a, np.float64(net.op_params[i, 0]), net.seed, step, i)


@kernel
def _dropout_backward(params, grads, net, x, work, i, m, mode, step):
    if i > 0:
        n = net.program[i, N_OUT]
        g = block(work.gbuf, work.buf_off, i, m, n)
        g_in = grad_in(work, x, i, m, n)
        if mode == EVAL:
            copy_2d(g, g_in)
        else:
            dropout_backward(g, g_in, np.float64(net.op_params[i, 0]), net.seed, step, i)


@kernel
def _layer_norm_forward(params, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    a, z = out_blocks(work, i, m, n)
    rstd = op_stats(work, i, m)
    layer_norm_forward(x, vec(params, prog[i, W_OFF], n), vec(params, prog[i, B_OFF], n), net.op_params[i, 0],
                       a, z, rstd)


@kernel
def _layer_norm_backward(params, grads, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    rstd = op_stats(work, i, m)
    layer_norm_backward(block(work.gbuf, work.buf_off, i, m, n), block(work.zbuf, work.buf_off, i, m, n), rstd,
                        vec(params, prog[i, W_OFF], n), grad_in(work, x, i, m, n), vec(grads, prog[i, W_OFF], n),
                        vec(grads, prog[i, B_OFF], n), i > 0)


@kernel
def _batch_norm_forward(params, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    a, z = out_blocks(work, i, m, n)
    rstd = op_stats(work, i, n)
    tracked = prog[i, S_OFF] >= 0
    use_batch = mode != EVAL or not tracked
    batch_norm_forward(x, vec(params, prog[i, W_OFF], n), vec(params, prog[i, B_OFF], n), net.op_params[i, 0],
                       net.op_params[i, 1], vec(net.state, prog[i, S_OFF], n), vec(net.state, prog[i, S_OFF] + n, n),
                       use_batch, use_batch and tracked and mode == TRAIN_UPDATE, a, z, rstd)


@kernel
def _batch_norm_backward(params, grads, net, x, work, i, m, mode, step):
    prog = net.program
    n = prog[i, N_OUT]
    rstd = op_stats(work, i, n)
    used_batch = mode != EVAL or prog[i, S_OFF] < 0
    batch_norm_backward(block(work.gbuf, work.buf_off, i, m, n), block(work.zbuf, work.buf_off, i, m, n), rstd,
                        vec(params, prog[i, W_OFF], n), used_batch, grad_in(work, x, i, m, n),
                        vec(grads, prog[i, W_OFF], n), vec(grads, prog[i, B_OFF], n), i > 0)


@kernel
def _fork_forward(params, net, x, work, i, m, mode, step):
    a, z = out_blocks(work, i, m, net.program[i, N_OUT])
    fork_forward(x, a)


@kernel
def _fork_backward(params, grads, net, x, work, i, m, mode, step):
    if i > 0:  # the skip path's gradient was left in the ADD's z block
        n = net.program[i, N_OUT]
        skip = block(work.zbuf, work.buf_off, net.program[i, REF], m, n)
        fork_backward(block(work.gbuf, work.buf_off, i, m, n), skip, grad_in(work, x, i, m, n))


@kernel
def _add_forward(params, net, x, work, i, m, mode, step):
    """The block's output plus the FORK's."""
    n = net.program[i, N_OUT]
    a, z = out_blocks(work, i, m, n)
    add_forward(x, block(work.abuf, work.buf_off, net.program[i, REF], m, n), a)


@kernel
def _add_backward(params, grads, net, x, work, i, m, mode, step):
    """(never op 0)"""
    n = net.program[i, N_OUT]
    add_backward(block(work.gbuf, work.buf_off, i, m, n), grad_in(work, x, i, m, net.program[i, N_IN]),
                 block(work.zbuf, work.buf_off, i, m, n))


OP_FORWARD = {DENSE: _dense_forward, ACTIVATION: _activation_forward, DROPOUT: _dropout_forward,
              LAYER_NORM: _layer_norm_forward, BATCH_NORM: _batch_norm_forward, FORK: _fork_forward, ADD: _add_forward}
"""Op kind -> its compiled forward (the OP_FORWARD slot)."""
OP_BACKWARD = {DENSE: _dense_backward, ACTIVATION: _activation_backward, DROPOUT: _dropout_backward,
               LAYER_NORM: _layer_norm_backward, BATCH_NORM: _batch_norm_backward, FORK: _fork_backward,
               ADD: _add_backward}
"""Op kind -> its compiled backward (the OP_BACKWARD slot)."""

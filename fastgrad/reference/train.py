"""The training path in plain NumPy: the twin of :mod:`fastgrad.kernels.train`.

Same function names and signatures, the same program (:mod:`fastgrad.kernels.program`)
interpreted op by op with the NumPy twins of the op kernels (reference/dense.py,
activation_layer.py, dropout.py, layernorm.py, batchnorm.py, residual.py), writing into
the same work buffers, so ``Sequential(..., backend="reference")`` runs the same math as
the compiled path, one NumPy call at a time.
"""
import numpy as np

from fastgrad.kernels.activations import RELU, SIGMOID, SOFTMAX
from fastgrad.kernels.losses import BCE_LOGITS, HUBER, MAE, MSE
from fastgrad.kernels.optim import LR
from fastgrad.kernels.program import (ACT, ACTIVATION, B_OFF, BATCH_NORM, DENSE, DROPOUT, EVAL, FORK, LAYER_NORM,
                                      N_IN, N_OUT, OP, P_HI, P_LO, REF, S_OFF, TRAIN_UPDATE, W_OFF)
from fastgrad.kernels.train import FAIL_LOSS, FAIL_PARAMS, FAIL_UPDATE, OK, SOFTMAX_CE
from fastgrad.reference import activations as activations_ref
from fastgrad.reference import losses as losses_ref
from fastgrad.reference.activation_layer import activation_layer_backward, activation_layer_forward
from fastgrad.reference.batchnorm import batch_norm_backward, batch_norm_forward
from fastgrad.reference.dense import dense_layer_backward, dense_layer_forward
from fastgrad.reference.grad_utils import clip_to_max_norm
from fastgrad.reference.dropout import dropout_backward, dropout_forward
from fastgrad.reference.layernorm import layer_norm_backward, layer_norm_forward
from fastgrad.reference.optim import optimizer_step
from fastgrad.reference.residual import add_backward, add_forward, fork_backward, fork_forward


def _block(buf, buf_off, i, m, n):
    return buf[buf_off[i, 0]:buf_off[i, 0] + m * n].reshape(m, n)


def _vec(buf, off, n):
    return buf[0:0] if off < 0 else buf[off:off + n]


def _weights(buf, program, i):
    n_in, n_out, off = int(program[i, N_IN]), int(program[i, N_OUT]), int(program[i, W_OFF])
    return buf[off:off + n_in * n_out].reshape(n_in, n_out)


def _rstd(work, i, size):
    return work.sbuf[work.buf_off[i, 1]:work.buf_off[i, 1] + size]


def _op_forward(params, net, x, work, i, m, mode, step):
    """Op i on its input x; writes and returns op i's output block."""
    prog = net.program
    op, n = int(prog[i, OP]), int(prog[i, N_OUT])
    a = _block(work.abuf, work.buf_off, i, m, n)
    z = _block(work.zbuf, work.buf_off, i, m, n)
    p1, p2 = net.op_params[i]
    if op == DENSE:
        dense_layer_forward(x, _weights(params, prog, i), _vec(params, prog[i, B_OFF], n), z, a, prog[i, ACT], p1, p2, net.cores)
    elif op == ACTIVATION:
        activation_layer_forward(x, a, prog[i, ACT], p1, p2)
    elif op == DROPOUT:
        if mode == EVAL:
            a[...] = x
        else:
            dropout_forward(x, a, float(p1), net.seed, step, i)
    elif op == LAYER_NORM:
        layer_norm_forward(x, _vec(params, prog[i, W_OFF], n), _vec(params, prog[i, B_OFF], n), p1, a, z,
                           _rstd(work, i, m))
    elif op == BATCH_NORM:
        tracked = prog[i, S_OFF] >= 0
        use_batch = mode != EVAL or not tracked
        batch_norm_forward(x, _vec(params, prog[i, W_OFF], n), _vec(params, prog[i, B_OFF], n), p1, p2,
                           _vec(net.state, prog[i, S_OFF], n), _vec(net.state, prog[i, S_OFF] + n, n),
                           use_batch, use_batch and tracked and mode == TRAIN_UPDATE, a, z, _rstd(work, i, n))
    elif op == FORK:
        fork_forward(x, a)
    else:
        add_forward(x, _block(work.abuf, work.buf_off, int(prog[i, REF]), m, n), a)
    return a


def _op_backward(params, grads, net, x, work, i, m, mode, step):
    """Backward of op i (see the compiled twin)."""
    prog = net.program
    op, n, n_in = int(prog[i, OP]), int(prog[i, N_OUT]), int(prog[i, N_IN])
    g = _block(work.gbuf, work.buf_off, i, m, n)
    z = _block(work.zbuf, work.buf_off, i, m, n)
    need = i > 0
    g_in = _block(work.gbuf, work.buf_off, i - 1, m, n_in) if need else x
    p1, p2 = net.op_params[i]
    if op == DENSE:
        dense_layer_backward(x, _weights(params, prog, i), z, g, prog[i, ACT], p1, p2, np.empty_like(g), g_in,
                             _weights(grads, prog, i), _vec(grads, prog[i, B_OFF], n), need, net.cores)
    elif op == ACTIVATION:
        if need:
            activation_layer_backward(x, g, g_in, prog[i, ACT], p1, p2)
    elif op == DROPOUT:
        if need:
            if mode == EVAL:
                g_in[...] = g
            else:
                dropout_backward(g, g_in, float(p1), net.seed, step, i)
    elif op == LAYER_NORM:
        layer_norm_backward(g, z, _rstd(work, i, m), _vec(params, prog[i, W_OFF], n), g_in,
                            _vec(grads, prog[i, W_OFF], n), _vec(grads, prog[i, B_OFF], n), need)
    elif op == BATCH_NORM:
        used_batch = mode != EVAL or prog[i, S_OFF] < 0
        batch_norm_backward(g, z, _rstd(work, i, n), _vec(params, prog[i, W_OFF], n), used_batch, g_in,
                            _vec(grads, prog[i, W_OFF], n), _vec(grads, prog[i, B_OFF], n), need)
    elif op == FORK:
        if need:
            fork_backward(g, _block(work.zbuf, work.buf_off, int(prog[i, REF]), m, n), g_in)
    else:
        add_backward(g, g_in, z)


def forward(params, net, x, work, mode, step):
    """The last op's output for x (m, n_in) (a view of work.abuf)."""
    inp = x
    for i in range(net.program.shape[0]):
        inp = _op_forward(params, net, inp, work, i, x.shape[0], mode, step)
    return inp


def _input_of(net, x, work, i, m):
    return x if i == 0 else _block(work.abuf, work.buf_off, i - 1, m, int(net.program[i, N_IN]))


def _output_loss(out, yf, yl, use_labels, wb, loss_code, loss_param):
    """(loss, d loss / d out); with weights ``wb`` (m,) (not empty) the weighted mean
    sum_r w_r l_r / sum_r w_r of the rows' mean losses l_r (0 and a zero gradient when the
    weights sum to 0)."""
    if wb.size == 0:
        return _mean_loss(out, yf, yl, use_labels, loss_code, loss_param)
    total = float(np.sum(wb, dtype=np.float64))
    grad = np.zeros_like(out)
    if total == 0.0:
        return 0.0, grad
    loss = 0.0
    for r in range(out.shape[0]):
        row = slice(r, r + 1)
        l_r, g_r = _mean_loss(out[row], yf if use_labels else yf[row], yl[row] if use_labels else yl,
                              use_labels, loss_code, loss_param)
        loss += float(wb[r]) * l_r
        grad[r] = g_r[0] * (float(wb[r]) / total)
    return loss / total, grad


def _mean_loss(out, yf, yl, use_labels, loss_code, loss_param):
    if loss_code == SOFTMAX_CE:
        return losses_ref.softmax_cross_entropy(out, yl if use_labels else yf)
    if loss_code == MSE:
        return losses_ref.mse(out, yf)
    if loss_code == MAE:
        return losses_ref.mae(out, yf)
    if loss_code == HUBER:
        return losses_ref.huber(out, yf, delta=float(loss_param))
    return losses_ref.binary_cross_entropy_with_logits(out, yf)


def penalty(params, grads, net, l1, l2, with_grad):
    """l1 * sum|W| + l2 * sum W^2 over every Dense op's W; adds l1 sign(W) + 2 l2 W to grads when asked."""
    total = 0.0
    prog = net.program
    for i in range(prog.shape[0]):
        if prog[i, OP] != DENSE:
            continue
        W = _weights(params, prog, i)
        total += l1 * float(np.sum(np.abs(W), dtype=np.float64)) + l2 * float(np.sum(W.astype(np.float64) ** 2))
        if with_grad and (l1 or l2):
            _weights(grads, prog, i)[...] += l1 * np.sign(W) + 2 * l2 * W
    return total


def proximal_l1(params, net, threshold):
    """Soft-thresholding of every Dense op's W: w <- sign(w) max(|w| - threshold, 0); NaN stays NaN."""
    prog = net.program
    for i in range(prog.shape[0]):
        if prog[i, OP] == DENSE:
            W = _weights(params, prog, i)
            shrunk = np.abs(W) - W.dtype.type(threshold)
            W[...] = np.where(shrunk > 0, np.sign(W) * shrunk, np.where(np.isnan(W), W, 0))


def loss_and_grad_batch(params, grads, net, x, yf, yl, use_labels, wb, objective, work, mode, step):
    """Batch loss (mean, weighted by ``wb`` unless empty, + penalty); the gradient is written into ``grads``."""
    m = x.shape[0]
    n_ops = net.program.shape[0]
    out = forward(params, net, x, work, mode, step)
    loss, grad_out = _output_loss(out, yf, yl, use_labels, wb, objective.code, objective.param)
    _block(work.gbuf, work.buf_off, n_ops - 1, m, out.shape[1])[...] = grad_out
    for i in range(n_ops - 1, -1, -1):
        _op_backward(params, grads, net, _input_of(net, x, work, i, m), work, i, m, mode, step)
    if objective.l1_prox:  # l1 in the loss, not in the gradient: its proximal step follows the update
        return (loss + penalty(params, grads, net, 0.0, objective.l2, True)
                + penalty(params, grads, net, objective.l1, 0.0, False))
    return loss + penalty(params, grads, net, objective.l1, objective.l2, True)


def count_correct(out, yf, yl, use_labels, loss_code):
    """Correct argmax predictions (softmax CE) or sign agreements (BCE on logits); 0 otherwise.
    A NaN output is never correct."""
    if loss_code == SOFTMAX_CE:
        target = yl if use_labels else np.argmax(yf, axis=1)
        valid = ~np.any(np.isnan(out), axis=1)
        return int(np.sum((np.argmax(out, axis=1) == target) & valid))
    if loss_code == BCE_LOGITS:
        return int(np.sum(((out > 0) == (yf > 0.5)) & ~np.isnan(out)))
    return 0


def dead_fraction(z):
    """Fraction of the columns of z (m, n) that are <= 0 on every row (a NaN is not <= 0)."""
    return float(np.mean(np.all(z <= 0, axis=0)))


def train_epoch(params, grads, net, data, objective, update, work, record, perm, batch_size,
                first_batch, last_batch):
    """Mini-batches first_batch .. last_batch - 1, as the compiled twin (see its docstring)."""
    status = record.status
    status[0] = OK
    status[1:3] = 0  # updates applied so far; the parameters are always in params here
    if not np.all(np.isfinite(params)):
        status[0] = FAIL_PARAMS
        return first_batch
    X, yf, yl, use_labels, sw = data
    for i in range(first_batch, last_batch):
        rows = perm[i * batch_size:(i + 1) * batch_size]
        m = rows.size
        step = update.step0 + i - first_batch + 1
        xb = np.ascontiguousarray(X[rows])
        yfb, ylb = (yf, yl[rows]) if use_labels else (yf[rows], yl)  # the unused one is a dummy
        wb = sw[rows] if sw.size else sw
        loss = loss_and_grad_batch(params, grads, net, xb, yfb, ylb, use_labels, wb, objective, work,
                                   TRAIN_UPDATE, step)
        record.loss[i] = loss
        if update.clip_norm > 0:
            grads_finite = np.isfinite(clip_to_max_norm(grads, update.clip_norm))
        else:
            grads_finite = np.all(np.isfinite(grads))
        if not (np.isfinite(loss) and grads_finite and np.all(np.isfinite(net.state))):
            status[0] = FAIL_LOSS
            return i
        before = params.copy()
        update.hyper[LR] = update.lrs[i]
        with np.errstate(over="ignore", invalid="ignore"):
            optimizer_step(update.code, params, grads, update.state, update.hyper, step)
        if objective.l1_prox and objective.l1 > 0:
            proximal_l1(params, net, params.dtype.type(update.lrs[i] * objective.l1))
        if not np.all(np.isfinite(params)):
            params[...] = before
            status[0] = FAIL_UPDATE
            return i
        n_ops = net.program.shape[0]
        out = _block(work.abuf, work.buf_off, n_ops - 1, m, int(net.program[-1, N_OUT]))
        record.correct[i] = count_correct(out, yfb, ylb, use_labels, objective.code)
        if record.diagnostics:
            _diagnostics(before, params, grads, net, xb, work, m, record.diag)
        status[1] = i - first_batch + 1
    return last_batch


def _diagnostics(before, params, grads, net, x, work, m, diag):
    prog = net.program
    for i in range(prog.shape[0]):
        lo, hi = int(prog[i, P_LO]), int(prog[i, P_HI])
        diag[i, 0] += np.linalg.norm(grads[lo:hi].astype(np.float64))
        p_norm = np.linalg.norm(before[lo:hi].astype(np.float64))
        diag[i, 1] += np.linalg.norm((params[lo:hi] - before[lo:hi]).astype(np.float64)) / p_norm if p_norm > 0 else 0.0
        if prog[i, ACT] == RELU and prog[i, OP] == DENSE:
            diag[i, 2] += dead_fraction(_block(work.zbuf, work.buf_off, i, m, int(prog[i, N_OUT])))
        elif prog[i, ACT] == RELU and prog[i, OP] == ACTIVATION:
            diag[i, 2] += dead_fraction(_input_of(net, x, work, i, m))


def evaluate_batches(params, net, data, objective, batch_size, work, out_sums):
    """out_sums = (sum of batch mean loss * rows, correct count), in batches of batch_size in
    evaluation mode; with weights ``data.sw`` (not empty) the batch's weighted mean * its weight sum."""
    X, yf, yl, use_labels, sw = data
    out_sums[:] = 0.0
    for lo in range(0, X.shape[0], batch_size):
        sl = slice(lo, lo + batch_size)
        out = forward(params, net, X[sl], work, EVAL, 0)
        wb = sw[sl] if sw.size else sw
        loss, _ = _output_loss(out, yf[sl], yl[sl], use_labels, wb, objective.code, objective.param)
        out_sums[0] += loss * (float(np.sum(wb, dtype=np.float64)) if sw.size else out.shape[0])
        out_sums[1] += count_correct(out, yf[sl], yl[sl], use_labels, objective.code)


def predict_batches(params, net, X, batch_size, work, out, post, mode, step):
    """out = the network's last op's output for X in ``mode``, through ``post`` (IDENTITY, SOFTMAX, SIGMOID)."""
    for lo in range(0, X.shape[0], batch_size):
        a = forward(params, net, X[lo:lo + batch_size], work, mode, step)
        if post == SOFTMAX:
            a = activations_ref.softmax(a)
        elif post == SIGMOID:
            a = activations_ref.sigmoid(a)
        out[lo:lo + batch_size] = a

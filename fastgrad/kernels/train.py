"""The compiled training path of a :class:`~fastgrad.Sequential`: an interpreter of its program.

The model is a program of ops (:mod:`fastgrad.kernels.program`: the row layout, the op
kinds, the work buffers and the named tuples these kernels take). ``forward`` runs the
ops in order, ``loss_and_grad_batch`` then runs their backward passes in reverse. Each op
kind's forward and backward (kernels/ops.py), activation, loss and optimizer is a compiled
function of its own, called by address (kernels/slots.py), compiled once per dtype when a
model first uses it and cached on its own, so that this loop's module holds the loop alone.

Everything a model holds is flat (see DESIGN.md): ``params``/``grads`` are 1-D buffers
addressed by the program's offsets; ``state`` holds non-trainable values (BatchNorm1d's
running statistics), which no optimizer, penalty or clipping touches.

* Targets: float targets ``yf`` (n, k) for regression/BCE/probabilities, or int64 labels
  ``yl`` (n,) for softmax cross-entropy (``use_labels``).
* Sample weights ``sw`` (n,) in the params dtype, or an EMPTY array for the unweighted
  path (one branch per batch, no per-element work); ``wbuf`` holds a gathered batch's.
  A weighted batch's loss is ``sum_r w_r l_r / sum_r w_r`` with ``l_r`` row r's loss
  averaged over its k outputs (one row for softmax cross-entropy) -- PyTorch's
  class-weight convention (``torch.nn.functional.cross_entropy(weight=...)``, mean
  reduction); a batch whose weights sum to 0 has loss 0 and gradient 0 (penalty aside).
* Modes (``program.EVAL``, ``TRAIN``, ``TRAIN_UPDATE``): Dropout is active and
  BatchNorm1d uses batch statistics in training; only ``TRAIN_UPDATE`` (fit and
  train_step) also updates the running statistics. Dropout's mask for op ``i`` at
  optimizer step ``step`` is keyed on (``net.seed``, step, i, element): the same in
  every run, process and thread count.

``train_epoch`` runs forward, fused loss + gradient, backward, penalties, clipping and
the optimizer update for a range of mini-batches in one call. The plain-NumPy twin of
every function here, with the same name and signature, is :mod:`fastgrad.reference.train`.

Compile time: the op and loss passes here are serial helpers, not the parallel kernels:
Numba's parallel lowering of those kernels was most of the cold-cache time of a first
``fit``. The Dense products (kernels/gemm.py) and the optimizer pass use Numba's threads.
"""
import numpy as np

from fastgrad._jit import inline, kernel, like, matrix_view, spliced
from fastgrad.kernels.activations import RELU
from fastgrad.kernels.losses import BCE, BCE_LOGITS, HUBER, MAE, MSE, ce_rows, loss_range
from fastgrad.kernels.optim import LR
from fastgrad.kernels.program import (ACT, ACTIVATION, DENSE, EVAL, K_BWD, K_FWD, N_IN, N_OUT, OP, P_HI, P_LO,
                                      TRAIN_UPDATE, W_OFF)
from fastgrad.kernels.ops import block
from fastgrad.kernels.slots import (call_act_forward, call_clip, call_diagnostics, call_op_backward, call_op_forward,
                                    call_optimizer_step, call_output_loss, call_penalty, call_proximal)
from fastgrad.kernels.util import copy_1d, copy_2d

SOFTMAX_CE = 10  # loss code beside kernels.losses' MSE, MAE, HUBER, BCE_LOGITS
N_DIAG = 3       # per op: gradient L2 norm, update-to-weight ratio, dead-ReLU fraction
# train_epoch's status[0]: why the batch it returns failed.
OK, FAIL_LOSS, FAIL_UPDATE, FAIL_PARAMS = 0, 1, 2, 3


@spliced
def _op_forward(params, net, x, work, i, m, mode, step):
    """Op i on its input x (m, N_IN); returns its output block."""
    call_op_forward(net.kernels[i, K_FWD], (params, net, x, work, i, m, mode, step))
    return block(work.abuf, work.buf_off, i, m, net.program[i, N_OUT])


@spliced
def forward(params, net, x, work, mode, step):
    """Run x (m, n_in) through every op; returns the last op's output (a view of abuf)."""
    m = x.shape[0]
    inp = x
    for i in range(net.program.shape[0]):
        inp = _op_forward(params, net, inp, work, i, m, mode, step)
    return inp


@spliced
def _input_of(net, x, work, i, m):
    """The input of op i: x for op 0, else op i-1's output block."""
    if i == 0:
        return x
    return block(work.abuf, work.buf_off, i - 1, m, net.program[i, N_IN])


@spliced
def _loss_rows(out, yf, yl, use_labels, grad_out, loss_code, loss_param, scale, lo, hi):
    """Sum of the losses of rows ``lo .. hi - 1`` of ``out`` (per entry, or per row for softmax
    cross-entropy); writes ``scale * d loss / d out`` for those rows into grad_out. Every loss
    is compiled once, here, for the weighted and the unweighted batch alike."""
    if loss_code == SOFTMAX_CE:
        return ce_rows(out, yl, yf, use_labels, grad_out, scale, like(out[0, 0], 0.0), lo, hi)
    k = out.shape[1]
    return loss_range(loss_code, out.reshape(-1)[lo * k:hi * k], yf.reshape(-1)[lo * k:hi * k],
                      grad_out.reshape(-1)[lo * k:hi * k], scale, loss_param)


@spliced
def _weighted_output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
    """sum_r w_r l_r / sum_r w_r (l_r: row r's mean loss over its outputs, one row for softmax
    cross-entropy); grad_out row r = w_r / (sum w * k) * d loss_r / d out_r, so that with unit
    weights each gradient entry is bit-identical to the unweighted one (same scale, same term)."""
    m, k = out.shape
    total_w = 0.0
    for r in range(m):
        total_w += wb[r]
    per = 1 if loss_code == SOFTMAX_CE else k
    if total_w == 0.0:
        grad_out[:, :] = like(out[0, 0], 0.0)
        return 0.0
    inv = 1.0 / (total_w * per)
    acc = 0.0
    for r in range(m):
        s = like(out[0, 0], wb[r] * inv)
        acc += wb[r] * _loss_rows(out, yf, yl, use_labels, grad_out, loss_code, loss_param, s, r, r + 1)
    return acc * like(out[0, 0], inv)


@kernel
def _output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
    """Mean loss of the batch; writes d loss / d out into grad_out. With weights ``wb`` (m,)
    (not empty) the weighted mean of the rows' losses (see the module doc)."""
    m, k = out.shape
    if wb.size > 0:
        return _weighted_output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param)
    per = m if loss_code == SOFTMAX_CE else m * k
    scale = like(out[0, 0], 1.0 / per)
    return _loss_rows(out, yf, yl, use_labels, grad_out, loss_code, loss_param, scale, 0, m) * scale


# One compiled batch loss per built-in loss (the OUTPUT_LOSS slot, kernels/slots.py):
# _output_loss's body with the code fixed, so a model compiles its own loss only (softmax
# cross-entropy's rows, or the elementwise losses' loop).
_output_loss_body = spliced(_output_loss.py_func)


def _output_loss_for(code):
    def output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
        return _output_loss_body(out, yf, yl, use_labels, wb, grad_out, code, loss_param)
    return kernel(output_loss)


OUTPUT_LOSS = {code: _output_loss_for(code) for code in (MSE, MAE, HUBER, BCE, BCE_LOGITS, SOFTMAX_CE)}
"""Loss code -> its compiled batch loss (the OUTPUT_LOSS slot; ``loss_code`` is ignored)."""


@spliced
def _weight_span(prog, i):
    """[lo, hi): where op i's W lies in ``params`` if it is a Dense op, else an empty span."""
    if prog[i, OP] != DENSE:
        return 0, 0
    return prog[i, W_OFF], prog[i, W_OFF] + prog[i, N_IN] * prog[i, N_OUT]


@kernel
def penalty(params, grads, net, l1, l2, with_grad):
    """l1 * sum|W| + l2 * sum W^2 over every Dense op's W (not biases, not norms' weights);
    adds its gradient when asked. The loop calls it by address (slots.PENALTY), only when
    l1 or l2 is not 0."""
    total = 0.0
    if l1 == 0 and l2 == 0:
        return total
    prog = net.program
    for i in range(prog.shape[0]):
        lo, hi = _weight_span(prog, i)
        for j in range(lo, hi):
            w = params[j]
            total += l1 * np.abs(w) + l2 * w * w
            if with_grad:
                grads[j] += l1 * np.sign(w) + like(w, 2.0) * l2 * w
    return total


@kernel
def proximal_l1(params, net, threshold):
    """Soft-thresholding of every Dense op's W (the proximal operator of threshold * sum|W|):
    w <- sign(w) * max(|w| - threshold, 0). Entries within ``threshold`` of 0 become exactly 0;
    NaN stays NaN."""
    prog = net.program
    zero = like(threshold, 0.0)
    for i in range(prog.shape[0]):
        lo, hi = _weight_span(prog, i)
        for j in range(lo, hi):
            w = params[j]
            if w > threshold:
                params[j] = w - threshold
            elif w < -threshold:
                params[j] = w + threshold
            elif w == w:
                params[j] = zero


@kernel
def loss_and_grad_batch(params, grads, net, x, yf, yl, use_labels, wb, objective, work, mode, step):
    """Loss of one batch (mean over the batch, weighted by ``wb`` unless it is empty, plus the
    penalty) and its gradient into ``grads``, in ``mode`` at optimizer step ``step``
    (Dropout's key). The entry point from Python; :func:`train_epoch` splices the same body."""
    return _loss_and_grad(params, grads, net, x, yf, yl, use_labels, wb, objective, work, mode, step)


@spliced
def _loss_and_grad(params, grads, net, x, yf, yl, use_labels, wb, objective, work, mode, step):
    """The body of :func:`loss_and_grad_batch`."""
    m = x.shape[0]
    n_ops = net.program.shape[0]
    out = forward(params, net, x, work, mode, step)
    loss = call_output_loss(objective.loss_fn, (out, yf, yl, use_labels, wb,
                                                block(work.gbuf, work.buf_off, n_ops - 1, m, out.shape[1]),
                                                objective.code, objective.param))
    for i in range(n_ops - 1, -1, -1):
        x_i = _input_of(net, x, work, i, m)
        call_op_backward(net.kernels[i, K_BWD], (params, grads, net, x_i, work, i, m, mode, step))
    if objective.l1 == 0 and objective.l2 == 0:  # (by address: compiled only for a model with a penalty)
        return loss
    if objective.l1_prox:  # l1 is in the loss but not in the gradient: its proximal step follows the update
        return (loss + call_penalty(objective.penalty_fn, (params, grads, net, 0.0, objective.l2, True))
                + call_penalty(objective.penalty_fn, (params, grads, net, objective.l1, 0.0, False)))
    return loss + call_penalty(objective.penalty_fn, (params, grads, net, objective.l1, objective.l2, True))


@kernel
def count_correct(out, yf, yl, use_labels, loss_code):
    """Correct predictions in a batch: rows whose argmax hits the class (softmax CE), or
    entries whose sign agrees with target > 0.5 (BCE on logits); 0 for regression.
    A NaN output is never correct (a row holding one has no argmax)."""
    m, k = out.shape
    correct = 0
    if loss_code == SOFTMAX_CE:
        for r in range(m):
            best = 0
            nan = out[r, 0] != out[r, 0]
            for j in range(1, k):
                v = out[r, j]
                nan = nan or v != v
                if v > out[r, best]:
                    best = j
            if nan:
                continue
            if use_labels:
                hit = yl[r] == best
            else:
                target = 0
                for j in range(1, k):
                    if yf[r, j] > yf[r, target]:
                        target = j
                hit = target == best
            correct += 1 if hit else 0
    elif loss_code == BCE_LOGITS:
        for r in range(m):
            for j in range(k):
                v = out[r, j]
                correct += 1 if v == v and (v > 0) == (yf[r, j] > 0.5) else 0
    return correct


@kernel
def dead_fraction(z):
    """Fraction of the columns (units) of pre-activations z (m, n) that are <= 0 on every row:
    ReLU units that pass no gradient. A NaN is not <= 0, so a unit with a NaN is not dead."""
    m, n = z.shape
    dead = 0
    for j in range(n):
        alive = False
        for r in range(m):
            if not z[r, j] <= 0:
                alive = True
                break
        dead += 0 if alive else 1
    return dead / n


@inline
def _all_finite(x):
    """True when every entry of x is finite: x - x is 0 for finite x and NaN for inf and NaN
    (no fast-math flag here lets LLVM fold it). The flags are or-ed into a bool, an any-of
    reduction that vectorizes in x's own lane width (a count in int64 lanes took twice the
    time: 40 against 21 us on 235,146 float32 parameters)."""
    bad = False
    for i in range(x.size):
        d = x[i] - x[i]
        bad |= d != d
    return not bad


@inline
def _gather(X, yf, yl, use_labels, sw, perm, lo, m, xbuf, yfbuf, ylbuf, wbuf):
    n_in = X.shape[1]
    k = yf.shape[1]
    xb = matrix_view(xbuf, 0, m, n_in)
    yfb = matrix_view(yfbuf, 0, m, k)
    ylb = ylbuf[:m]
    for r in range(m):  # rows by index, not as views X[src] (each took and dropped a reference count)
        src = perm[lo + r]
        for j in range(n_in):
            xb[r, j] = X[src, j]
        if use_labels:
            ylb[r] = yl[src]
        else:
            for j in range(k):
                yfb[r, j] = yf[src, j]
    if sw.size == 0:
        return xb, yfb, ylb, wbuf[:0]
    wb = wbuf[:m]
    for r in range(m):
        wb[r] = sw[perm[lo + r]]
    return xb, yfb, ylb, wb


@kernel
def _record_diagnostics(params, grads, prev, net, x, work, m, diag):
    """Per op: gradient norm and update ratio over its parameters; the dead-ReLU fraction of
    a Dense op with ReLU (its pre-activations) or of a ReLU Activation op (its input)."""
    prog = net.program
    for i in range(prog.shape[0]):
        lo = prog[i, P_LO]
        hi = prog[i, P_HI]
        g2 = 0.0
        d2 = 0.0
        p2 = 0.0
        for j in range(lo, hi):
            g2 += grads[j] * grads[j]
            d2 += (params[j] - prev[j]) * (params[j] - prev[j])
            p2 += prev[j] * prev[j]
        diag[i, 0] += np.sqrt(g2)
        diag[i, 1] += np.sqrt(d2) / np.sqrt(p2) if p2 > 0 else 0.0
        if prog[i, ACT] == RELU and prog[i, OP] == DENSE:
            diag[i, 2] += dead_fraction(block(work.zbuf, work.buf_off, i, m, prog[i, N_OUT]))
        elif prog[i, ACT] == RELU and prog[i, OP] == ACTIVATION:
            diag[i, 2] += dead_fraction(_input_of(net, x, work, i, m))


@kernel
def train_epoch(params, grads, net, data, objective, update, work, record, perm, batch_size,
                first_batch, last_batch):
    """Train on mini-batches ``first_batch .. last_batch - 1`` of the permutation ``perm``.

    Batch i takes rows ``perm[i*batch_size : (i+1)*batch_size]`` of ``data``, uses learning
    rate ``update.lrs[i]`` and optimizer step ``update.step0 + i - first_batch + 1`` (also
    Dropout's key), in mode ``TRAIN_UPDATE``; its loss and correct count go to
    ``record.loss[i]``/``record.correct[i]``. ``update.clip_norm > 0`` rescales the gradient
    to that L2 norm (PyTorch's ``max_norm / (norm + 1e-6)``; grad_utils.clip_to_max_norm) and
    a gradient whose norm is not finite stops the call; without, a non-finite gradient entry
    does. With ``record.diagnostics``,
    per-op sums of (grad norm, update ratio, dead-ReLU fraction) are added to ``record.diag``.
    With ``objective.l1_prox``, the gradient leaves out l1's subgradient and each update is
    followed by :func:`proximal_l1` with threshold ``update.lrs[i] * objective.l1``.

    ``work.spare`` (n_params,) is the second parameter buffer: each update reads the
    current parameters from one buffer and writes the new ones into the other
    (``optimizer_step_into``), which then becomes current after a read-only check that
    they are finite; the call ends with the current parameters in ``params``. So the
    parameters before an update are never overwritten by it, and no per-step snapshot
    copy is made. Returns the index of the first batch that failed, or ``last_batch``
    when all went through; ``record.status[0]`` says why: ``FAIL_LOSS`` (the loss,
    gradient or running statistics were not finite: no update), ``FAIL_UPDATE`` (the update made a parameter
    non-finite: the parameters before it are kept), ``FAIL_PARAMS`` (the parameters were
    not finite before the batch). The optimizer's state and BatchNorm1d's running
    statistics are not restored here (fastgrad.training.train_range replays the batches
    before the failure to give the running statistics back). ``record.status[1:3]`` follow each update (see
    :class:`~fastgrad.kernels.program.Record`).
    """
    X = data.X
    n = X.shape[0]
    status = record.status
    status[0] = OK
    status[1] = 0
    status[2] = 0
    if not _all_finite(params):
        status[0] = FAIL_PARAMS
        return first_batch
    live = params        # the current parameters
    other = work.spare   # where the next update goes
    in_spare = False     # whether live is spare
    stop = last_batch
    hyper = update.hyper
    for i in range(first_batch, last_batch):
        lo = i * batch_size
        m = min(n, lo + batch_size) - lo
        step = update.step0 + i - first_batch + 1
        xb, yfb, ylb, wb = _gather(X, data.yf, data.yl, data.use_labels, data.sw, perm, lo, m, work.xbuf,
                                   work.yfbuf, work.ylbuf, work.wbuf)
        loss = _loss_and_grad(live, grads, net, xb, yfb, ylb, data.use_labels, wb, objective, work,
                                   TRAIN_UPDATE, step)
        record.loss[i] = loss
        if update.clip_norm > 0:  # (by address: compiled only for a model that clips)
            grads_finite = np.isfinite(call_clip(update.clip_fn, (grads, update.clip_norm)))
        else:
            grads_finite = _all_finite(grads)
        if not (np.isfinite(loss) and grads_finite and _all_finite(net.state)):
            status[0] = FAIL_LOSS  # (a running statistic that overflowed counts: predict would use it)
            stop = i
            break
        hyper[LR] = update.lrs[i]
        call_optimizer_step(update.step_fn, (live, grads, update.state, hyper, step, other))
        if objective.l1_prox and objective.l1 > 0:
            call_proximal(objective.prox_fn, (other, net, like(params[0], update.lrs[i] * objective.l1)))
        if not _all_finite(other):
            status[0] = FAIL_UPDATE
            stop = i
            break
        n_ops = net.program.shape[0]
        out = block(work.abuf, work.buf_off, n_ops - 1, m, net.program[n_ops - 1, N_OUT])
        record.correct[i] = count_correct(out, yfb, ylb, data.use_labels, objective.code)
        if record.diagnostics and record.diag_fn != 0:  # (by address: compiled only when asked for)
            call_diagnostics(record.diag_fn, (other, grads, live, net, xb, work, m, record.diag))
        live, other = other, live
        in_spare = not in_spare
        status[1] = i - first_batch + 1
        status[2] = 1 if in_spare else 0
    if in_spare:  # after an odd number of updates: one copy per call, not per step
        copy_1d(live, params)
    return stop


@kernel
def evaluate_batches(params, net, data, objective, batch_size, work, out_sums):
    """Sum over batches of (batch mean loss * rows) into out_sums[0] and correct counts into
    out_sums[1], in batches of ``batch_size`` in order, in evaluation mode (no penalty, no
    gradient kept). With sample weights ``data.sw`` (n,) (not empty): (weighted batch mean *
    the batch's weight sum), so that out_sums[0] / sum(sw) is the weighted mean loss;
    correct counts stay unweighted."""
    X, yf, yl, sw = data.X, data.yf, data.yl, data.sw
    n, n_in = X.shape
    k = yf.shape[1]
    n_ops = net.program.shape[0]
    out_sums[0] = 0.0
    out_sums[1] = 0.0
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        m = hi - lo
        out = forward(params, net, matrix_view(X, lo * n_in, m, n_in), work, EVAL, 0)
        yfb = matrix_view(yf, lo * k, m, k) if yf.shape[0] == n else yf  # (labels: yf is a dummy)
        wb = sw[lo:hi] if sw.size > 0 else sw
        loss = call_output_loss(objective.loss_fn, (out, yfb, yl[lo:hi], data.use_labels, wb,
                                                    block(work.gbuf, work.buf_off, n_ops - 1, m, out.shape[1]),
                                                    objective.code, objective.param))
        if sw.size > 0:
            w_sum = 0.0
            for r in range(m):
                w_sum += wb[r]
            out_sums[0] += loss * w_sum
        else:
            out_sums[0] += loss * m
        out_sums[1] += count_correct(out, yfb, yl[lo:hi], data.use_labels, objective.code)


@kernel
def predict_batches(params, net, X, batch_size, work, out, post, mode, step):
    """out (n, k) = the network's last op's output for X, computed in batches in ``mode``
    (EVAL for predict; the model's mode for forward), then passed through ``post``: the
    address of an activation's compiled forward (softmax or sigmoid, kernels/slots.py
    ``ACT_FORWARD``), or 0 for none (the NumPy twin takes the activation's code)."""
    n = X.shape[0]
    zero = like(out[0, 0], 0.0)
    n_in = X.shape[1]
    k = out.shape[1]
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        a = forward(params, net, matrix_view(X, lo * n_in, hi - lo, n_in), work, mode, step)
        rows = matrix_view(out, lo * k, hi - lo, k)
        if post != 0:
            call_act_forward(post, (a, rows, zero, zero))
        else:
            copy_2d(a, rows)

"""The compiled training path of a Sequential network of dense layers.

Everything a model holds is flat (see DESIGN.md):

* ``params``/``grads``: 1-D buffers; ``layout`` (L, 5) int64 rows
  ``(w_off, b_off, n_in, n_out, act_code)``: layer l's W is
  ``params[w_off : w_off + n_in*n_out].reshape(n_in, n_out)`` and b ``params[b_off : b_off + n_out]``;
  ``act_params`` (L, 2) holds each activation's (p1, p2) in the params dtype.
* Work buffers ``zbuf`` (pre-activations), ``abuf`` (activations), ``gbuf`` (d loss / d a)
  are flat, sized for the largest batch; layer l's block starts at ``buf_off[l]``;
  ``delta`` is scratch for one layer's d loss / d z. ``xbuf``/``yfbuf``/``ylbuf`` hold a
  gathered batch.
* Targets: float targets ``yf`` (n, k) for regression/BCE/probabilities, or int64 labels
  ``yl`` (n,) for softmax cross-entropy (``use_labels``).
* Sample weights ``sw`` (n,) in the params dtype, or an EMPTY array for the unweighted
  path (one branch per batch, no per-element work); ``wbuf`` holds a gathered batch's.
  A weighted batch's loss is ``sum_r w_r l_r / sum_r w_r`` with ``l_r`` row r's loss
  averaged over its k outputs (one row for softmax cross-entropy) -- PyTorch's
  class-weight convention (``torch.nn.functional.cross_entropy(weight=...)``, mean
  reduction); a batch whose weights sum to 0 has loss 0 and gradient 0 (penalty aside).

``train_epoch`` runs forward, fused loss + gradient, backward, penalties, clipping and
the optimizer update for a range of mini-batches in one call. The plain-NumPy twin of
every function here, with the same name and signature, is :mod:`fastgrad.reference.train`.

Compile time: the model's compiled calls run with one Numba thread (``blas_phase``), so
the layer and loss passes here are the serial range helpers of the activation, softmax
and loss kernels, each lowered once in a function of its own (``_layer_forward``,
``_layer_backward``, ``_output_loss``), not the parallel kernels: Numba's parallel
lowering of those kernels (each with every activation or loss inlined twice) was most of
the cold-cache time of a first ``fit``.
"""
import numpy as np

from fastgrad._jit import inline, kernel, like
from fastgrad.kernels.activations import (IDENTITY, LOG_SOFTMAX, RELU, SIGMOID, SOFTMAX, backward_range,
                                          forward_range)
from fastgrad.kernels.dense import _bias_act_rows, column_sums
from fastgrad.kernels.grad_utils import grad_norm, scale_inplace
from fastgrad.kernels.losses import BCE_LOGITS, ce_rows, loss_range
from fastgrad.kernels.optim import LR, optimizer_step_into
from fastgrad.kernels.softmax import _backward_rows, _forward_rows

SOFTMAX_CE = 10  # loss code beside kernels.losses' MSE, MAE, HUBER, BCE_LOGITS
N_DIAG = 3       # per layer: gradient L2 norm, update-to-weight ratio, dead-ReLU fraction
# train_epoch's status[0]: why the batch it returns failed.
OK, FAIL_LOSS, FAIL_UPDATE, FAIL_PARAMS = 0, 1, 2, 3


@inline
def _weights(buf, layout, l):
    w_off, n_in, n_out = layout[l, 0], layout[l, 2], layout[l, 3]
    return buf[w_off:w_off + n_in * n_out].reshape((n_in, n_out))


@inline
def _bias(buf, layout, l):
    return buf[layout[l, 1]:layout[l, 1] + layout[l, 3]]


@inline
def _block(buf, buf_off, layout, l, m):
    n_out = layout[l, 3]
    return buf[buf_off[l]:buf_off[l] + m * n_out].reshape((m, n_out))


@inline
def _scratch(buf, m, n):
    return buf[:m * n].reshape((m, n))


@kernel
def _layer_forward(x, W, b, z, a, code, p1, p2):
    """z = x @ W + b, a = act(z) (row-wise for softmax/log_softmax); serial passes."""
    np.dot(x, W, z)
    m = z.shape[0]
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _bias_act_rows(z, b, z, IDENTITY, p1, p2, 0, m)
        _forward_rows(z, a, code == LOG_SOFTMAX, 0, m)
    else:
        _bias_act_rows(z, b, a, code, p1, p2, 0, m)


@kernel
def _layer_backward(x, W, z, grad_a, code, p1, p2, delta, grad_x, grad_W, grad_b, need_grad_x):
    """delta = grad_a * act'(z) (the row-wise Jacobian product for softmax); grad_b = column
    sums of delta; grad_W = x^T delta; grad_x = delta W^T when ``need_grad_x``."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        _backward_rows(z, grad_a, delta, code == LOG_SOFTMAX, 0, z.shape[0])
    else:
        backward_range(code, z.reshape(-1), grad_a.reshape(-1), delta.reshape(-1), p1, p2)
    column_sums(delta, grad_b)
    np.dot(x.T, delta, grad_W)
    if need_grad_x:
        np.dot(delta, W.T, grad_x)


@kernel
def forward(params, layout, act_params, x, zbuf, abuf, buf_off):
    """Run x (m, n_in) through every layer; returns the last layer's activations (a view of abuf)."""
    m = x.shape[0]
    inp = x
    for l in range(layout.shape[0]):
        z = _block(zbuf, buf_off, layout, l, m)
        a = _block(abuf, buf_off, layout, l, m)
        _layer_forward(inp, _weights(params, layout, l), _bias(params, layout, l), z, a,
                       layout[l, 4], act_params[l, 0], act_params[l, 1])
        inp = a
    return inp


@inline
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
    zero = like(out[0, 0], 0.0)
    acc = 0.0
    for r in range(m):
        s = like(out[0, 0], wb[r] * inv)
        if loss_code == SOFTMAX_CE:
            acc += wb[r] * ce_rows(out, yl, yf, use_labels, grad_out, s, zero, r, r + 1)
        else:
            acc += wb[r] * loss_range(loss_code, out[r], yf[r], grad_out[r], s, loss_param)
    return acc * like(out[0, 0], inv)


@kernel
def _output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
    """Mean loss of the batch; writes d loss / d out into grad_out. With weights ``wb`` (m,)
    (not empty) the weighted mean of the rows' losses (see the module doc)."""
    m, k = out.shape
    if wb.size > 0:
        return _weighted_output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param)
    if loss_code == SOFTMAX_CE:
        scale = like(out[0, 0], 1.0 / m)
        return ce_rows(out, yl, yf, use_labels, grad_out, scale, like(out[0, 0], 0.0), 0, m) * scale
    scale = like(out[0, 0], 1.0 / (m * k))
    return loss_range(loss_code, out.reshape(-1), yf.reshape(-1), grad_out.reshape(-1), scale, loss_param) * scale


@kernel
def penalty(params, grads, layout, l1, l2, with_grad):
    """l1 * sum|W| + l2 * sum W^2 over every layer's W (not b); adds its gradient when asked."""
    total = 0.0
    if l1 == 0 and l2 == 0:
        return total
    for l in range(layout.shape[0]):
        w_off = layout[l, 0]
        for i in range(w_off, w_off + layout[l, 2] * layout[l, 3]):
            w = params[i]
            total += l1 * np.abs(w) + l2 * w * w
            if with_grad:
                grads[i] += l1 * np.sign(w) + like(w, 2.0) * l2 * w
    return total


@kernel
def loss_and_grad_batch(params, grads, layout, act_params, x, yf, yl, use_labels, wb, loss_code,
                        loss_param, l1, l2, zbuf, abuf, gbuf, delta, buf_off):
    """Loss of one batch (mean over the batch, weighted by ``wb`` unless it is empty, plus the
    penalty) and its gradient into ``grads``."""
    m = x.shape[0]
    n_layers = layout.shape[0]
    out = forward(params, layout, act_params, x, zbuf, abuf, buf_off)
    loss = _output_loss(out, yf, yl, use_labels, wb, _block(gbuf, buf_off, layout, n_layers - 1, m),
                        loss_code, loss_param)
    for l in range(n_layers - 1, -1, -1):
        inp = x if l == 0 else _block(abuf, buf_off, layout, l - 1, m)
        grad_inp = x if l == 0 else _block(gbuf, buf_off, layout, l - 1, m)
        _layer_backward(inp, _weights(params, layout, l), _block(zbuf, buf_off, layout, l, m),
                        _block(gbuf, buf_off, layout, l, m), layout[l, 4], act_params[l, 0],
                        act_params[l, 1], _scratch(delta, m, layout[l, 3]), grad_inp,
                        _weights(grads, layout, l), _bias(grads, layout, l), l > 0)
    return loss + penalty(params, grads, layout, l1, l2, True)


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
    (no fast-math flag here lets LLVM fold it), and the count of NaNs is an integer
    reduction, which vectorizes without reassociating float sums."""
    bad = 0
    for i in range(x.size):
        d = x[i] - x[i]
        bad += d != d
    return bad == 0


@inline
def _gather(X, yf, yl, use_labels, sw, perm, lo, m, xbuf, yfbuf, ylbuf, wbuf):
    n_in = X.shape[1]
    k = yf.shape[1]
    xb = xbuf[:m * n_in].reshape((m, n_in))
    yfb = yfbuf[:m * k].reshape((m, k))
    ylb = ylbuf[:m]
    for r in range(m):
        src = perm[lo + r]
        xb[r, :] = X[src, :]
        if use_labels:
            ylb[r] = yl[src]
        else:
            yfb[r, :] = yf[src, :]
    if sw.size == 0:
        return xb, yfb, ylb, wbuf[:0]
    wb = wbuf[:m]
    for r in range(m):
        wb[r] = sw[perm[lo + r]]
    return xb, yfb, ylb, wb


@inline
def _record_diagnostics(params, grads, prev, layout, zbuf, buf_off, m, diag):
    for l in range(layout.shape[0]):
        lo = layout[l, 0]
        hi = layout[l, 1] + layout[l, 3]
        g2 = 0.0
        d2 = 0.0
        p2 = 0.0
        for i in range(lo, hi):
            g2 += grads[i] * grads[i]
            d2 += (params[i] - prev[i]) * (params[i] - prev[i])
            p2 += prev[i] * prev[i]
        diag[l, 0] += np.sqrt(g2)
        diag[l, 1] += np.sqrt(d2) / np.sqrt(p2) if p2 > 0 else 0.0
        if layout[l, 4] == RELU:
            diag[l, 2] += dead_fraction(_block(zbuf, buf_off, layout, l, m))


@kernel
def train_epoch(params, grads, layout, act_params, X, yf, yl, use_labels, sw, perm, batch_size,
                first_batch, last_batch, loss_code, loss_param, l1, l2, clip_norm, opt_code,
                opt_state, opt_hyper, lrs, step0, zbuf, abuf, gbuf, delta, xbuf, yfbuf, ylbuf,
                wbuf, buf_off, batch_loss, batch_correct, diagnostics, spare, diag, status):
    """Train on mini-batches ``first_batch .. last_batch - 1`` of the permutation ``perm``.

    Batch i takes rows ``perm[i*batch_size : (i+1)*batch_size]``, uses learning rate
    ``lrs[i]`` and optimizer step ``step0 + i - first_batch + 1``; its loss and correct
    count go to ``batch_loss[i]``/``batch_correct[i]``. ``sw``: sample weights (n,), gathered
    with the rows into ``wbuf``, or empty for the unweighted loss (see the module doc). ``clip_norm > 0`` rescales the
    gradient to that L2 norm (PyTorch's ``max_norm / (norm + 1e-6)``). With
    ``diagnostics``, per-layer sums of (grad norm, update ratio, dead-ReLU fraction) are
    added to ``diag`` (L, 3).

    ``spare`` (n_params,) is the second parameter buffer: each update reads the current
    parameters from one buffer and writes the new ones into the other
    (``optimizer_step_into``), which then becomes current after a read-only check that
    they are finite; the call ends with the current parameters in ``params``. So the
    parameters before an update are never overwritten by it, and no per-step snapshot
    copy is made. Returns the index of the first batch that failed, or ``last_batch``
    when all went through; ``status[0]`` says why: ``FAIL_LOSS`` (the loss or gradient
    was not finite: no update), ``FAIL_UPDATE`` (the update made a parameter non-finite:
    the parameters before it are kept), ``FAIL_PARAMS`` (the parameters were not finite
    before the batch). The optimizer's state is not restored.
    """
    n = X.shape[0]
    status[0] = OK
    if not _all_finite(params):
        status[0] = FAIL_PARAMS
        return first_batch
    live = params        # the current parameters
    other = spare        # where the next update goes
    in_spare = False     # whether live is spare
    stop = last_batch
    for i in range(first_batch, last_batch):
        lo = i * batch_size
        m = min(n, lo + batch_size) - lo
        xb, yfb, ylb, wb = _gather(X, yf, yl, use_labels, sw, perm, lo, m, xbuf, yfbuf, ylbuf, wbuf)
        loss = loss_and_grad_batch(live, grads, layout, act_params, xb, yfb, ylb, use_labels, wb,
                                   loss_code, loss_param, l1, l2, zbuf, abuf, gbuf, delta, buf_off)
        batch_loss[i] = loss
        norm = grad_norm(grads, 2.0)
        if not (np.isfinite(loss) and np.isfinite(norm)):
            status[0] = FAIL_LOSS
            stop = i
            break
        if clip_norm > 0 and norm > clip_norm:
            scale_inplace(grads, like(params[0], clip_norm / (norm + 1e-6)))
        opt_hyper[LR] = lrs[i]
        optimizer_step_into(opt_code, live, grads, opt_state, opt_hyper, step0 + i - first_batch + 1, other)
        if not _all_finite(other):
            status[0] = FAIL_UPDATE
            stop = i
            break
        out = _block(abuf, buf_off, layout, layout.shape[0] - 1, m)
        batch_correct[i] = count_correct(out, yfb, ylb, use_labels, loss_code)
        if diagnostics:
            _record_diagnostics(other, grads, live, layout, zbuf, buf_off, m, diag)
        live, other = other, live
        in_spare = not in_spare
    if in_spare:  # after an odd number of updates: one copy per call, not per step
        params[:] = live
    return stop


@kernel
def evaluate_batches(params, layout, act_params, X, yf, yl, use_labels, sw, batch_size, loss_code,
                     loss_param, zbuf, abuf, gbuf, buf_off, out_sums):
    """Sum over batches of (batch mean loss * rows) into out_sums[0] and correct counts into
    out_sums[1], in batches of ``batch_size`` in order (no penalty, no gradient kept). With
    sample weights ``sw`` (n,) (not empty): (weighted batch mean * the batch's weight sum),
    so that out_sums[0] / sum(sw) is the weighted mean loss; correct counts stay unweighted."""
    n = X.shape[0]
    L = layout.shape[0]
    out_sums[0] = 0.0
    out_sums[1] = 0.0
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        m = hi - lo
        out = forward(params, layout, act_params, X[lo:hi], zbuf, abuf, buf_off)
        wb = sw[lo:hi] if sw.size > 0 else sw
        loss = _output_loss(out, yf[lo:hi], yl[lo:hi], use_labels, wb, _block(gbuf, buf_off, layout, L - 1, m),
                            loss_code, loss_param)
        if sw.size > 0:
            w_sum = 0.0
            for r in range(m):
                w_sum += wb[r]
            out_sums[0] += loss * w_sum
        else:
            out_sums[0] += loss * m
        out_sums[1] += count_correct(out, yf[lo:hi], yl[lo:hi], use_labels, loss_code)


@kernel
def predict_batches(params, layout, act_params, X, batch_size, zbuf, abuf, buf_off, out, post):
    """out (n, k) = the network's last-layer activations for X, computed in batches, then
    passed through ``post``: ``IDENTITY``, ``SOFTMAX`` (row-wise) or ``SIGMOID``."""
    n = X.shape[0]
    zero = like(out[0, 0], 0.0)
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        a = forward(params, layout, act_params, X[lo:hi], zbuf, abuf, buf_off)
        if post == SOFTMAX:
            _forward_rows(a, out[lo:hi], False, 0, hi - lo)
        elif post == SIGMOID:
            forward_range(SIGMOID, a.reshape(-1), out[lo:hi].reshape(-1), zero, zero)
        else:
            out[lo:hi, :] = a

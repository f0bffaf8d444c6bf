"""The training path in plain NumPy: the twin of :mod:`fastgrad.kernels.train`.

Same function names and signatures (the flat layout is described there); the work
buffers are accepted and ignored, since NumPy allocates its own temporaries. Built on
the other references (dense layer, losses, optimizer step), so ``Sequential(...,
backend="reference")`` runs the same math as the compiled path, one NumPy call at a time.
"""
import numpy as np

from fastgrad.kernels import activations as K
from fastgrad.kernels.losses import BCE_LOGITS, HUBER, MAE, MSE
from fastgrad.kernels.optim import LR
from fastgrad.kernels.train import FAIL_LOSS, FAIL_PARAMS, FAIL_UPDATE, OK, SOFTMAX_CE
from fastgrad.reference import activations as activations_ref
from fastgrad.reference import losses as losses_ref
from fastgrad.reference.dense import dense_backward, dense_forward
from fastgrad.reference.optim import optimizer_step

# Activation code -> (reference name, names of the options carried in act_params' (p1, p2)).
# The codes are the kernels' own (imported as constants only: nothing compiles).
_ACTIVATIONS = {K.IDENTITY: ("identity", ()), K.RELU: ("relu", ()), K.LEAKY_RELU: ("leaky_relu", ("alpha",)),
                K.ELU: ("elu", ("alpha",)), K.GELU: ("gelu", ()), K.GELU_TANH: ("gelu", ()),
                K.SIGMOID: ("sigmoid", ()), K.TANH: ("tanh", ()), K.SOFTPLUS: ("softplus", ("beta", "threshold")),
                K.SILU: ("silu", ()), K.SOFTMAX: ("softmax", ()), K.LOG_SOFTMAX: ("log_softmax", ())}


def _activation(layout, act_params, l):
    code = int(layout[l, 4])
    name, keys = _ACTIVATIONS[code]
    options = {key: float(act_params[l, i]) for i, key in enumerate(keys)}
    if code == K.GELU_TANH:
        options["approximate"] = "tanh"
    return name, options


def _weights(buf, layout, l):
    w_off, _, n_in, n_out, _ = (int(v) for v in layout[l])
    return buf[w_off:w_off + n_in * n_out].reshape(n_in, n_out)


def _bias(buf, layout, l):
    return buf[int(layout[l, 1]):int(layout[l, 1] + layout[l, 3])]


def _forward_cache(params, layout, act_params, x):
    inputs, zs = [], []
    a = x
    for l in range(layout.shape[0]):
        name, options = _activation(layout, act_params, l)
        inputs.append(a)
        a, z = dense_forward(a, _weights(params, layout, l), _bias(params, layout, l), name,
                             return_preactivation=True, **options)
        zs.append(z)
    return a, inputs, zs


def forward(params, layout, act_params, x, zbuf, abuf, buf_off):
    """The last layer's activations for x (m, n_in)."""
    return _forward_cache(params, layout, act_params, x)[0]


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


def penalty(params, grads, layout, l1, l2, with_grad):
    """l1 * sum|W| + l2 * sum W^2 over every W; adds l1 sign(W) + 2 l2 W to grads when asked."""
    total = 0.0
    for l in range(layout.shape[0]):
        W = _weights(params, layout, l)
        total += l1 * float(np.sum(np.abs(W), dtype=np.float64)) + l2 * float(np.sum(W.astype(np.float64) ** 2))
        if with_grad and (l1 or l2):
            _weights(grads, layout, l)[...] += l1 * np.sign(W) + 2 * l2 * W
    return total


def loss_and_grad_batch(params, grads, layout, act_params, x, yf, yl, use_labels, wb, loss_code,
                        loss_param, l1, l2, zbuf, abuf, gbuf, delta, buf_off):
    """Batch loss (mean, weighted by ``wb`` unless empty, + penalty); the gradient is written into ``grads``."""
    return _loss_and_grad(params, grads, layout, act_params, x, yf, yl, use_labels, wb, loss_code,
                          loss_param, l1, l2)[0]


def _loss_and_grad(params, grads, layout, act_params, x, yf, yl, use_labels, wb, loss_code, loss_param, l1, l2):
    out, inputs, zs = _forward_cache(params, layout, act_params, x)
    loss, grad_a = _output_loss(out, yf, yl, use_labels, wb, loss_code, loss_param)
    for l in range(layout.shape[0] - 1, -1, -1):
        name, options = _activation(layout, act_params, l)
        grad_a, grad_W, grad_b = dense_backward(inputs[l], _weights(params, layout, l), zs[l], grad_a,
                                                name, **options)
        _weights(grads, layout, l)[...] = grad_W
        _bias(grads, layout, l)[...] = grad_b
    return loss + penalty(params, grads, layout, l1, l2, True), out, zs


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


def train_epoch(params, grads, layout, act_params, X, yf, yl, use_labels, sw, perm, batch_size,
                first_batch, last_batch, loss_code, loss_param, l1, l2, clip_norm, opt_code,
                opt_state, opt_hyper, lrs, step0, zbuf, abuf, gbuf, delta, xbuf, yfbuf, ylbuf,
                wbuf, buf_off, batch_loss, batch_correct, diagnostics, spare, diag, status):
    """Mini-batches first_batch .. last_batch - 1, as the compiled twin (see its docstring)."""
    status[0] = OK
    if not np.all(np.isfinite(params)):
        status[0] = FAIL_PARAMS
        return first_batch
    for i in range(first_batch, last_batch):
        rows = perm[i * batch_size:(i + 1) * batch_size]
        xb = X[rows]
        yfb, ylb = (yf, yl[rows]) if use_labels else (yf[rows], yl)  # the unused one is a dummy
        wb = sw[rows] if sw.size else sw
        loss, out, zs = _loss_and_grad(params, grads, layout, act_params, xb, yfb, ylb, use_labels, wb,
                                       loss_code, loss_param, l1, l2)
        batch_loss[i] = loss
        norm = float(np.sqrt(np.sum(grads.astype(np.float64) ** 2)))
        if not (np.isfinite(loss) and np.isfinite(norm)):
            status[0] = FAIL_LOSS
            return i
        if clip_norm > 0 and norm > clip_norm:
            grads *= grads.dtype.type(clip_norm / (norm + 1e-6))
        before = params.copy()
        opt_hyper[LR] = lrs[i]
        with np.errstate(over="ignore", invalid="ignore"):
            optimizer_step(opt_code, params, grads, opt_state, opt_hyper, step0 + i - first_batch + 1)
        if not np.all(np.isfinite(params)):
            params[...] = before
            status[0] = FAIL_UPDATE
            return i
        batch_correct[i] = count_correct(out, yfb, ylb, use_labels, loss_code)
        if diagnostics:
            _diagnostics(before, params, grads, layout, zs, diag)
    return last_batch


def _diagnostics(before, params, grads, layout, zs, diag):
    for l in range(layout.shape[0]):
        lo, hi = int(layout[l, 0]), int(layout[l, 1] + layout[l, 3])
        diag[l, 0] += np.linalg.norm(grads[lo:hi].astype(np.float64))
        p_norm = np.linalg.norm(before[lo:hi].astype(np.float64))
        diag[l, 1] += np.linalg.norm((params[lo:hi] - before[lo:hi]).astype(np.float64)) / p_norm if p_norm > 0 else 0.0
        if layout[l, 4] == K.RELU:
            diag[l, 2] += dead_fraction(zs[l])


def evaluate_batches(params, layout, act_params, X, yf, yl, use_labels, sw, batch_size, loss_code,
                     loss_param, zbuf, abuf, gbuf, buf_off, out_sums):
    """out_sums = (sum of batch mean loss * rows, correct count), in batches of batch_size; with
    weights ``sw`` (not empty) the batch's weighted mean * its weight sum instead."""
    out_sums[:] = 0.0
    for lo in range(0, X.shape[0], batch_size):
        sl = slice(lo, lo + batch_size)
        out = forward(params, layout, act_params, X[sl], zbuf, abuf, buf_off)
        wb = sw[sl] if sw.size else sw
        loss, _ = _output_loss(out, yf[sl], yl[sl], use_labels, wb, loss_code, loss_param)
        out_sums[0] += loss * (float(np.sum(wb, dtype=np.float64)) if sw.size else out.shape[0])
        out_sums[1] += count_correct(out, yf[sl], yl[sl], use_labels, loss_code)


def predict_batches(params, layout, act_params, X, batch_size, zbuf, abuf, buf_off, out, post):
    """out = the network's last-layer activations for X, through ``post`` (IDENTITY, SOFTMAX, SIGMOID)."""
    for lo in range(0, X.shape[0], batch_size):
        a = forward(params, layout, act_params, X[lo:lo + batch_size], zbuf, abuf, buf_off)
        if post == K.SOFTMAX:
            a = activations_ref.softmax(a)
        elif post == K.SIGMOID:
            a = activations_ref.sigmoid(a)
        out[lo:lo + batch_size] = a

"""Fused optimizer updates on flat buffers: one compiled entry point for every optimizer.

``optimizer_step(code, params, grads, state, hyper, step)`` updates ``params`` (and
``state``) in place in ONE pass over the buffer, parallel over blocks, allocating
nothing. It is callable from Python and from other compiled code.
``optimizer_step_into(..., out)`` writes the updated parameters into ``out`` instead
(the epoch loop's two parameter buffers, see kernels/train.py).

* ``code``: one of the integer codes ``SGD, RMSPROP, ADAGRAD, ADAM, ADAMW``.
* ``params``, ``grads``: 1-D C-contiguous arrays of one float dtype, same length ``n``.
* ``state``: 2-D C-contiguous ``(n_slots, n)`` array of that dtype (see the slot table).
* ``hyper``: 1-D float64 array of length ``N_HYPER`` (see the index table); flags are 0.0/1.0.
* ``step``: the 1-based count of this update (bias correction, Adagrad's lr decay,
  SGD's first-step momentum buffer ``buf = g`` as in PyTorch).

Hyperparameter indices (shared: ``LR, WEIGHT_DECAY, EPS, MAXIMIZE``; ``EPS`` unused by SGD):

=========  ==============  ==============  ==========================  ==============
index      SGD             RMSPROP         ADAGRAD                     ADAM / ADAMW
=========  ==============  ==============  ==========================  ==============
4          MOMENTUM        MOMENTUM        LR_DECAY                    BETA1
5          DAMPENING       ALPHA           INITIAL_ACCUMULATOR_VALUE   BETA2
6          NESTEROV        CENTERED        (unused)                    AMSGRAD
=========  ==============  ==============  ==========================  ==============

State slots (rows of ``state``), see :func:`state_slot_names`:

* SGD: ``momentum_buffer`` if momentum != 0, else no slot;
* RMSPROP: ``square_avg``, then ``grad_avg`` if centered, then ``momentum_buffer`` if momentum > 0;
* ADAGRAD: ``sum`` (starts at ``initial_accumulator_value``, see :func:`new_state`);
* ADAM/ADAMW: ``exp_avg``, ``exp_avg_sq``, then ``max_exp_avg_sq`` if amsgrad.

The update equations (PyTorch's algorithm boxes) are written out in
:mod:`fastgrad.reference.optim`, the readable twin of this file.
"""
import math

import numpy as np

from fastgrad._jit import block_bounds, inline, kernel, like, muladd, n_blocks, out_or_same, prange, spliced

SGD, RMSPROP, ADAGRAD, ADAM, ADAMW = 0, 1, 2, 3, 4
CODES = {"sgd": SGD, "rmsprop": RMSPROP, "adagrad": ADAGRAD, "adam": ADAM, "adamw": ADAMW}

LR, WEIGHT_DECAY, EPS, MAXIMIZE = 0, 1, 2, 3
MOMENTUM, DAMPENING, NESTEROV = 4, 5, 6
ALPHA, CENTERED = 5, 6
LR_DECAY, INITIAL_ACCUMULATOR_VALUE = 4, 5
BETA1, BETA2, AMSGRAD = 4, 5, 6
N_HYPER = 7


def state_slot_names(code, hyper):
    """Names of the rows of ``state`` for optimizer ``code`` with the flags in ``hyper``."""
    if code == SGD:
        return ("momentum_buffer",) if hyper[MOMENTUM] != 0.0 else ()
    if code == RMSPROP:
        return (("square_avg",) + (("grad_avg",) if hyper[CENTERED] else ())
                + (("momentum_buffer",) if hyper[MOMENTUM] > 0.0 else ()))
    if code == ADAGRAD:
        return ("sum",)
    if code in (ADAM, ADAMW):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if hyper[AMSGRAD] else ())
    raise ValueError(f"unknown optimizer code {code!r}")


def n_state_slots(code, hyper):
    """How many rows ``state`` needs for optimizer ``code`` with the flags in ``hyper``."""
    return len(state_slot_names(code, hyper))


def new_state(code, hyper, n, dtype):
    """A fresh ``(n_slots, n)`` state array: zeros, Adagrad's sum at its initial value."""
    state = np.zeros((n_state_slots(code, hyper), n), dtype=dtype)
    if code == ADAGRAD:
        state[0] = hyper[INITIAL_ACCUMULATOR_VALUE]
    return state


@inline
def _direction(grad, p, sign, wd, has_wd):
    """PyTorch's ``g = (-grad if maximize else grad) + wd p``, the decay term only when wd != 0:
    ``0 * p`` would turn an infinite parameter into NaN where PyTorch keeps it."""
    g = sign * grad
    return muladd(wd, p, g) if has_wd else g


@inline
def _lerp(start, end, weight, small):
    """``torch.lerp(start, end, weight)`` as ATen evaluates it: ``start + w (end - start)`` if
    ``|w| < 0.5`` (``small``), else ``end - (1 - w)(end - start)`` -- written
    ``base + coeff (end - start)`` with ``weight`` holding ``w`` or ``w - 1``. The two forms
    differ on infinities (``end = inf, start = 0, w = 0.9`` gives inf, resp. NaN)."""
    return muladd(weight, end - start, start if small else end)


@inline
def _maximum(a, b):
    """``torch.maximum``: NaN if either is NaN (Python's ``max`` would drop a NaN ``b``)."""
    return a if (a > b or a != a) else b


@inline
def _lerp_coeff(x, w):
    """``(weight, small)`` for :func:`_lerp` from the lerp weight ``w`` (float64), in ``x``'s float
    type: ``w`` rounded to that type and tested there, then ``w - 1`` in it if not small, as ATen."""
    wt = like(x, w)
    small = abs(wt) < like(x, 0.5)
    return (wt if small else wt - like(x, 1.0)), small


@inline
def _sgd_range(params, grads, state, hyper, first, lo, hi, out):
    params = params[lo:hi]
    out = out_or_same(params, out, lo, hi)  # params itself when out is None
    grads = grads[lo:hi]
    lr = like(params, hyper[LR])
    wd = like(params, hyper[WEIGHT_DECAY])
    has_wd = hyper[WEIGHT_DECAY] != 0.0
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    momentum = like(params, hyper[MOMENTUM])
    damp1 = like(params, 1.0 - hyper[DAMPENING])
    if hyper[MOMENTUM] == 0.0:
        for i in range(params.size):
            p = params[i]
            out[i] = muladd(-lr, _direction(grads[i], p, sign, wd, has_wd), p)
        return
    buf = state[0][lo:hi]
    nesterov = hyper[NESTEROV] != 0.0
    for i in range(params.size):
        p = params[i]
        g = _direction(grads[i], p, sign, wd, has_wd)
        b = g if first else muladd(momentum, buf[i], damp1 * g)
        buf[i] = b
        out[i] = muladd(-lr, muladd(momentum, b, g) if nesterov else b, p)


@inline
def _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, centered, lerp_w, lerp_small):
    """Update ``square_avg[i]`` (and ``grad_avg[i]`` if centered); return ``sqrt(v - ga^2) + eps``."""
    v = muladd(alpha, square_avg[i], w * g * g)
    square_avg[i] = v
    if centered:
        ga = _lerp(grad_avg[i], g, lerp_w, lerp_small)
        grad_avg[i] = ga
        return math.sqrt(muladd(-ga, ga, v)) + eps
    return math.sqrt(v) + eps


@inline
def _rmsprop_range(params, grads, state, hyper, lo, hi, out):
    params = params[lo:hi]
    out = out_or_same(params, out, lo, hi)  # params itself when out is None
    grads = grads[lo:hi]
    lr = like(params, hyper[LR])
    wd = like(params, hyper[WEIGHT_DECAY])
    has_wd = hyper[WEIGHT_DECAY] != 0.0
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    alpha = like(params, hyper[ALPHA])
    w = like(params, 1.0 - hyper[ALPHA])
    lerp_w, lerp_small = _lerp_coeff(params, 1.0 - hyper[ALPHA])
    momentum = like(params, hyper[MOMENTUM])
    square_avg = state[0][lo:hi]
    # The flags select one of four loops: a flag tested inside the loop stops it vectorizing.
    if hyper[CENTERED] != 0.0:
        grad_avg = state[1][lo:hi]
        if hyper[MOMENTUM] > 0.0:
            buf = state[2][lo:hi]
            for i in range(params.size):
                p = params[i]
                g = _direction(grads[i], p, sign, wd, has_wd)
                b = muladd(momentum, buf[i], g / _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, True,
                                                          lerp_w, lerp_small))
                buf[i] = b
                out[i] = muladd(-lr, b, p)
        else:
            for i in range(params.size):
                p = params[i]
                g = _direction(grads[i], p, sign, wd, has_wd)
                out[i] = muladd(-lr, g / _rms_avg(g, square_avg, grad_avg, i, alpha, w, eps, True,
                                                  lerp_w, lerp_small), p)
    elif hyper[MOMENTUM] > 0.0:
        buf = state[1][lo:hi]
        for i in range(params.size):
            p = params[i]
            g = _direction(grads[i], p, sign, wd, has_wd)
            b = muladd(momentum, buf[i], g / _rms_avg(g, square_avg, square_avg, i, alpha, w, eps, False,
                                                      lerp_w, lerp_small))
            buf[i] = b
            out[i] = muladd(-lr, b, p)
    else:
        for i in range(params.size):
            p = params[i]
            g = _direction(grads[i], p, sign, wd, has_wd)
            out[i] = muladd(-lr, g / _rms_avg(g, square_avg, square_avg, i, alpha, w, eps, False,
                                              lerp_w, lerp_small), p)


@inline
def _adagrad_range(params, grads, state, hyper, clr64, lo, hi, out):
    params = params[lo:hi]
    out = out_or_same(params, out, lo, hi)  # params itself when out is None
    grads = grads[lo:hi]
    clr = like(params, clr64)
    wd = like(params, hyper[WEIGHT_DECAY])
    has_wd = hyper[WEIGHT_DECAY] != 0.0
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    state_sum = state[0][lo:hi]
    for i in range(params.size):
        p = params[i]
        g = _direction(grads[i], p, sign, wd, has_wd)
        s = muladd(g, g, state_sum[i])
        state_sum[i] = s
        out[i] = muladd(-clr, g / (math.sqrt(s) + eps), p)


@inline
def _adam_range(params, grads, state, hyper, decoupled, step_size64, inv_bc2_sqrt64, lo, hi, out):
    params = params[lo:hi]
    out = out_or_same(params, out, lo, hi)  # params itself when out is None
    grads = grads[lo:hi]
    # AdamW decays the weights (p *= 1 - lr*wd) instead of adding wd*p to the gradient;
    # the factor is 1 (exact) for Adam, and the L2 term is skipped for AdamW.
    wd = like(params, hyper[WEIGHT_DECAY])
    has_l2 = hyper[WEIGHT_DECAY] != 0.0 and not decoupled
    decay = like(params, 1.0 - hyper[LR] * hyper[WEIGHT_DECAY] if decoupled else 1.0)
    eps = like(params, hyper[EPS])
    sign = like(params, -1.0 if hyper[MAXIMIZE] else 1.0)
    lerp_w, lerp_small = _lerp_coeff(params, 1.0 - hyper[BETA1])
    beta2 = like(params, hyper[BETA2])
    w2 = like(params, 1.0 - hyper[BETA2])
    step_size = like(params, step_size64)
    inv_bc2_sqrt = like(params, inv_bc2_sqrt64)
    exp_avg = state[0][lo:hi]
    exp_avg_sq = state[1][lo:hi]
    if hyper[AMSGRAD]:
        max_sq = state[2][lo:hi]
        for i in range(params.size):
            p = params[i]
            g = _direction(grads[i], p, sign, wd, has_l2)
            m = _lerp(exp_avg[i], g, lerp_w, lerp_small)
            v = muladd(beta2, exp_avg_sq[i], w2 * g * g)
            vmax = _maximum(max_sq[i], v)
            exp_avg[i] = m
            exp_avg_sq[i] = v
            max_sq[i] = vmax
            out[i] = muladd(-step_size, m / muladd(math.sqrt(vmax), inv_bc2_sqrt, eps), p * decay)
    else:
        for i in range(params.size):
            p = params[i]
            g = _direction(grads[i], p, sign, wd, has_l2)
            m = _lerp(exp_avg[i], g, lerp_w, lerp_small)
            v = muladd(beta2, exp_avg_sq[i], w2 * g * g)
            exp_avg[i] = m
            exp_avg_sq[i] = v
            out[i] = muladd(-step_size, m / muladd(math.sqrt(v), inv_bc2_sqrt, eps), p * decay)


@inline
def _step_scalars(code, hyper, step):
    """The step-dependent scalars, in float64 as PyTorch computes them in Python:
    Adagrad's ``clr = lr / (1 + (step - 1) lr_decay)``; Adam's ``step_size = lr / (1 - beta1^step)``
    and ``1 / sqrt(1 - beta2^step)``."""
    s0 = 0.0
    s1 = 1.0
    t = np.float64(step)
    if code == ADAGRAD:
        s0 = hyper[LR] / (1.0 + (t - 1.0) * hyper[LR_DECAY])
    elif code == ADAM or code == ADAMW:
        s0 = hyper[LR] / (1.0 - hyper[BETA1] ** t)
        s1 = 1.0 / math.sqrt(1.0 - hyper[BETA2] ** t)
    return s0, s1


@kernel
def _step_block(code, params, grads, state, hyper, step, s0, s1, lo, hi, out):
    """Entries ``lo .. hi - 1`` of one update (``out`` None: in place), by optimizer ``code``.
    A compiled function of its own, called from both the serial and the parallel branch, so
    that the five optimizers are compiled once per entry point instead of once per branch."""
    if code == SGD:
        _sgd_range(params, grads, state, hyper, step == 1, lo, hi, out)
    elif code == RMSPROP:
        _rmsprop_range(params, grads, state, hyper, lo, hi, out)
    elif code == ADAGRAD:
        _adagrad_range(params, grads, state, hyper, s0, lo, hi, out)
    else:
        _adam_range(params, grads, state, hyper, code == ADAMW, s0, s1, lo, hi, out)


# pasted into optimizer_step_into, so that its per-optimizer copies (STEP_INTO) keep one branch
_step_block_body = spliced(_step_block.py_func)


@kernel(parallel=True)
def optimizer_step(code, params, grads, state, hyper, step):
    """One in-place update of ``params`` and ``state`` by optimizer ``code`` (see module doc).

    The loops write through the very array they read (``out`` None: ``out_or_same``), so
    LLVM needs no overlap check; :func:`optimizer_step_into` with ``out = params`` would be
    correct, but its output is a separate argument, and LLVM's run-time overlap check would
    send every loop down its scalar path (7x slower, measured at 6,337 float32 parameters).
    Adam's denominator is ``sqrt(v) * (1 / sqrt(1 - beta2^step)) + eps`` where PyTorch
    divides by ``sqrt(1 - beta2^step)``: within an ulp of PyTorch's value, and one division
    per parameter fewer (15-20% of the pass, measured on 235,146 float32 parameters).
    """
    s0, s1 = _step_scalars(code, hyper, step)
    n = params.size
    nb = n_blocks(n)
    if nb == 1:
        _step_block(code, params, grads, state, hyper, step, s0, s1, 0, n, None)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            _step_block(code, params, grads, state, hyper, step, s0, s1, lo, hi, None)


@kernel(parallel=True)
def optimizer_step_into(code, params, grads, state, hyper, step, out):
    """One update by optimizer ``code`` (see module doc and :func:`optimizer_step`) that reads
    ``params`` and writes the updated parameters into ``out``, a 1-D buffer of the same
    length and dtype sharing no memory with ``params`` (for an update in place, call
    :func:`optimizer_step`); ``state`` is updated in place.

    The parameters before the update stay intact in ``params``: the training loop keeps two
    buffers and swaps them instead of copying a snapshot per step.
    """
    s0, s1 = _step_scalars(code, hyper, step)
    n = params.size
    nb = n_blocks(n)
    if nb == 1:
        _step_block_body(code, params, grads, state, hyper, step, s0, s1, 0, n, out)
    else:
        for b in prange(nb):
            lo, hi = block_bounds(b, nb, n)
            _step_block_body(code, params, grads, state, hyper, step, s0, s1, lo, hi, out)


# One compiled update per optimizer, for the training loop's OPTIMIZER_STEP slot
# (kernels/slots.py): optimizer_step_into's body with the code fixed, so Numba prunes the
# other optimizers before typing them and a model compiles only its own.
_step_into_body = spliced(optimizer_step_into.py_func)


def _step_into_for(code):
    def optimizer_step_into_one(params, grads, state, hyper, step, out):
        _step_into_body(code, params, grads, state, hyper, step, out)
    return kernel(optimizer_step_into_one, parallel=True)


STEP_INTO = {code: _step_into_for(code) for code in (SGD, RMSPROP, ADAGRAD, ADAM, ADAMW)}
"""Optimizer code -> its compiled :func:`optimizer_step_into` with that code fixed."""

"""The optimizers' update equations in plain NumPy: the readable definition and the tests' oracle.

Each function is PyTorch's algorithm box (torch.optim docs; single-tensor code path),
written as a pure function ``(params, grads, state, step, **hyperparameters) ->
(new_params, new_state)``: ``state`` is a dict of arrays named as in
:func:`fastgrad.kernels.optim.state_slot_names` and is not modified (missing entries start
as PyTorch starts them: zeros, Adagrad's sum at ``initial_accumulator_value``); ``step`` is the
1-based count of this update. Operations follow PyTorch's order, so float64 results
agree with PyTorch to round-off, and NaN/inf gradients give NaN/inf in PyTorch's positions
(the decay term only when ``weight_decay != 0``, ATen's two lerp forms, a NaN-propagating
maximum; see docs/optim.md).

:func:`optimizer_step` is the twin of the compiled kernel of the same name and
signature: it decodes the ``hyper`` vector, calls the pure function and writes the
results back in place.
"""
import numpy as np

from fastgrad.kernels.optim import (ADAGRAD, ADAM, ADAMW, ALPHA, AMSGRAD, BETA1, BETA2, CENTERED,
                                    DAMPENING, EPS, LR, LR_DECAY, MAXIMIZE, MOMENTUM, NESTEROV,
                                    RMSPROP, SGD, WEIGHT_DECAY, state_slot_names)


def _lerp(start, end, weight):
    """``torch.lerp(start, end, weight)`` as ATen evaluates it (the weight rounded to the arrays'
    dtype first): ``start + w (end - start)`` if ``|w| < 0.5``, else ``end - (1 - w)(end - start)``.
    The two forms agree on finite numbers to round-off but not on infinities."""
    w = end.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (1 - w)


def sgd(params, grads, state, step, *, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
        weight_decay=0.0, maximize=False):
    """SGD with momentum, dampening, Nesterov momentum and L2 weight decay.

    ``g = (-1 if maximize) grad + wd p``; with momentum: ``b = g`` on step 1, else
    ``b = mu b + (1 - dampening) g``; ``d = g + mu b`` (Nesterov) or ``b``; ``p = p - lr d``.
    """
    g = -grads if maximize else grads
    if weight_decay != 0:
        g = g + weight_decay * params
    new_state = {}
    if momentum != 0:
        buf = g.copy() if step == 1 else momentum * state["momentum_buffer"] + (1 - dampening) * g
        new_state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return params - lr * g, new_state


def rmsprop(params, grads, state, step, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
            momentum=0.0, centered=False, maximize=False):
    """RMSprop: ``v = alpha v + (1 - alpha) g^2``; centered: ``ga = lerp(ga, g, 1 - alpha)``,
    ``avg = sqrt(v - ga^2) + eps`` (else ``sqrt(v) + eps``); with momentum
    ``b = mu b + g / avg``, ``p = p - lr b``, else ``p = p - lr g / avg``.
    """
    g = -grads if maximize else grads
    if weight_decay != 0:
        g = g + weight_decay * params
    square_avg = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
    new_state = {"square_avg": square_avg}
    if centered:
        grad_avg0 = state.get("grad_avg", np.zeros_like(g))
        grad_avg = _lerp(grad_avg0, g, 1 - alpha)
        new_state["grad_avg"] = grad_avg
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        buf = momentum * state.get("momentum_buffer", 0.0) + g / avg
        new_state["momentum_buffer"] = buf
        return params - lr * buf, new_state
    return params - lr * (g / avg), new_state


def adagrad(params, grads, state, step, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
            initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    """Adagrad: ``clr = lr / (1 + (step - 1) lr_decay)``, ``s = s + g^2``,
    ``p = p - clr g / (sqrt(s) + eps)``; ``s`` starts at ``initial_accumulator_value``.
    """
    g = -grads if maximize else grads
    if weight_decay != 0:
        g = g + weight_decay * params
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state.get("sum", initial_accumulator_value) + g * g
    return params - clr * (g / (np.sqrt(state_sum) + eps)), {"sum": state_sum}


def adam(params, grads, state, step, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         amsgrad=False, maximize=False, decoupled_weight_decay=False):
    """Adam: ``g = grad + wd p`` (L2; AdamW instead ``p = p (1 - lr wd)``),
    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``,
    ``vmax = max(vmax, v)`` (amsgrad), ``denom = sqrt(v or vmax) / sqrt(1 - beta2^t) + eps``,
    ``p = p - lr / (1 - beta1^t) * m / denom``.
    """
    beta1, beta2 = betas
    g = -grads if maximize else grads
    if weight_decay != 0:
        if decoupled_weight_decay:
            params = params * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * params
    exp_avg0 = state.get("exp_avg", np.zeros_like(g))
    exp_avg = _lerp(exp_avg0, g, 1 - beta1)
    exp_avg_sq = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * g * g
    new_state = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    step_size = lr / (1 - beta1 ** float(step))
    bias_correction2_sqrt = (1 - beta2 ** float(step)) ** 0.5
    if amsgrad:
        second = np.maximum(state.get("max_exp_avg_sq", 0.0), exp_avg_sq)
        new_state["max_exp_avg_sq"] = second
    else:
        second = exp_avg_sq
    denom = np.sqrt(second) / bias_correction2_sqrt + eps
    return params - step_size * (exp_avg / denom), new_state


def adamw(params, grads, state, step, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
          amsgrad=False, maximize=False):
    """AdamW: Adam with decoupled weight decay ``p = p (1 - lr wd)`` before the Adam update."""
    return adam(params, grads, state, step, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


def _decode(code, hyper):
    """The pure function for ``code`` and its keyword hyperparameters read from ``hyper``."""
    h = [float(x) for x in hyper]
    common = {"lr": h[LR], "weight_decay": h[WEIGHT_DECAY], "maximize": bool(h[MAXIMIZE])}
    if code == SGD:
        return sgd, dict(common, momentum=h[MOMENTUM], dampening=h[DAMPENING], nesterov=bool(h[NESTEROV]))
    if code == RMSPROP:
        return rmsprop, dict(common, alpha=h[ALPHA], eps=h[EPS], momentum=h[MOMENTUM],
                             centered=bool(h[CENTERED]))
    if code == ADAGRAD:
        return adagrad, dict(common, lr_decay=h[LR_DECAY], eps=h[EPS])
    if code in (ADAM, ADAMW):
        return (adam if code == ADAM else adamw), dict(common, betas=(h[BETA1], h[BETA2]), eps=h[EPS],
                                                       amsgrad=bool(h[AMSGRAD]))
    raise ValueError(f"unknown optimizer code {code!r}")


def optimizer_step(code, params, grads, state, hyper, step):
    """NumPy twin of :func:`fastgrad.kernels.optim.optimizer_step`: same arguments, in place."""
    optimizer_step_into(code, params, grads, state, hyper, step, params)


def optimizer_step_into(code, params, grads, state, hyper, step, out):
    """NumPy twin of :func:`fastgrad.kernels.optim.optimizer_step_into`: the updated parameters
    into ``out`` (``params`` left as it was unless ``out`` is ``params``), ``state`` in place."""
    func, kwargs = _decode(code, hyper)
    names = state_slot_names(code, hyper)
    new_params, new_state = func(params, grads, dict(zip(names, state)), step, **kwargs)
    out[:] = new_params
    for row, name in enumerate(names):
        state[row] = new_state[name]

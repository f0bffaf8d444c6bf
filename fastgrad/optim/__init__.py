"""Fused optimizers on flat parameter buffers, gradient clipping, learning-rate schedules.

``SGD, RMSprop, Adagrad, Adam, AdamW`` have PyTorch's names, defaults and update
equations (see each class); ``LBFGS`` is full-batch L-BFGS with PyTorch's iterates
(``loss = opt.step(closure, params, grads)``, see its class). ``opt.step(params, grads)`` updates ``params`` in place
in one fused, parallel, allocation-free pass and returns None. ``params`` is a 1-D
float32/float64 array (a flat buffer) or a list of arrays; state (moments, step count)
is allocated on the first step, kept in ``opt.state`` (one ``(n_slots, size)`` array
per params array) and ``opt.step_count``, and round-trips through
``state_dict()``/``load_state_dict()``. ``opt.lr`` is a plain attribute that schedules
change. ``skip_nonfinite=True`` makes a step with a NaN/inf gradient a no-op; by
default the math is applied as PyTorch applies it.

Kernel protocol (for compiled training loops, e.g. the model's epoch loop)
-------------------------------------------------------------------------
* ``code, hyper, n_slots = opt.kernel_spec()``: the integer optimizer code of
  :mod:`fastgrad.kernels.optim`, a fresh float64 ``hyper`` vector (layout in that
  module's docstring; ``hyper[LR]`` may be overwritten per batch from a schedule's
  ``lr_at``), and the number of state rows.
* ``state = opt._ensure_state([params], hyper)[0]``: the optimizer's own
  ``(n_slots, n)`` state for a flat buffer, allocated on first use, so that
  ``state_dict()`` sees what the compiled loop did.
* Call ``fastgrad.kernels.optim.optimizer_step(code, params, grads, state, hyper,
  opt.step_count + k)`` for the k-th update (k = 1, 2, ...), then add the number of
  updates made to ``opt.step_count``.
* Gradient clipping inside compiled code: ``fastgrad.kernels.grad_utils.clip_grad_norm(grads,
  max_norm, norm_type)`` (returns the norm before clipping), ``grad_norm``, ``scale_inplace``,
  ``clip_grad_value``, ``count_nonfinite``.
"""
from fastgrad.optim.grad_utils import clip_grad_norm, clip_grad_value, grad_stats
from fastgrad.optim.lbfgs import LBFGS
from fastgrad.optim.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from fastgrad.schedules import (CosineAnnealingLR, ExponentialLR, LinearWarmupCosine, OneCycleLR, ReduceLROnPlateau,
                                StepLR)

__all__ = ("Optimizer", "SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "LBFGS",
           "clip_grad_norm", "clip_grad_value", "grad_stats",
           "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmupCosine", "OneCycleLR", "ReduceLROnPlateau")

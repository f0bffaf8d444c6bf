"""A :class:`~fastgrad.Sequential`'s options behind properties: fixed once the model is built
(``loss``, ``dtype``, ``backend``: its training functions and buffers are made for them, as
Keras makes a new ``compile`` for another loss), or checked whenever they are assigned
(``huber_delta``, ``metrics``, ``l1``, ``l2``, ``l1_mode``). Each is stored as ``"_" + name``.
"""
from __future__ import annotations

from fastgrad._checks import as_scalar, check_choice

L1_MODES = ("subgradient", "proximal")
# The attributes kept behind these properties (a model pickled before them stored plain names).
CHECKED_ATTRIBUTES = ("loss", "dtype", "backend", "huber_delta", "metrics", "l1", "l2", "l1_mode")


def set_once(name, doc):
    """A property that may be set once, at construction; assigning it later raises
    ``AttributeError`` saying why."""
    slot = "_" + name

    def get(self):
        return getattr(self, slot)

    def set_(self, value):
        if slot in self.__dict__:
            raise AttributeError(f"Sequential.{name} is fixed when the model is built (its training functions and "
                                 f"buffers are made for it); build a new Sequential with {name}={value!r}")
        setattr(self, slot, value)
    return property(get, set_, doc=doc)


def checked(name, check, doc):
    """A property whose assigned value goes through ``check(value, model)`` (which raises
    ``ValueError``/``TypeError`` naming ``name``) and is stored as what it returns."""
    slot = "_" + name

    def get(self):
        return getattr(self, slot)

    def set_(self, value):
        setattr(self, slot, check(value, self))
    return property(get, set_, doc=doc)


def _metrics(value, model):
    from fastgrad.metrics import check_metrics
    return check_metrics(value, model.loss)


def _l1_mode(value, model):
    value = check_choice(value, "l1_mode", L1_MODES)
    if hasattr(model, "optimizer"):
        model._check_lbfgs_l1_mode(value)
    return value


class ModelOptions:
    """The mixin of :class:`~fastgrad.Sequential` that holds these properties."""

    loss = set_once("loss", "The loss's name (see Sequential's doc), or the user's :class:`fastgrad.Loss`.")
    dtype = set_once("dtype", "The parameters' dtype, float32 or float64.")
    backend = set_once("backend", '"compiled" or "reference" (see Sequential\'s doc).')
    huber_delta = checked("huber_delta", lambda v, m: as_scalar(v, "huber_delta", low=0.0, low_open=True),
                          "Huber's threshold (> 0; used by ``loss=\"huber\"``).")
    metrics = checked("metrics", _metrics, "The metrics' names (checked against the loss).")
    l1 = checked("l1", lambda v, m: as_scalar(v, "l1", low=0.0), "Weight of the L1 penalty ``l1 * sum|W|`` (>= 0).")
    l2 = checked("l2", lambda v, m: as_scalar(v, "l2", low=0.0), "Weight of the L2 penalty ``l2 * sum W^2`` (>= 0).")
    l1_mode = checked("l1_mode", _l1_mode, """How the L1 penalty acts: ``"subgradient"`` (default) adds
        ``l1 * sign(W)`` to the gradient; ``"proximal"`` leaves it out of the gradient and follows each
        update by soft-thresholding ``W <- sign(W) max(|W| - lr * l1, 0)``, which gives exact zeros
        (see docs/model.md, "L1 that gives exact zeros"). LBFGS refuses ``"proximal"``.""")

    def _check_lbfgs_l1_mode(self, mode=None):
        from fastgrad.optim import LBFGS
        if (mode or self._l1_mode) == "proximal" and isinstance(self.optimizer, LBFGS):
            raise ValueError("l1_mode='proximal' follows each first-order update by a soft-thresholding step; "
                             "LBFGS minimizes a smooth loss: use l1_mode='subgradient' or a mini-batch optimizer")

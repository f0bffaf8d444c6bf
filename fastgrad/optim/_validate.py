"""The optimizers' checks: validated hyperparameter attributes, dtype range, aliasing, saved state.

Every hyperparameter is a :class:`Hyperparameter` descriptor whose check runs on every
assignment (in ``__init__``, by a schedule, by ``load_state_dict`` or by hand), so a value
that would turn the parameters into NaN never reaches the kernel. Each check raises
``TypeError``/``ValueError`` naming the attribute, what it expects and what it got.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import _describe, as_scalar

_MISSING = object()


# -- one check per kind of hyperparameter ------------------------------------------------------

def nonnegative(value, name):
    """A finite real >= 0 (lr, momentum, weight_decay, lr_decay, initial_accumulator_value)."""
    return as_scalar(value, name, low=0.0)


def positive(value, name):
    """A finite real > 0 (eps)."""
    return as_scalar(value, name, low=0.0, low_open=True)


def unit_interval(value, name):
    """A real in [0, 1] (dampening, RMSprop's alpha)."""
    return as_scalar(value, name, low=0.0, high=1.0)


def beta_pair(value, name):
    """A pair ``(beta1, beta2)`` of reals in [0, 1), as a tuple of floats."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {_describe(value)}")
    return tuple(as_scalar(b, f"{name}[{i}]", low=0.0, high=1.0, high_open=True) for i, b in enumerate(value))


def flag(value, name):
    """A real boolean (``bool`` or ``numpy.bool_``): ``"False"`` or ``0`` would be taken as a value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


class Hyperparameter:
    """A validated attribute: ``check(value, name)`` coerces or raises on every assignment.

    After storing, the owner's ``_check_consistency()`` runs (relations between attributes,
    e.g. SGD's nesterov); if it raises, the previous value is restored. Every accepted
    assignment increments the owner's ``_hp_version``, the key of what the owner derives
    from its hyperparameters and caches between steps.
    """

    def __init__(self, check):
        self.check = check

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = "_hp_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(obj, self.slot)

    def __set__(self, obj, value):
        new = self.check(value, self.name)
        old = obj.__dict__.get(self.slot, _MISSING)
        obj.__dict__[self.slot] = new
        try:
            obj._check_consistency()
        except ValueError:
            if old is _MISSING:
                del obj.__dict__[self.slot]
            else:
                obj.__dict__[self.slot] = old
            raise
        obj.__dict__["_hp_version"] = obj.__dict__.get("_hp_version", 0) + 1


# -- the arrays of one step -------------------------------------------------------------------

def _span(a: np.ndarray):
    start = a.__array_interface__["data"][0]
    return start, start + a.nbytes


def check_no_aliasing(params_list, grads_list, param_names, grad_names) -> None:
    """``ValueError`` if a params array overlaps another params array or any gradient
    (``params_list`` may also hold other arrays the step writes, e.g. the state).

    The update writes each params array while reading the others' gradients in parallel:
    an overlap races (``step(buf[:-1], buf[1:])``) and a repeated array is updated twice
    (``step([p, p], [g, g])``). Gradients may share memory with each other (they are only
    read). The arrays are C-contiguous, so overlapping byte ranges are shared memory: one
    sort and sweep, O(k log k) for k arrays.
    """
    items = sorted([(*_span(p), True, n) for p, n in zip(params_list, param_names)]
                   + [(*_span(g), False, n) for g, n in zip(grads_list, grad_names)])
    end_all = end_params = -1
    owner_all = owner_params = None
    for start, end, is_param, name in items:
        if (is_param and start < end_all) or start < end_params:
            other = owner_all if is_param and start < end_all else owner_params
            raise ValueError(f"{name} shares memory with {other}: an optimizer step needs params "
                             "arrays that are distinct from each other and from every gradient")
        if end > end_all:
            end_all, owner_all = end, name
        if is_param and end > end_params:
            end_params, owner_params = end, name


# -- a saved state ----------------------------------------------------------------------------

_REQUIRED_KEYS = ("step", "state", "hyperparameters")
_OPTIONAL_KEYS = ("n_skipped", "slots")


def check_state_dict(state_dict, cls):
    """``(optimizer, step, n_skipped, state)`` from what ``cls().state_dict()`` returned, checked.

    ``optimizer`` is a fresh ``cls`` built from the saved hyperparameters (so each is checked
    as on assignment); ``state`` is ``None`` or a list of C-contiguous copies, one
    ``(n_slots, size)`` float32/float64 array per params array. Raises ``TypeError`` or
    ``ValueError`` naming the offending key (``state_dict['state'][1]``, ...).
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict as returned by state_dict(), got {_describe(state_dict)}")
    missing = [k for k in _REQUIRED_KEYS if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict lacks the key(s) {missing}; it has {sorted(map(repr, state_dict))}")
    unknown = [k for k in state_dict if k not in _REQUIRED_KEYS + _OPTIONAL_KEYS]
    if unknown:
        raise ValueError(f"state_dict has unknown key(s) {unknown}; expected {list(_REQUIRED_KEYS + _OPTIONAL_KEYS)}")
    hyper = state_dict["hyperparameters"]
    if not isinstance(hyper, dict):
        raise TypeError(f"state_dict['hyperparameters'] must be a dict, got {_describe(hyper)}")
    known = cls().hyperparameters()
    for key in hyper:
        if key not in known:
            raise ValueError(f"state_dict['hyperparameters'] has the key {key!r}, which {cls.__name__} "
                             f"does not take; expected some of {sorted(known)}")
    try:
        optimizer = cls(**hyper)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"state_dict['hyperparameters']: {exc}") from None
    step = count(state_dict["step"], "state_dict['step']")
    n_skipped = count(state_dict.get("n_skipped", 0), "state_dict['n_skipped']")
    slots = optimizer.slot_names
    if "slots" in state_dict and tuple(state_dict["slots"]) != slots:
        raise ValueError(f"state_dict['slots'] must be {slots} for these hyperparameters, "
                         f"got {tuple(state_dict['slots'])}")
    saved = state_dict["state"]
    if saved is None:
        return optimizer, step, n_skipped, None
    if not isinstance(saved, (list, tuple)) or not saved:
        raise TypeError(f"state_dict['state'] must be None or a non-empty list of arrays, got {_describe(saved)}")
    state = []
    for i, s in enumerate(saved):
        name = f"state_dict['state'][{i}]"
        if not isinstance(s, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {_describe(s)}")
        if s.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64, got dtype {s.dtype}")
        if s.ndim != 2 or s.shape[0] != len(slots) or s.shape[1] == 0:
            raise ValueError(f"{name} must have shape ({len(slots)}, size) (rows {slots}) for these "
                             f"hyperparameters, got shape {s.shape}")
        state.append(np.array(s, copy=True, order="C"))
    return optimizer, step, n_skipped, state


def count(value, name):
    """``value`` as an int >= 0 (a step count), else ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 0, got {_describe(value)}")
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value}")
    return int(value)


def positive_int(value, name):
    """An int >= 1 (iteration counts, history sizes)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {_describe(value)}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}")
    return int(value)


def line_search(value, name):
    """``None`` or ``"strong_wolfe"`` (L-BFGS's ``line_search_fn``)."""
    if value is not None and not (isinstance(value, str) and value == "strong_wolfe"):
        raise ValueError(f"{name} must be None or 'strong_wolfe', got {_describe(value)}")
    return value

"""What every layer of the model API shares: binding to one model, views into its flat buffers."""
from __future__ import annotations

import numpy as np


class Layer:
    """Base of the layers of a :class:`~fastgrad.Sequential`.

    A layer is a description: its trainable arrays live in the model's flat ``params``
    (and ``grads``), its non-trainable ones in ``model.state``; once the layer is part of
    a model, its array attributes are views into those buffers. ``n_in``/``n_out`` are the
    input and output widths (``n_in`` is None until known, for layers that infer it from
    the layer before). Subclasses implement ``_emit(builder, n_in)`` (add their ops to the
    model's program, return the output width), ``config()`` and ``__repr__``.
    """

    n_in = None
    n_out = None
    # Options that may change after the model is built, as in PyTorch (``dropout.p = 0.2``):
    # name -> (column of the model's ``op_params`` row, check of the new value).
    _tunable: dict = {}
    # Options the model's program and buffers were built from: fixed once in a model.
    _fixed: tuple = ("n_in", "n_out")

    def __init__(self):
        self._model = None
        self._op = None      # index of the layer's (first) op in the model's program

    def __setattr__(self, name, value):
        model = self.__dict__.get("_model")
        if model is not None:
            if name in self._tunable:
                column, check = self._tunable[name]
                value = check(value)
                model.op_params[self._op, column] = value
            elif name in self._fixed:
                raise AttributeError(f"{type(self).__name__}.{name} is fixed once the layer is part of a model "
                                     "(the model's program and buffers were built from it); build a new layer "
                                     "and model instead")
        object.__setattr__(self, name, value)

    @property
    def n_params(self) -> int:
        """Trainable values of this layer (0 for a layer without parameters)."""
        return 0

    @property
    def n_state(self) -> int:
        """Non-trainable values of this layer in ``model.state``."""
        return 0

    def _bind(self, model, op):
        if self._model is not None and self._model is not model:
            raise ValueError(f"this {type(self).__name__} layer already belongs to another model; "
                             "create a new layer")
        self._model, self._op = model, op

    def _program_row(self):
        if self._model is None:
            raise AttributeError(f"a {type(self).__name__} layer has no arrays until it is part of a "
                                 "Sequential model")
        return self._model.program[self._op]

    def _set_width(self, n_in, builder):
        """Record the input width given by the layer before; ``ValueError`` (naming the layer's
        place, ``builder.where``) when this layer was declared with another."""
        if self.n_in is not None and n_in is not None and self.n_in != n_in:
            raise ValueError(f"{builder.where} expects {self.n_in} inputs but {builder.before} gives {n_in} "
                             f"outputs ({self!r})")
        if self.n_in is None:
            if n_in is None:
                raise ValueError(f"{builder.where} ({self!r}) cannot infer its input width: give the first "
                                 "layer its width (e.g. Dense(n_in, n_out)) or pass Sequential(..., n_in=...)")
            self.n_in = n_in

    def _leaves(self):
        """This layer and, for a container, the layers inside it, in program order."""
        return [self]


def python_scalar(value):
    """A NumPy scalar as the Python number it holds (so configs serialize as JSON); else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def view_property(buffer_name, which, doc):
    """A property for a view of the model's ``buffer_name`` ("params", "grads" or "state"):
    reading returns the view; assigning copies into it after checking shape and dtype
    (``ValueError`` naming the attribute; ``grads`` views are read-only attributes)."""
    def get(self):
        return self._view(buffer_name, which)

    def set(self, value):
        from fastgrad._checks import assign_into
        view = self._view(buffer_name, which)
        if view is None:
            raise ValueError(f"this {type(self).__name__} layer has no {which} (built without it)")
        assign_into(view, value, which)
    return property(get, set if buffer_name != "grads" else None, doc=doc)


def layer_activation(activation, options):
    """(code, p1, p2) of a layer's activation: a name with its options (see
    :func:`fastgrad.functional.activations.activation_spec`) or a :class:`fastgrad.ActivationFn`
    (a user's pair, code ``CUSTOM_ACTIVATION``, no options)."""
    from fastgrad.custom import ActivationFn
    if isinstance(activation, ActivationFn):
        if options:
            raise ValueError(f"an ActivationFn takes no options, got {sorted(options)}")
        from fastgrad.kernels.program import CUSTOM_ACTIVATION
        return CUSTOM_ACTIVATION, 0.0, 0.0
    from fastgrad.functional.activations import activation_spec
    return activation_spec(activation, **options)


def activation_options_property():
    """``activation_options`` as a copy of the layer's own: the model's program was built from
    them, so editing the returned dict changes nothing (neither the model nor what ``save`` writes)."""
    return property(lambda self: dict(self._activation_options),
                    doc="The activation's options (a copy; fixed once the layer is built).")

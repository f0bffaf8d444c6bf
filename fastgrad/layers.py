"""The Dense layer of the model API: a description whose W and b live in the model's flat buffer."""
from __future__ import annotations

import numpy as np

from fastgrad import init as _init
from fastgrad._checks import as_int, check_choice
from fastgrad.functional.activations import activation_spec

RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "silu")


class Dense:
    """y = act(x @ W + b) with W (n_in, n_out) and b (n_out,).

    ``activation``: any name of ``fastgrad.functional.ACTIVATIONS``, its options as
    keywords (``Dense(8, 8, "leaky_relu", alpha=0.2)``). ``init``: a name of
    ``fastgrad.init.INITIALIZERS`` or ``"auto"`` (He normal for the ReLU family —
    relu, leaky_relu, elu, gelu, silu — and Xavier uniform otherwise); biases start at 0.
    Once the layer is part of a :class:`~fastgrad.Sequential`, ``W``, ``b``, ``grad_W``
    and ``grad_b`` are views into the model's flat ``params``/``grads``.
    """

    def __init__(self, n_in, n_out, activation="identity", init="auto", **activation_options):
        activation_options = {k: _python_scalar(v) for k, v in activation_options.items()}
        self.n_in = as_int(n_in, "n_in", low=1)
        self.n_out = as_int(n_out, "n_out", low=1)
        self.code, self.p1, self.p2 = activation_spec(activation, **activation_options)
        self.activation = activation
        self.activation_options = dict(activation_options)
        check_choice(init, "init", ("auto",) + tuple(_init.INITIALIZERS))
        self.init = init
        self._model = None
        self._index = None

    @property
    def initializer(self) -> str:
        if self.init != "auto":
            return self.init
        return "he_normal" if self.activation in RELU_FAMILY else "xavier_uniform"

    @property
    def n_params(self) -> int:
        return self.n_in * self.n_out + self.n_out

    def _bind(self, model, index):
        if self._model is not None and self._model is not model:
            raise ValueError("this Dense layer already belongs to another model; create a new layer")
        self._model, self._index = model, index

    def _view(self, buffer_name, which):
        if self._model is None:
            raise AttributeError("a Dense layer has no weights until it is part of a Sequential model")
        return self._model._layer_view(getattr(self._model, buffer_name), self._index, which)

    @property
    def W(self):
        """Weights, shape (n_in, n_out): a view into ``model.params``; assigning copies into it
        (an array of exactly that shape and the model's dtype, else ``ValueError``)."""
        return self._view("params", "W")

    @W.setter
    def W(self, value):
        from fastgrad.model import assign_into
        assign_into(self._view("params", "W"), value, "W")

    @property
    def b(self):
        """Bias, shape (n_out,): a view into ``model.params``; assigning copies into it."""
        return self._view("params", "b")

    @b.setter
    def b(self, value):
        from fastgrad.model import assign_into
        assign_into(self._view("params", "b"), value, "b")

    @property
    def grad_W(self):
        return self._view("grads", "W")

    @property
    def grad_b(self):
        return self._view("grads", "b")

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "init": self.init, "activation_options": self.activation_options}

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.activation_options.items())
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{opts})"


def _python_scalar(value):
    """A NumPy scalar as the Python number it holds (so configs serialize as JSON); else unchanged."""
    return value.item() if isinstance(value, np.generic) else value

"""The Dense layer: y = act(x @ W + b), W and b views into the model's flat buffer."""
from __future__ import annotations

from fastgrad import init as _init
from fastgrad._checks import as_int, check_choice
from fastgrad.custom import ActivationFn
from fastgrad.layers._base import Layer, activation_options_property, layer_activation, python_scalar, view_property
from fastgrad.optim._validate import flag

RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "silu", "swish")


class Dense(Layer):
    """y = act(x @ W + b) with W (n_in, n_out) and b (n_out,).

    ``Dense(n_in, n_out)``, or ``Dense(n_out)`` to take ``n_in`` from the layer before (or
    from ``Sequential(..., n_in=...)`` for the first layer). ``activation``: any name of
    ``fastgrad.functional.ACTIVATIONS``, its options as keywords (``Dense(8, 8,
    "leaky_relu", alpha=0.2)``). ``use_bias=False``: y = act(x @ W), no b (as
    ``torch.nn.Linear(bias=False)``, Keras's ``use_bias``). ``init``: a name of
    ``fastgrad.init.INITIALIZERS`` (or Keras's ``glorot_*`` and PyTorch's ``kaiming_*`` names
    for them, stored as ``xavier_*`` and ``he_*``) or ``"auto"`` (He normal for the ReLU family -- relu,
    leaky_relu, elu, gelu, silu -- and Xavier uniform otherwise); biases start at 0.
    Once the layer is part of a :class:`~fastgrad.Sequential`, ``W``, ``b``, ``grad_W``
    and ``grad_b`` are views into the model's flat ``params``/``grads`` (``b`` is None
    without a bias).
    """

    _fixed = Layer._fixed + ("activation", "activation_options", "code", "p1", "p2", "init", "use_bias")

    def __init__(self, n_in, n_out=None, activation="identity", init="auto", use_bias=True,
                 **activation_options):
        super().__init__()
        if isinstance(n_out, (str, ActivationFn)):  # Dense(n_out, "relu")
            n_out, activation = None, n_out
        if n_out is None:
            n_in, n_out = None, n_in
        activation_options = {k: python_scalar(v) for k, v in activation_options.items()}
        self.n_in = None if n_in is None else as_int(n_in, "n_in", low=1)
        self.n_out = as_int(n_out, "n_out", low=1)
        self.code, self.p1, self.p2 = layer_activation(activation, activation_options)
        self.activation = activation
        self._activation_options = dict(activation_options)
        check_choice(init, "init", ("auto",) + tuple(_init.INITIALIZERS) + tuple(_init.INITIALIZER_ALIASES))
        self.init = _init.INITIALIZER_ALIASES.get(init, init)
        self.use_bias = flag(use_bias, "use_bias")

    @property
    def initializer(self) -> str:
        if self.init != "auto":
            return self.init
        return "he_normal" if self.activation in RELU_FAMILY else "xavier_uniform"

    @property
    def n_params(self) -> int:
        if self.n_in is None:
            raise AttributeError("n_params is not known until n_in is (the layer is part of a model)")
        return self.n_in * self.n_out + (self.n_out if self.use_bias else 0)

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import DENSE
        self._set_width(n_in, builder)
        w = builder.take_params(self.n_in * self.n_out)
        b = builder.take_params(self.n_out) if self.use_bias else -1
        builder.add(self, DENSE, self.n_in, self.n_out, act=self.code, scalars=(self.p1, self.p2), w_off=w, b_off=b)
        return self.n_out

    def _view(self, buffer_name, which):
        from fastgrad.kernels.program import B_OFF, W_OFF
        row = self._program_row()
        buffer = getattr(self._model, buffer_name)
        if which == "W":
            return buffer[row[W_OFF]:row[W_OFF] + self.n_in * self.n_out].reshape(self.n_in, self.n_out)
        if row[B_OFF] < 0:
            return None
        return buffer[row[B_OFF]:row[B_OFF] + self.n_out]

    W = view_property("params", "W", "Weights, shape (n_in, n_out): a view into ``model.params``; assigning "
                      "copies into it (an array of exactly that shape and the model's dtype, else ``ValueError``).")
    b = view_property("params", "b", "Bias, shape (n_out,): a view into ``model.params`` (None when "
                      "``use_bias=False``); assigning copies into it.")
    grad_W = view_property("grads", "W", "d loss / d W of the last gradient computed, a view into ``model.grads``.")
    grad_b = view_property("grads", "b", "d loss / d b, a view into ``model.grads`` (None without a bias).")

    activation_options = activation_options_property()

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation, "init": self.init,
                "use_bias": self.use_bias, "activation_options": self.activation_options}

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.activation_options.items())
        bias = "" if self.use_bias else ", use_bias=False"
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{opts}{bias})"

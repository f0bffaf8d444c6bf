"""Activation and Dropout: layers without parameters that keep their input's width."""
from __future__ import annotations

from fastgrad._checks import as_scalar
from fastgrad.layers._base import Layer, activation_options_property, layer_activation, python_scalar


def _check_p(value):
    return as_scalar(value, "p", low=0.0, high=1.0)


class _Elementwise(Layer):
    """A layer whose output width is its input width, inferred from the layer before."""

    def _width(self, n_in, builder):
        self._set_width(n_in, builder)
        self.n_out = self.n_in
        return self.n_in


class Activation(_Elementwise):
    """a = act(x) as a layer of its own (Keras's ``Activation``, PyTorch's ``nn.ReLU`` etc.).

    ``name``: any of ``fastgrad.functional.ACTIVATIONS`` (softmax and log_softmax act on
    each row), its options as keywords (``Activation("leaky_relu", alpha=0.2)``). Input
    and output (m, n), n taken from the layer before. No parameters.
    """

    _fixed = Layer._fixed + ("activation", "activation_options", "code", "p1", "p2")

    def __init__(self, name, **options):
        super().__init__()
        options = {k: python_scalar(v) for k, v in options.items()}
        self.code, self.p1, self.p2 = layer_activation(name, options)
        self.activation = name
        self._activation_options = dict(options)

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import ACTIVATION
        n = self._width(n_in, builder)
        builder.add(self, ACTIVATION, n, n, act=self.code, scalars=(self.p1, self.p2))
        return n

    activation_options = activation_options_property()

    def config(self) -> dict:
        return {"activation": self.activation, "activation_options": self.activation_options}

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.activation_options.items())
        return f"Activation({self.activation!r}{opts})"


class Dropout(_Elementwise):
    """Inverted dropout, as ``torch.nn.Dropout(p)``: in training each entry is zeroed with
    probability ``p`` and the kept ones are scaled by 1/(1-p) (so the expected output is the
    input); in evaluation the identity. ``p`` in [0, 1].

    The mask of a batch is a function of (the model's ``dropout_seed``, the optimizer step,
    the op's index, the entry's index) through a counter-based hash
    (:mod:`fastgrad.kernels.dropout`): a seeded ``fit`` gives the same masks in every run,
    process and thread count. No parameters. ``p`` may be changed on a built model (the next
    batch uses it), as in PyTorch.
    """

    _tunable = {"p": (0, _check_p)}

    def __init__(self, p=0.5):
        super().__init__()
        self.p = _check_p(p)

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import DROPOUT
        n = self._width(n_in, builder)
        builder.add(self, DROPOUT, n, n, scalars=(self.p, 0.0))
        return n

    def config(self) -> dict:
        return {"p": self.p}

    def __repr__(self):
        return f"Dropout(p={self.p})"

"""Residual: a block of layers with a skip connection, out = x + block(x)."""
from __future__ import annotations

from fastgrad.layers._base import Layer


class Residual(Layer):
    """out = x + block(x), ``block`` the given layers in order (He et al., "Deep Residual
    Learning for Image Recognition", 2015). The block's output width must equal its input
    width (checked when the model is built: ``ValueError``). The layers inside keep their
    own views and parameters; the Residual itself has none of its own.
    """

    _fixed = Layer._fixed + ("layers",)

    def __init__(self, layers):
        super().__init__()
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(x, Layer) for x in layers):
            raise ValueError("Residual takes a non-empty list of fastgrad layers, got "
                             f"{type(layers).__name__}")
        self.layers = list(layers)

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def n_state(self) -> int:
        return sum(layer.n_state for layer in self.layers)

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import ADD, FORK
        self._set_width(n_in, builder)
        fork = builder.add(self, FORK, self.n_in, self.n_in)
        width = self.n_in
        outer = builder.where
        for k, layer in enumerate(self.layers):
            builder.where, builder.before = f"{outer}.{k}", (f"{outer}.{k - 1}" if k else "the block's input")
            width = layer._emit(builder, width)
        builder.where = outer
        if width != self.n_in:
            raise ValueError(f"a Residual block's output width must equal its input width {self.n_in}, "
                             f"its last layer gives {width}")
        builder.add(None, ADD, width, width, ref=fork)
        builder.link(fork)
        self.n_out = width
        return width

    def _leaves(self):
        return [self] + [leaf for layer in self.layers for leaf in layer._leaves()]

    def config(self) -> dict:
        return {"layers": [{"kind": type(layer).__name__, **layer.config()} for layer in self.layers]}

    def __repr__(self):
        return f"Residual({self.layers!r})"

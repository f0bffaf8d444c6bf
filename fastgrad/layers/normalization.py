"""LayerNorm and BatchNorm1d, with PyTorch's definitions and defaults."""
from __future__ import annotations

from fastgrad._checks import as_int, as_scalar
from fastgrad.layers._base import Layer, view_property
from fastgrad.optim._validate import flag


def _check_eps(value):
    return as_scalar(value, "eps", low=0.0, low_open=True)


def _check_momentum(value):
    return as_scalar(value, "momentum", low=0.0, high=1.0)


class _Norm(Layer):
    """Shared by the two norms: width n, optional affine weight (starts at 1) and bias (at 0).
    ``eps`` (and BatchNorm1d's ``momentum``) may be changed on a built model, as in PyTorch."""
    _tunable = {"eps": (0, _check_eps)}
    _fixed = Layer._fixed + ("affine",)

    def __init__(self, n, eps, affine):
        super().__init__()
        self.n_in = self.n_out = as_int(n, "n", low=1)
        self.eps = _check_eps(eps)
        self.affine = flag(affine, self._affine_name)

    @property
    def n_params(self) -> int:
        return 2 * self.n_out if self.affine else 0

    def _emit_norm(self, builder, n_in, op, scalars, n_state):
        self._set_width(n_in, builder)
        w = builder.take_params(self.n_out, fill=1.0) if self.affine else -1
        b = builder.take_params(self.n_out) if self.affine else -1
        s = builder.take_state(n_state, fills=(0.0, 1.0)) if n_state else -1
        builder.add(self, op, self.n_in, self.n_out, scalars=scalars, w_off=w, b_off=b, s_off=s)
        return self.n_out

    def _view(self, buffer_name, which):
        from fastgrad.kernels.program import B_OFF, S_OFF, W_OFF
        row = self._program_row()
        n = self.n_out
        if which in ("running_mean", "running_var"):
            if row[S_OFF] < 0:
                return None
            off = row[S_OFF] + (0 if which == "running_mean" else n)
            return self._model.state[off:off + n]
        off = row[W_OFF] if which == "weight" else row[B_OFF]
        return None if off < 0 else getattr(self._model, buffer_name)[off:off + n]

    weight = view_property("params", "weight", "The affine weight (n,) (PyTorch's ``weight``, gamma): a view "
                           "into ``model.params``, None without affine; assigning copies into it.")
    bias = view_property("params", "bias", "The affine bias (n,) (beta): a view into ``model.params``, None "
                         "without affine; assigning copies into it.")
    grad_weight = view_property("grads", "weight", "d loss / d weight, a view into ``model.grads``.")
    grad_bias = view_property("grads", "bias", "d loss / d bias, a view into ``model.grads``.")


class LayerNorm(_Norm):
    """Layer normalization over the features of each row, as ``torch.nn.LayerNorm(n)``.

    y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, mean and (biased) variance
    over the n features of each row; the same in training and evaluation.
    ``elementwise_affine=False``: no weight and bias. Input and output (m, n).
    Source: Ba, Kiros and Hinton, "Layer Normalization" (2016); PyTorch's module.
    """
    _affine_name = "elementwise_affine"
    _fixed = _Norm._fixed + ("elementwise_affine",)

    def __init__(self, n, eps=1e-5, elementwise_affine=True):
        super().__init__(n, eps, elementwise_affine)

    @property
    def elementwise_affine(self) -> bool:
        """PyTorch's name of ``affine`` (fixed once the layer is part of a model)."""
        return self.affine

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import LAYER_NORM
        return self._emit_norm(builder, n_in, LAYER_NORM, (self.eps, 0.0), 0)

    def config(self) -> dict:
        return {"n": self.n_out, "eps": self.eps, "elementwise_affine": self.affine}

    def __repr__(self):
        extra = "" if self.affine else ", elementwise_affine=False"
        return f"LayerNorm({self.n_out}, eps={self.eps:g}{extra})"


class BatchNorm1d(_Norm):
    """Batch normalization of each feature, as ``torch.nn.BatchNorm1d(n)`` on (m, n) input.

    Training (``fit``, ``train_step``, or after ``model.train()``): each column is
    normalized with the batch's mean and biased variance, y = (x - mean) / sqrt(var + eps)
    * weight + bias; ``fit``/``train_step`` also update the running statistics,
    ``running = (1 - momentum) * running + momentum * batch`` with the unbiased variance
    (m / (m - 1) times the biased one) -- PyTorch's rule. A training batch of one row has
    no variance: ``fit`` refuses a batch size leaving one (PyTorch raises too).
    Evaluation (``predict``, ``evaluate``): the running statistics, which live in
    ``model.state`` (``running_mean`` starts at 0, ``running_var`` at 1): saved and loaded,
    never touched by the optimizer, the l1/l2 penalty, clipping or ``model.hessian``.
    ``track_running_stats=False``: batch statistics in evaluation too, no running
    statistics; ``predict``/``evaluate``/``forward`` then take X as one batch (as
    ``module(X)`` in PyTorch), whatever their ``batch_size``, and refuse X of one row. ``affine=False``: no weight and bias.
    Source: Ioffe and Szegedy, "Batch Normalization" (2015); PyTorch's module.
    """
    _affine_name = "affine"

    _tunable = {"eps": (0, _check_eps), "momentum": (1, _check_momentum)}
    _fixed = _Norm._fixed + ("track_running_stats",)

    def __init__(self, n, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(n, eps, affine)
        self.momentum = _check_momentum(momentum)
        self.track_running_stats = flag(track_running_stats, "track_running_stats")

    @property
    def n_state(self) -> int:
        return 2 * self.n_out if self.track_running_stats else 0

    def _emit(self, builder, n_in):
        from fastgrad.kernels.program import BATCH_NORM
        return self._emit_norm(builder, n_in, BATCH_NORM, (self.eps, self.momentum), self.n_state)

    running_mean = view_property("state", "running_mean", "Running mean (n,): a view into ``model.state`` "
                                 "(None without track_running_stats); assigning copies into it.")
    running_var = view_property("state", "running_var", "Running unbiased variance (n,): a view into "
                                "``model.state``; assigning copies into it.")

    def config(self) -> dict:
        return {"n": self.n_out, "eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                "track_running_stats": self.track_running_stats}

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in (("affine", self.affine),
                                                  ("track_running_stats", self.track_running_stats)) if not v)
        return f"BatchNorm1d({self.n_out}, eps={self.eps:g}, momentum={self.momentum:g}{extra})"

"""A user's own loss and activation, run inside the compiled training loop.

``Sequential(..., loss=fastgrad.Loss(value, gradient))`` and ``Dense(n, activation=
fastgrad.ActivationFn(forward, backward))`` (or ``Activation(ActivationFn(...))``) take the
user's ``@numba.njit`` functions into the compiled epoch: no Python call per batch. The
built-in kernels keep their disk cache; a model with a user's function compiles its own copy
of the training loop once per process, (loss, activation) pair and dtype (about as long as a
first ``fit`` with a cold cache; it is not cached on disk, because Numba cannot find code
that calls a function created at run time again in a new process). See
:mod:`fastgrad.kernels.custom`.

The arrays a user's function receives are views into the model's work buffers (inside the
compiled loop they carry no reference count: ``_jit.matrix_view``), valid only during the call:
read and write them there, but do not keep them (in a global, or from an ``objmode`` block);
copy what must outlive the call.

Both pairs are checked at the model's construction: on a random float64 batch, the
gradient against finite differences of the value (:func:`fastgrad.diff.check_grad`); a
mismatch raises ``ValueError`` naming the worst entry.
"""
from __future__ import annotations

import re

import numpy as np

from fastgrad._jit import is_compiled


# What each function is called with (in messages).
SIGNATURES = {"value": "value(out, target) -> float", "gradient": "gradient(out, target, grad_out)",
              "forward": "forward(z, a)", "backward": "backward(z, grad_a, grad_z)"}
# Pairs of functions -> the training functions specialized with them, per backend: models
# built with equal pairs (or copies, or unpickled in this process) share one compiled loop.
_SPECIALIZED = {}


def _check_function(fn, name, owner):
    if not callable(fn):
        raise TypeError(f"{owner}'s {name} must be a function, got {type(fn).__name__}")


class _UserPair:
    _names: tuple = ()

    def __init__(self, first, second, name=None, check=True):
        cls = type(self).__name__
        _check_function(first, self._names[0], cls)
        _check_function(second, self._names[1], cls)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}'s name must be a string, got {type(name).__name__}")
        if not isinstance(check, bool):
            raise TypeError(f"{cls}'s check must be True or False, got {check!r}")
        self.name = name or getattr(first, "__name__", cls.lower())
        self.check = check

    @property
    def functions(self) -> tuple:
        raise NotImplementedError

    def verify(self, n, dtype=np.float64, m=4, seed=0):
        """The check at the model's construction: on a random float64 (m, n) batch x ~ N(0, 1)
        with its partner (a loss's targets ~ U(0, 1), an activation's grad_a ~ N(0, 1)), the
        gradient against finite differences of the scalar (:func:`fastgrad.diff.check_grad`);
        ``ValueError`` naming the worst entry when they differ or are not finite. Then both
        functions are called once on the batch in the model's ``dtype``, so that code that
        does not compile for it fails here, naming the function. A function that raises or
        does not take its arguments gives ``TypeError`` (``ValueError`` if it raised one)
        naming it and its expected signature."""
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(m, n))
        partner = np.ascontiguousarray(self._partner(rng, (m, n)))

        def f(flat):
            return self._scalar(np.ascontiguousarray(flat.reshape(m, n)), partner)

        def grad(flat):
            g = np.zeros((m, n))
            self._gradient_into(np.ascontiguousarray(flat.reshape(m, n)), partner, g)
            return g.ravel()
        _report(self, f, grad, x.ravel(), (m, n), *self._names)
        if np.dtype(dtype) != np.float64:
            xt, pt = x.astype(dtype), partner.astype(dtype)
            self._scalar(xt, pt)
            self._gradient_into(xt, pt, np.zeros_like(xt))

    def _call(self, label, fn, *args):
        """``fn(*args)``; what it raises is raised again naming this pair, ``label`` and its signature."""
        try:
            return fn(*args)
        except Exception as exc:
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
            cls = ValueError if isinstance(exc, ValueError) else TypeError
            raise cls(f"{self!r}: {label} raised {type(exc).__name__} on a random {args[0].dtype} batch of shape "
                      f"{args[0].shape}; it is called as {SIGNATURES[label]}: {lines[0][:300] if lines else ''}"
                      ) from exc

    def require_compiled(self):
        """``TypeError`` unless both functions are Numba-compiled (the compiled backend needs them)."""
        for label, fn in zip(self._names, self.functions):
            if not is_compiled(fn):
                raise TypeError(f"{type(self).__name__} {self.name!r}: {label} must be a @numba.njit function "
                                "to run inside the compiled training loop, got a plain Python function "
                                "(backend='reference' takes either)")

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other):  # the same functions: the same pair (one compiled loop serves both)
        return type(other) is type(self) and all(a is b for a, b in zip(self.functions, other.functions))

    def __hash__(self):
        return hash((type(self), *map(id, self.functions)))

    def __reduce__(self):  # a new process compiles its own training loop for the pair
        return (type(self), (*self.functions, self.name, self.check))

    def __copy__(self):  # a pair of functions is a value: copies of a model share it and its compiled loop
        return self

    def __deepcopy__(self, memo):
        return self


class Loss(_UserPair):
    """A user's loss for :class:`~fastgrad.Sequential`.

    ``value(out, target) -> float``: the loss of a batch, ``out`` the last layer's output
    (m, k) and ``target`` the targets (m, k), both C-contiguous in the model's dtype (float32
    or float64; targets are taken as floats, 1-D ``y`` becomes one column). Return the batch
    MEAN (PyTorch's ``reduction="mean"``) so that the loss does not scale with the batch size.
    ``gradient(out, target, grad_out)``: writes d value / d out (m, k) into ``grad_out``.
    Both must be ``@numba.njit`` functions for the compiled backend (plain Python functions
    serve ``backend="reference"``).

    ``fit`` logs the value averaged over batches (weighted by their rows), ``evaluate`` the
    same over its batches; ``predict`` returns ``out`` unchanged. Sample and class weights,
    accuracy and the classification metrics are not available (the loss's meaning is the
    user's); regression metrics are. A model with a Loss pickles (Numba's functions pickle)
    but cannot be saved to a file, which never stores code.

    ``check=True``: at the model's construction, ``gradient`` is compared with finite
    differences of ``value`` on a random float64 batch (out ~ N(0, 1), target ~ U(0, 1));
    ``ValueError`` with the worst entry when they differ. Raises ``TypeError`` for
    arguments that are not functions.
    """

    _names = ("value", "gradient")

    def __init__(self, value, gradient, name=None, check=True):
        super().__init__(value, gradient, name, check)
        self.value = value
        self.gradient = gradient

    @property
    def functions(self) -> tuple:
        return self.value, self.gradient

    @staticmethod
    def _partner(rng, shape):  # the targets
        return rng.uniform(size=shape)

    def _scalar(self, out, target):
        value = self._call("value", self.value, out, target)
        # a real number: not None (np.ndim and np.isrealobj both pass None), a bool, a string or an array
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{self!r}: value must return a float (the batch's loss), got "
                            f"{type(value).__name__}{f' of shape {np.shape(value)}' if np.ndim(value) else ''}")
        return float(value)

    def _gradient_into(self, out, target, grad):
        self._call("gradient", self.gradient, out, target, grad)


class ActivationFn(_UserPair):
    """A user's activation for :class:`~fastgrad.Dense` and :class:`~fastgrad.Activation`.

    ``forward(z, a)``: writes a = f(z); ``backward(z, grad_a, grad_z)``: writes grad_z =
    grad_a * f'(z) (for a row-wise f such as a softmax, the Jacobian-vector product of each
    row). All arrays (m, n) in the model's dtype, C-contiguous; ``backward`` gets the
    layer's input ``z``, not its output. ``@numba.njit`` functions for the compiled backend.
    A model may use one ActivationFn (in any number of layers). Initialization of a Dense
    layer with one: ``xavier_uniform`` unless ``init`` says otherwise.

    ``check=True``: at the model's construction, ``backward`` is compared with finite
    differences of ``sum(grad_a * f(z))`` on a random float64 (4, n) batch; ``ValueError``
    with the worst entry when they differ.
    """

    _names = ("forward", "backward")

    def __init__(self, forward, backward, name=None, check=True):
        super().__init__(forward, backward, name, check)
        self.forward = forward
        self.backward = backward

    @property
    def functions(self) -> tuple:
        return self.forward, self.backward

    @staticmethod
    def _partner(rng, shape):  # grad_a
        return rng.normal(size=shape)

    def _scalar(self, z, grad_a):
        a = np.zeros_like(z)
        self._call("forward", self.forward, z, a)
        return float(np.sum(grad_a * a))

    def _gradient_into(self, z, grad_a, grad_z):
        self._call("backward", self.backward, z, grad_a, grad_z)


def _report(pair, f, grad, x, shape, first, second):
    """:func:`fastgrad.diff.check_grad` of ``grad`` against ``f`` at ``x``; ``ValueError`` when
    either is not finite at ``x`` or they differ."""
    from fastgrad.diff import check_grad
    if not (np.isfinite(f(x)) and np.all(np.isfinite(grad(x)))):
        raise ValueError(f"{pair!r}: the check on a random float64 batch {shape} met a non-finite value; "
                         f"make {first} and {second} finite there, or pass check=False")
    result = check_grad(f, grad, x)
    if not result.ok:
        i = result.worst_index
        raise ValueError(f"{pair!r}: {second} does not match finite differences of {first} on a random float64 "
                         f"batch {shape}: worst entry {tuple(int(v) for v in np.unravel_index(i, shape))}, "
                         f"{second} gives {result.analytic[i]:.10g}, finite differences {result.numeric[i]:.10g} "
                         f"({result})")


def user_functions(model_loss, layers):
    """(the Loss or None, the one ActivationFn or None) of a model; ``ValueError`` for two
    ActivationFn with different functions (objects wrapping the same two functions are one)."""
    acts = []
    for layer in layers:
        act = getattr(layer, "activation", None)
        if isinstance(act, ActivationFn) and act not in acts:
            acts.append(act)
    if len(acts) > 1:
        raise ValueError(f"a model may use one ActivationFn (one pair of functions, in any number of layers), got "
                         f"{len(acts)}: {', '.join(map(repr, acts))}")
    return (model_loss if isinstance(model_loss, Loss) else None), (acts[0] if acts else None)


def model_functions(model):
    """(the model's Loss or None, its ActivationFn or None)."""
    return user_functions(model.loss, [leaf for layer in model.layers for leaf in layer._leaves()])


def check_model_functions(model):
    """A model's user functions: compiled for the compiled backend, and their gradient checked on
    a random batch of the model's widths in its dtype (``Pair.verify``)."""
    loss_fn, act_fn = model_functions(model)
    if loss_fn is not None:
        _check_for(model, loss_fn, model.n_out)
    if act_fn is not None:
        leaves = [leaf for layer in model.layers for leaf in layer._leaves()]
        _check_for(model, act_fn, next(leaf.n_out for leaf in leaves if getattr(leaf, "activation", None) is act_fn))


def _check_for(model, pair, n):
    if model.backend == "compiled":
        pair.require_compiled()
    if pair.check:
        pair.verify(int(n), model.dtype)


def training_functions(backend, loss, activation):
    """The training functions of ``backend`` ("compiled" or "reference") specialized with the
    user's loss and/or activation, built once per process and pair of functions."""
    key = (backend, loss, activation)
    if key not in _SPECIALIZED:
        if backend == "compiled":
            from fastgrad.kernels.custom import compiled_train
        else:
            from fastgrad.reference.custom import compiled_train
        _SPECIALIZED[key] = compiled_train(None if loss is None else loss.functions,
                                           None if activation is None else activation.functions)
    return _SPECIALIZED[key]

"""A user's loss and activation inside the compiled training loop (``fastgrad.Loss``,
``fastgrad.ActivationFn``).

The interpreter of :mod:`fastgrad.kernels.train` is compiled and cached on disk with the
built-in losses and activations only. A model with a user's function gets its own copy of
every function whose code reaches the one replaced -- ``_output_loss`` for a loss,
``activation_layer_forward``/``_backward`` for an activation (and through them the Dense
op, the op dispatch, ``forward``, ``train_epoch`` ...) -- rebuilt from the same Python code
with the replacement in its globals (:func:`specialize`). The built-in code is untouched and
keeps its cache; the copies are compiled in the process that uses them, once per (loss,
activation) pair and dtype, and not kept on disk: Numba cannot find a cache entry again for
code that calls a function created at run time (it keys it on the function object).

The same walk serves the NumPy twin (:mod:`fastgrad.reference.train`): plain Python
functions are copied with the replacement in their globals.

The user's functions (``@njit``, or plain Python for the reference backend):

* loss ``value(out, target) -> float`` and ``gradient(out, target, grad_out)``: ``out`` and
  ``target`` (m, k) in the model's dtype; ``gradient`` writes d value / d out into
  ``grad_out`` (m, k). ``value`` is the batch's loss (a mean over rows, for losses that
  do not depend on the batch size);
* activation ``forward(z, a)`` writes a = f(z), and ``backward(z, grad_a, grad_z)`` writes
  grad_z = grad_a * df/dz (or the Jacobian product of a row-wise f), all (m, n).
"""
import types

import numpy as np

from fastgrad._jit import kernel, recompiled
from fastgrad.kernels import activation_layer, train
from fastgrad.kernels.program import CUSTOM_ACTIVATION


def _code_of(obj):
    """The Python function behind a Numba dispatcher or a plain function, else None."""
    func = getattr(obj, "py_func", obj)
    return func if isinstance(func, types.FunctionType) else None


def specialize(module, replacements):
    """A namespace with every public and private function of ``module``, where each function
    whose code reaches (through the globals it names, transitively) a key of
    ``replacements`` (original function or dispatcher -> its replacement) is a copy built
    with the replacements in its globals; the others are the module's own objects."""
    rebuilt = {id(k): v for k, v in replacements.items()}
    known = {}  # id -> whether it reaches a replacement (False while being visited: no cycles)

    def affected(obj):
        if id(obj) in rebuilt:
            return True
        func = _code_of(obj)
        if func is None or not func.__module__.startswith("fastgrad."):
            return False
        if id(obj) not in known:
            known[id(obj)] = False
            names = [func.__globals__.get(n) for n in func.__code__.co_names]
            known[id(obj)] = any(affected(o) for o in names if o is not None and _code_of(o) is not None)
        return known[id(obj)]

    def build(obj):
        if id(obj) in rebuilt:
            return rebuilt[id(obj)]
        func = _code_of(obj)
        new_globals = dict(func.__globals__)
        for name in func.__code__.co_names:
            target = func.__globals__.get(name)
            if target is not None and _code_of(target) is not None and affected(target):
                new_globals[name] = build(target)
        copy = types.FunctionType(func.__code__, new_globals, func.__name__, func.__defaults__, func.__closure__)
        copy.__doc__, copy.__qualname__, copy.__module__ = func.__doc__, func.__qualname__, func.__module__
        copy.__kwdefaults__ = func.__kwdefaults__
        rebuilt[id(obj)] = recompiled(obj, copy) if obj is not func else copy
        return rebuilt[id(obj)]

    namespace = types.SimpleNamespace()
    for name, obj in vars(module).items():
        if _code_of(obj) is not None and affected(obj):
            obj = build(obj)
        setattr(namespace, name, obj)
    return namespace


def loss_replacement(value, gradient):
    """``kernels.train._output_loss`` for a user's loss (no sample weights: Python refuses them)."""
    @kernel(cache=False)
    def output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
        gradient(out, yf, grad_out)
        return np.float64(value(out, yf))
    return output_loss


def activation_replacements(forward, backward):
    """``activation_layer_forward``/``_backward`` that run the user's functions for
    :data:`CUSTOM_ACTIVATION` and the built-in ones for every other code."""
    builtin_forward = activation_layer.activation_layer_forward
    builtin_backward = activation_layer.activation_layer_backward

    @kernel(cache=False)
    def activation_forward(x, a, code, p1, p2):
        if code == CUSTOM_ACTIVATION:
            forward(x, a)
        else:
            builtin_forward(x, a, code, p1, p2)

    @kernel(cache=False)
    def activation_backward(x, grad_a, grad_x, code, p1, p2):
        if code == CUSTOM_ACTIVATION:
            backward(x, grad_a, grad_x)
        else:
            builtin_backward(x, grad_a, grad_x, code, p1, p2)
    return {builtin_forward: activation_forward, builtin_backward: activation_backward}


def specialized(train_module, make_loss, make_activation, loss, activation):
    """``train_module`` specialized with a user's loss ``(value, gradient)`` (replacing its
    ``_output_loss`` by ``make_loss(value, gradient)``) and/or activation ``(forward,
    backward)`` (``make_activation(forward, backward)``); either may be None."""
    replacements = {}
    if loss is not None:
        replacements[train_module._output_loss] = make_loss(*loss)
    if activation is not None:
        replacements.update(make_activation(*activation))
    return specialize(train_module, replacements)


def compiled_train(loss=None, activation=None):
    """:mod:`kernels.train` with a user's loss and/or activation (see :func:`specialized`)."""
    return specialized(train, loss_replacement, activation_replacements, loss, activation)

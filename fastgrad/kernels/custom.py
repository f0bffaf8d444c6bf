"""A user's loss and activation inside the compiled training loop (``fastgrad.Loss``,
``fastgrad.ActivationFn``).

The compiled training loop (:mod:`fastgrad.kernels.train`) calls its loss and every
activation by address (kernels/slots.py), so a user's function needs no copy of the loop: it
is wrapped as a kernel of the slot's signature (:func:`loss_kernel`,
:func:`activation_kernels`), compiled in the process that uses it, once per function and
dtype, and not kept on disk (Numba cannot find a cache entry again for code that calls a
function created at run time: it keys it on the function object). The cached loop and the
built-in kernels are untouched.

The NumPy twin (:mod:`fastgrad.reference.custom`) copies :mod:`fastgrad.reference.train`'s
plain Python functions with the replacement in their globals (:func:`specialize`).

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
from fastgrad.kernels import train


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


def specialized(train_module, make_loss, make_activation, loss, activation):
    """``train_module`` specialized with a user's loss ``(value, gradient)`` (replacing its
    ``_output_loss`` by ``make_loss(value, gradient)``) and/or activation ``(forward,
    backward)`` (``make_activation(forward, backward)``); either may be None. (The NumPy
    twin's walk; the compiled loop takes the user's kernels by address instead.)"""
    replacements = {}
    if loss is not None:
        replacements[train_module._output_loss] = make_loss(*loss)
    if activation is not None:
        replacements.update(make_activation(*activation))
    return specialize(train_module, replacements)


def loss_kernel(value, gradient):
    """A user's loss as the training loop's OUTPUT_LOSS kernel (kernels/slots.py; no sample
    weights: Python refuses them)."""
    @kernel(cache=False)
    def output_loss(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param):
        gradient(out, yf, grad_out)
        return np.float64(value(out, yf))
    return output_loss


def activation_kernels(forward, backward):
    """A user's activation as the loop's ACT_FORWARD and ACT_BACKWARD kernels."""
    @kernel(cache=False)
    def activation_forward(x, a, p1, p2):
        forward(x, a)

    @kernel(cache=False)
    def activation_backward(x, grad_a, grad_x, p1, p2):
        backward(x, grad_a, grad_x)
    return activation_forward, activation_backward


def compiled_train(loss=None, activation=None):
    """:mod:`kernels.train`'s functions, with a user's loss ``(value, gradient)`` and/or
    activation ``(forward, backward)`` as compiled kernels beside them: ``custom_loss`` (an
    OUTPUT_LOSS kernel) and ``custom_activation`` (ACT_FORWARD, ACT_BACKWARD), whose addresses
    :mod:`fastgrad.kernels.dispatch` puts where the program names them. The loop itself is the
    cached one: it calls every loss and activation by address."""
    namespace = types.SimpleNamespace(**{k: v for k, v in vars(train).items() if not k.startswith("__")})
    namespace.custom_loss = None if loss is None else loss_kernel(*loss)
    namespace.custom_activation = None if activation is None else activation_kernels(*activation)
    return namespace

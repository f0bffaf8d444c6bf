"""Calls from compiled code to a compiled function chosen at run time, by its address.

Numba links the code of every function a compiled function calls into that function's own
module and optimizes and compiles the whole again: the training loop, which could reach every
layer kind, activation and optimizer, recompiled all of them at each level of the call tree
(a cold first ``fit`` spent ~90 s compiling, most of it code the model never ran). Here the
loop calls an op's kernel through its address instead, as Numba's own first-class functions
do (``numba.experimental.function_type``: the native entry point of a compile result, called
with Numba's calling convention). So each kernel is compiled once, on its own, when a model
first uses it, and is cached on disk on its own; the loop's module holds only the loop.

A :class:`Slot` is one such call site's contract: a name, a return type and the argument
types for each float dtype. Compiled code calls ``slot.call(address, (args...))`` (typed
against the slot's signature: a mismatch is a compile-time error, never a call with the wrong
types), and Python fills the addresses with ``slot.address(dispatcher, dtype)``, which
compiles (or loads) ``dispatcher`` for exactly that signature. Addresses are run-time values,
passed in arrays: cached machine code never holds one.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import types, typeof
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic


class Slot:
    """A call site taking a compiled function by address (see the module doc).

    ``example(dtype)``: a tuple of Python values whose Numba types are the arguments' for
    float dtype ``dtype``; the kernels return nothing, or a float64 with ``returns_float``.
    """

    def __init__(self, name, example, returns_float=False):
        self.name = name
        self.restype = types.float64 if returns_float else types.none
        self._example = example
        self._argtypes = {}
        self._addresses = {}
        self._lock = threading.Lock()
        self.call = _caller(self)

    def argtypes(self, dtype) -> tuple:
        """The Numba argument types of this slot for ``dtype`` (float32 or float64)."""
        key = np.dtype(dtype).name
        if key not in self._argtypes:
            self._argtypes[key] = tuple(types.unliteral(t) for t in typeof(self._example(np.dtype(dtype))).types)
        return self._argtypes[key]

    def address(self, dispatcher, dtype) -> int:
        """The native entry point of ``dispatcher`` compiled (or loaded from the disk cache) for
        this slot's signature in ``dtype``; memoized per process."""
        found = self._addresses.get((dispatcher, dtype))  # (per call: a dtype object as given)
        if found is not None:
            return found
        key = (dispatcher, np.dtype(dtype))
        with self._lock:
            argtypes = self.argtypes(dtype)
            dispatcher.compile(argtypes)
            result = dispatcher.overloads[argtypes]
            if result.signature.return_type != self.restype:
                raise TypeError(f"{dispatcher.py_func.__qualname__} returns {result.signature.return_type} "
                                f"where the {self.name} slot expects {self.restype}")
            addr = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
            if not addr:
                raise RuntimeError(f"no native entry point for {dispatcher.py_func.__qualname__}")
            self._addresses[key] = self._addresses[(dispatcher, dtype)] = addr
            return addr

    def is_ready(self, dispatcher, dtype) -> bool:
        """Whether :meth:`address` would find ``dispatcher``'s code for ``dtype`` without compiling
        it: in this process or in the disk cache (:func:`is_ready`)."""
        return (dispatcher, dtype) in self._addresses or is_ready(dispatcher, self.argtypes(dtype))


def argtypes_of(values) -> tuple:
    """The Numba argument types of a tuple of Python values (literal types made plain), as a
    compiled call with those values would be typed."""
    return tuple(types.unliteral(t) for t in typeof(tuple(values)).types)


def is_ready(dispatcher, argtypes) -> bool:
    """Whether ``dispatcher`` has machine code for ``argtypes`` without compiling: compiled in
    this process, or in its on-disk cache under the current source stamp (read through
    Numba's cache index, a private layout: if it cannot be read, False)."""
    if argtypes in dispatcher.overloads:
        return True
    cache = getattr(dispatcher, "_cache", None)
    try:
        index = cache._cache_file._load_index()
        return cache._index_key(argtypes, dispatcher.targetctx.codegen()) in index
    except Exception:  # noqa: BLE001 - no cache (NullCache), or Numba changed its layout: "not known ready"
        return False


def _float_dtype(argtypes):
    for t in argtypes:
        if isinstance(t, types.Array) and isinstance(t.dtype, types.Float):
            return np.dtype(t.dtype.name)
    return None


def _caller(slot):
    @intrinsic
    def call(typingctx, addr, args):
        if not isinstance(addr, types.Integer) or not isinstance(args, types.BaseTuple):
            return None
        given = tuple(types.unliteral(t) for t in args.types)
        dtype = _float_dtype(given)
        expected = slot.argtypes(dtype) if dtype is not None else None
        if expected != given:
            raise TypingError(f"the {slot.name} slot takes {expected}, got {given}")

        def codegen(context, builder, signature, llargs):
            address, packed = llargs
            address = context.cast(builder, address, signature.args[0], types.int64)
            with cgutils.if_unlikely(builder, cgutils.is_null(builder, address)):  # never a call to 0
                context.call_conv.return_user_exc(builder, ValueError, (f"no kernel address for the {slot.name} slot",))
            values = [context.cast(builder, builder.extract_value(packed, k), args.types[k], expected[k])
                      for k in range(len(expected))]
            fnptr = builder.inttoptr(address, context.call_conv.get_function_type(slot.restype, expected).as_pointer())
            status, result = context.call_conv.call_function(builder, fnptr, slot.restype, expected, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return result if slot.restype != types.none else context.get_dummy_value()
        return slot.restype(addr, args), codegen
    call.__name__ = call.__qualname__ = f"call_{slot.name}"
    return call

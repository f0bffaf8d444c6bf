"""The intrinsics that write LLVM IR directly: row reductions over vector lanes in an order
fixed by the code (``lane_sum``, ``lane_dot``, ``lane_sum_ones_apart``, ``lane_max``) and
borrowed array views without reference counts (``matrix_view``, ``flat_view``). Part of the
package that imports Numba (:mod:`fastgrad._jit`, which re-exports every name here); kernels
import them from ``fastgrad._jit``.
"""
from __future__ import annotations

from numba import types
from numba.extending import intrinsic


ROW_LANES = 16  # the lanes of lane_sum, lane_dot, lane_max and lane_sum_ones_apart: a power of two


def _llvm_major():
    from llvmlite import binding
    return binding.llvm_version_info[0]


def _lane_loop(context, builder, arrays, array_types, start, n, combine, inits, fill):
    """IR of ``accs = combine(accs, loads)`` over the ``n`` elements of each array from flat index
    ``start``, ``ROW_LANES`` at a time: ``loads`` are ``<ROW_LANES x dtype>`` vectors, element i
    in lane i mod ROW_LANES; the last, partial chunk is a masked load whose missing lanes hold
    ``fill`` (no scalar remainder loop, and nothing read past the n elements)."""
    from llvmlite import ir
    from numba.core import cgutils
    elt = context.get_data_type(array_types[0].dtype)
    vec = ir.VectorType(elt, ROW_LANES)
    align = array_types[0].dtype.bitwidth // 8
    datas = [context.make_array(t)(context, builder, a).data for t, a in zip(array_types, arrays)]
    accs = [cgutils.alloca_once_value(builder, init) for init in inits]
    width = ir.Constant(n.type, ROW_LANES)
    full = builder.sdiv(n, width)

    def step(at, load):
        loads = [load(builder.gep(d, [at])) for d in datas]
        for acc, value in zip(accs, combine(builder, [builder.load(a) for a in accs], loads)):
            builder.store(value, acc)

    with cgutils.for_range(builder, full) as loop:
        step(builder.add(start, builder.mul(loop.index, width)),
             lambda p: builder.load(builder.bitcast(p, vec.as_pointer()), align=align))
    left = builder.sub(n, builder.mul(full, width))
    with builder.if_then(builder.icmp_signed(">", left, ir.Constant(n.type, 0))):
        lanes = ir.Constant(ir.VectorType(n.type, ROW_LANES), list(range(ROW_LANES)))
        bound = builder.insert_element(ir.Constant(lanes.type, ir.Undefined), left, ir.Constant(ir.IntType(32), 0))
        bound = builder.shuffle_vector(bound, bound, ir.Constant(ir.VectorType(ir.IntType(32), ROW_LANES), [0] * ROW_LANES))
        mask = builder.icmp_signed("<", lanes, bound)
        # the intrinsic's name carries its pointer type: "p0" where LLVM's pointers are opaque
        # (LLVM 17 on: llvmlite 0.45 on), "p0v16f32" for a typed pointer to the vector before
        vec_name = "v%df%d" % (ROW_LANES, array_types[0].dtype.bitwidth)
        opaque = _llvm_major() >= 17
        masked_load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            vec, [vec.as_pointer(), ir.IntType(32), mask.type, vec]),
            "llvm.masked.load.%s.p0%s" % (vec_name, "" if opaque else vec_name))
        step(builder.add(start, builder.mul(full, width)),
             lambda p: builder.call(masked_load, [builder.bitcast(p, vec.as_pointer()), ir.Constant(ir.IntType(32), align),
                                                  mask, ir.Constant(vec, [fill] * ROW_LANES)]))
    return [builder.load(a) for a in accs]


def _fold_lanes_ir(builder, acc, combine):
    """The lanes combined pairwise, upper half onto lower half, until one is left."""
    from llvmlite import ir
    i32 = ir.IntType(32)
    w = ROW_LANES // 2
    while w >= 1:
        halves = [builder.shuffle_vector(acc, acc, ir.Constant(ir.VectorType(i32, w), list(range(k, k + w))))
                  for k in (0, w)]
        acc = combine(builder, *halves)
        w //= 2
    return builder.extract_element(acc, ir.Constant(i32, 0))


def _c_float_array(x):
    """A C-contiguous float array type (what the lane and view intrinsics take)."""
    return isinstance(x, types.Array) and x.layout == "C" and isinstance(x.dtype, types.Float)


def _lane_args(x, start, n):
    """The arguments of a lane intrinsic: a C-contiguous float array (any rank, addressed flat)
    and two integers of one type (the first element's flat index and the count)."""
    return _c_float_array(x) and isinstance(start, types.Integer) and start == n


def _doubles(value=0.0):
    from llvmlite import ir
    return ir.Constant(ir.VectorType(ir.DoubleType(), ROW_LANES), [value] * ROW_LANES)


def _widen(builder, signature, v):
    """A loaded vector as float64 lanes."""
    return v if signature.args[0].dtype.bitwidth == 64 else builder.fpext(v, _doubles().type)


def _fadd(b, lo, hi):
    return b.fadd(lo, hi)


def _lane_sum_codegen(context, builder, signature, args, products):
    n_arrays = 2 if products else 1

    def add(b, accs, loads):
        term = b.fmul(loads[0], loads[1]) if products else loads[0]
        return [b.fadd(accs[0], _widen(b, signature, term))]
    acc, = _lane_loop(context, builder, args[:n_arrays], signature.args[:n_arrays], args[n_arrays],
                      args[n_arrays + 1], add, [_doubles()], 0.0)
    return _fold_lanes_ir(builder, acc, _fadd)


@intrinsic
def lane_sum(typingctx, x, start, n):
    """In compiled code: the float64 sum of the ``n`` elements of the C-contiguous float array
    ``x`` from flat index ``start`` (a row of a 2-D array is its offset: no view to make), in
    an order fixed by the code, written as LLVM vectors: element i to lane i mod ROW_LANES,
    each lane in order (a last partial chunk masked, its missing lanes adding 0), then the
    lanes added pairwise, upper half onto lower half (``fastgrad.reference.reduce`` has the
    same order in NumPy). Vector code without ``reassoc``: Numba leaves LLVM's SLP vectorizer
    off, so scalar lanes stay scalar, and a loop over a lane array of 16 is unrolled, not
    vectorized. On softmax rows of 100: 4x the speed of the four scalar lanes it replaced."""
    if not _lane_args(x, start, n):
        return None
    return types.float64(x, start, n), lambda c, b, sig, args: _lane_sum_codegen(c, b, sig, args, False)


@intrinsic
def lane_dot(typingctx, x, y, start, n):
    """As :func:`lane_sum`, of the products ``x[i] * y[i]`` (rounded in x's dtype, never fused),
    both arrays from flat index ``start``."""
    if not (_lane_args(x, start, n) and x == y):
        return None
    return types.float64(x, y, start, n), lambda c, b, sig, args: _lane_sum_codegen(c, b, sig, args, True)


@intrinsic
def lane_sum_ones_apart(typingctx, e, start, n):
    """In compiled code: ``(sum of the entries other than 1, number of entries equal to 1)`` of
    the elements :func:`lane_sum` would add, both float64, the sum in its order (each entry
    equal to 1 adds 0; NaN entries are in the sum). For softmax: exp(z - max) is exactly 1 at
    the max, and the sum of the others keeps its relative accuracy when it is small (1 + rest
    would round it away)."""
    if not _lane_args(e, start, n):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), ROW_LANES)
        ones, zeros = ir.Constant(vec, [1.0] * ROW_LANES), ir.Constant(vec, [0.0] * ROW_LANES)

        def add(b, accs, loads):
            v = loads[0]
            unit = b.select(b.fcmp_ordered("==", v, ones), ones, zeros)   # counted in the dtype: exact
            return [b.fadd(accs[0], _widen(b, signature, b.fsub(v, unit))), b.fadd(accs[1], unit)]
        total, count = _lane_loop(context, builder, args[:1], signature.args[:1], args[1], args[2], add,
                                  [_doubles(), zeros], 0.0)
        count = _fold_lanes_ir(builder, count, _fadd)
        if signature.args[0].dtype.bitwidth != 64:
            count = builder.fpext(count, ir.DoubleType())
        return context.make_tuple(builder, signature.return_type, [_fold_lanes_ir(builder, total, _fadd), count])
    return types.UniTuple(types.float64, 2)(e, start, n), codegen


@intrinsic
def lane_max(typingctx, x, start, n):
    """In compiled code: the max of the elements :func:`lane_sum` would add, over its lanes (a max
    is exact in any order). A NaN is never taken (``v > acc`` is false for it); -inf if there
    is nothing else."""
    if not _lane_args(x, start, n):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        vec = ir.VectorType(context.get_data_type(signature.args[0].dtype), ROW_LANES)

        def larger(b, acc, v):
            return b.select(b.fcmp_ordered(">", v, acc), v, acc)
        acc, = _lane_loop(context, builder, args[:1], signature.args[:1], args[1], args[2],
                          lambda b, accs, loads: [larger(b, accs[0], loads[0])],
                          [ir.Constant(vec, [float("-inf")] * ROW_LANES)], float("-inf"))
        return _fold_lanes_ir(builder, acc, larger)
    return x.dtype(x, start, n), codegen


def _borrowed_view(context, builder, src_type, src, offset, shape, out_type):
    """IR of a C-contiguous array of ``out_type`` with ``shape`` over ``src``'s data from flat
    index ``offset``, sharing no reference count (its meminfo and parent are NULL)."""
    from numba.core import cgutils
    from numba.np.arrayobj import populate_array
    data = builder.gep(context.make_array(src_type)(context, builder, src).data, [offset])
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(src_type.dtype)))
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    view = context.make_array(out_type)(context, builder)
    populate_array(view, data=data, shape=cgutils.pack_array(builder, shape),
                   strides=cgutils.pack_array(builder, strides), itemsize=itemsize, meminfo=None)
    return view._getvalue()


@intrinsic
def matrix_view(typingctx, buf, off, m, n):
    """In compiled code: the (m, n) C-contiguous view of the C-contiguous ``buf`` (any rank,
    addressed flat) from flat index ``off`` -- ``buf.reshape(-1)[off:off + m*n].reshape((m, n))``
    without the slice's reference count and the reshape's call (NRT's atomic increments and
    ``numba_attempt_nocopy_reshape`` were 4-5% of a small model's training step). Borrowed: valid
    while ``buf`` is, so only for views that live inside one compiled call (the work buffers'
    blocks); never returned to Python. No bounds check, like the kernels' loops."""
    if not (_c_float_array(buf) and all(isinstance(t, types.Integer) for t in (off, m, n))):
        return None
    out_type = types.Array(buf.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        to_intp = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        return _borrowed_view(context, builder, signature.args[0], args[0], to_intp[0], to_intp[1:], out_type)
    return out_type(buf, off, m, n), codegen


@intrinsic
def flat_view(typingctx, a):
    """In compiled code: the 1-D view of the C-contiguous array ``a`` (``a.reshape(-1)``),
    borrowed as :func:`matrix_view`'s."""
    if not _c_float_array(a):
        return None
    out_type = types.Array(a.dtype, 1, "C")

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        size = context.get_constant(types.intp, 1)
        for extent in cgutils.unpack_tuple(builder, arr.shape, signature.args[0].ndim):
            size = builder.mul(size, extent)
        return _borrowed_view(context, builder, signature.args[0], args[0], context.get_constant(types.intp, 0),
                              [size], out_type)
    return out_type(a), codegen

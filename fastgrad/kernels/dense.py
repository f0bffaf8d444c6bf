"""Dense layer forward and backward: BLAS matrix products plus one fused elementwise pass.

``dense_layer_forward``/``dense_layer_backward`` are the Dense op of a model's program
(kernels/train.py); ``dense_forward``/``dense_backward`` and the elementwise halves
(``forward_after_product``, ``backward_before_products``) serve ``fastgrad.functional``.

Shapes: x (n, n_in), W (n_in, n_out), b (n_out,), z and a (n, n_out); all C-contiguous,
one float dtype. The matrix products are :func:`fastgrad.kernels.gemm.matmul_into`: BLAS
calls on one thread each, cut into pieces fixed by the sizes and ``most`` (the machine's
cores) and spread over Numba's threads, so that results do not depend on the thread count.
"""

from fastgrad._jit import flat_view, inline, kernel, matrix_view, prange
from fastgrad.kernels.activations import IDENTITY, LOG_SOFTMAX, SOFTMAX, backward_range, forward_range
from fastgrad.kernels.gemm import matmul_into
from fastgrad.kernels.slots import call_act_backward, call_act_forward
from fastgrad.kernels.softmax import softmax_backward, softmax_forward
from fastgrad.kernels.util import row_blocks


@inline
def _bias_act_rows(z, b, a, code, p1, p2, lo, hi):
    n_out = z.shape[1]
    zf = z.reshape(-1)
    af = a.reshape(-1)
    for r in range(lo, hi):
        if b.size > 0:  # an empty b: a layer without bias
            for j in range(n_out):
                z[r, j] += b[j]
        forward_range(code, zf[r * n_out:(r + 1) * n_out], af[r * n_out:(r + 1) * n_out], p1, p2)


@kernel(parallel=True)
def bias_activation(z, b, a, code, p1, p2):
    """z += b (row-wise) then a = act(z), in one pass over z."""
    n, n_out = z.shape
    per, nb = row_blocks(n, n_out)
    if nb == 1:
        _bias_act_rows(z, b, a, code, p1, p2, 0, n)
    else:
        for blk in prange(nb):
            _bias_act_rows(z, b, a, code, p1, p2, blk * per, min(n, (blk + 1) * per))


@kernel(parallel=True)
def activation_delta(z, grad_a, delta, code, p1, p2):
    """delta = grad_a * act'(z) over 2-D arrays (row blocks)."""
    n, n_out = z.shape
    zf = z.reshape(-1)
    gf = grad_a.reshape(-1)
    df = delta.reshape(-1)
    per, nb = row_blocks(n, n_out)
    if nb == 1:
        backward_range(code, zf, gf, df, p1, p2)
    else:
        for blk in prange(nb):
            lo = blk * per * n_out
            hi = min(n, (blk + 1) * per) * n_out
            backward_range(code, zf[lo:hi], gf[lo:hi], df[lo:hi], p1, p2)


@inline
def product(x, W, z, most):
    """z (m, n) = x (m, k) @ W (k, n)."""
    matmul_into(flat_view(x), False, flat_view(W), False, flat_view(z), z.shape[0], z.shape[1], x.shape[1], most)


@inline
def weight_products(x, W, delta, grad_x, grad_W, need_grad_x, most):
    """grad_W = x^T delta; grad_x = delta W^T when ``need_grad_x``."""
    m, k = x.shape
    n = delta.shape[1]
    matmul_into(flat_view(x), True, flat_view(delta), False, flat_view(grad_W), k, n, m, most)
    if need_grad_x:
        matmul_into(flat_view(delta), False, flat_view(W), True, flat_view(grad_x), m, k, n, most)


@inline
def column_sums(delta, out):
    """out[j] = sum_r delta[r, j] (the bias gradient)."""
    n, n_out = delta.shape
    for j in range(n_out):
        out[j] = 0
    for r in range(n):
        for j in range(n_out):
            out[j] += delta[r, j]


@kernel
def forward_after_product(z, b, a, code, p1, p2):
    """The part of the forward pass after z = x @ W: z += b, a = act(z) (row-wise for softmax)."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        bias_activation(z, b, z, IDENTITY, p1, p2)
        softmax_forward(z, a, code == LOG_SOFTMAX)
    else:
        bias_activation(z, b, a, code, p1, p2)


@kernel
def backward_before_products(z, grad_a, code, p1, p2, delta, grad_b):
    """The part of the backward pass before the products: delta = grad_a * act'(z)
    (the row-wise Jacobian product for softmax) and grad_b = sum over rows of delta."""
    if code == SOFTMAX or code == LOG_SOFTMAX:
        softmax_backward(z, grad_a, delta, code == LOG_SOFTMAX)
    else:
        activation_delta(z, grad_a, delta, code, p1, p2)
    column_sums(delta, grad_b)


@kernel
def dense_forward(x, W, b, z, a, code, p1, p2, most):
    """z = x @ W + b and a = act(z), written into z and a (a may be z for identity); the
    product in at most ``most`` pieces (see kernels/gemm.py)."""
    product(x, W, z, most)
    forward_after_product(z, b, a, code, p1, p2)


@kernel
def dense_backward(x, W, z, grad_a, code, p1, p2, delta, grad_x, grad_W, grad_b, need_grad_x, most):
    """Backward of a = act(x @ W + b).

    delta = grad_a * act'(z); grad_W = x^T delta; grad_b = sum_r delta; grad_x = delta W^T
    (skipped when ``need_grad_x`` is false, as for a network's first layer).
    """
    backward_before_products(z, grad_a, code, p1, p2, delta, grad_b)
    weight_products(x, W, delta, grad_x, grad_W, need_grad_x, most)


@kernel
def dense_layer_forward(x, W, b, z, a, act, p1, p2, most):
    """The Dense op of a model's program (kernels.train): z = x @ W + b, a = act(z) (row-wise
    for softmax/log_softmax), in serial passes; ``b`` empty for a layer without bias. ``act``
    is the address of the activation's compiled forward (``activation_layer.FORWARD[code]``
    through kernels/slots.py ``ACT_FORWARD``; the NumPy twin takes the code), so that each
    activation is compiled once, on its own, for both ops; it runs on chunks of rows right
    after their bias add, while they are in cache. The product is cut into at most ``most``
    pieces (kernels/gemm.py)."""
    product(x, W, z, most)
    m, n = z.shape
    per = max(1, 4096 // n)
    for lo in range(0, m, per):
        hi = min(m, lo + per)
        if b.size > 0:
            for r in range(lo, hi):
                for j in range(n):
                    z[r, j] += b[j]
        rows = hi - lo
        call_act_forward(act, (matrix_view(z, lo * n, rows, n), matrix_view(a, lo * n, rows, n), p1, p2))


@kernel
def dense_layer_backward(x, W, z, grad_a, act, p1, p2, delta, grad_x, grad_W, grad_b, need_grad_x, most):
    """Backward of :func:`dense_layer_forward`: delta = grad_a * act'(z) (the row-wise Jacobian
    product for softmax; ``act`` the address of the activation's compiled backward, see
    :func:`dense_layer_forward`); grad_b = column sums of delta (skipped when ``grad_b`` is
    empty); grad_W = x^T delta; grad_x = delta W^T when ``need_grad_x``."""
    call_act_backward(act, (z, grad_a, delta, p1, p2))
    if grad_b.size > 0:
        column_sums(delta, grad_b)
    weight_products(x, W, delta, grad_x, grad_W, need_grad_x, most)

"""Calls by address (fastgrad/_jit/native.py, kernels/slots.py): typed against the slot, and a
model compiles only the kernels it uses."""
import subprocess
import sys

import numpy as np
import pytest

from fastgrad.kernels import activation_layer, activations, slots


def test_a_call_with_other_types_than_the_slot_is_a_compile_error_not_a_call(dtype):
    """The loop can only pass the argument types the kernel was compiled for: anything else
    fails when the caller is compiled (a wrong-typed call through an address would crash)."""
    from numba import njit
    from numba.core.errors import TypingError
    addr = slots.ACT_FORWARD.address(activation_layer.FORWARD[activations.RELU], dtype)

    @njit
    def wrong(addr, x, a):
        slots.call_act_forward(addr, (x, a, 0.0, 0.0))  # float64 literals, not the dtype's scalars

    x = np.zeros((2, 3), dtype)
    if dtype == np.float64:
        # float64 scalars are this dtype's: the call is right, so use a 1-D x instead
        x = np.zeros(3, dtype)
    with pytest.raises(TypingError, match="act_forward slot"):
        wrong(addr, x, np.zeros((2, 3), dtype))


def test_a_call_by_address_runs_the_kernel(dtype):
    from numba import njit

    @njit
    def apply(addr, x, a, p):
        slots.call_act_forward(addr, (x, a, p, p))

    x = np.array([[-1.5, 0.0, 2.0], [np.nan, -0.0, 3.0]], dtype)
    a = np.full_like(x, 7.0)
    apply(slots.ACT_FORWARD.address(activation_layer.FORWARD[activations.RELU], dtype), x, a, np.dtype(dtype).type(0))
    np.testing.assert_array_equal(a, np.maximum(x, 0))  # NaN stays NaN, as np.maximum
    assert np.signbit(a[1, 1])  # relu(-0.0) is -0.0, as NumPy and PyTorch


def test_returned_float_comes_back_through_the_address(dtype):
    from fastgrad.kernels import train
    from numba import njit

    @njit
    def loss(addr, out, yf, yl, wb, grad, p):
        return slots.call_output_loss(addr, (out, yf, yl, False, wb, grad, 0, p))

    out = np.array([[1.0, 2.0], [3.0, 5.0]], dtype)
    yf = np.zeros_like(out)
    grad = np.empty_like(out)
    addr = slots.OUTPUT_LOSS.address(train.OUTPUT_LOSS[0], dtype)  # MSE
    value = loss(addr, out, yf, np.zeros(1, np.int64), np.zeros(0, dtype), grad, np.dtype(dtype).type(0))
    assert value == pytest.approx(np.mean(out.astype(np.float64) ** 2), rel=1e-6)
    np.testing.assert_allclose(grad, 2 * out / out.size, rtol=1e-6)


CHILD = r"""
import numpy as np
from fastgrad import Dense, Sequential
from fastgrad.kernels import activation_layer as L, activations as A, ops as P, optim as O, train as T
from fastgrad.kernels.program import BATCH_NORM, DENSE, LAYER_NORM
rng = np.random.default_rng(0)
X = rng.standard_normal((40, 5)); y = rng.integers(0, 3, 40)
model = Sequential([Dense(5, 8, "relu"), Dense(8, 3)], loss="softmax_cross_entropy", optimizer="adam", seed=0)
model.fit(X, y, epochs=1, batch_size=16, verbose=0)
used = lambda f: len(f.signatures) > 0
print(used(P.OP_FORWARD[DENSE]), used(L.FORWARD[A.RELU]), used(O.STEP_INTO[O.ADAM]), used(T.OUTPUT_LOSS[T.SOFTMAX_CE]),
      used(P.OP_FORWARD[LAYER_NORM]), used(P.OP_BACKWARD[BATCH_NORM]), used(L.FORWARD[A.GELU]), used(L.BACKWARD[A.TANH]),
      used(O.STEP_INTO[O.SGD]), used(T.OUTPUT_LOSS[0]))
from fastgrad.kernels.grad_utils import clip_to_max_norm
optional = (T.penalty, T.proximal_l1, clip_to_max_norm)  # compiled only for a model that asks for them
print(*map(used, optional))
model = Sequential([Dense(5, 3)], loss="softmax_cross_entropy", optimizer="adam", l1=1e-3, l2=1e-3,
                   l1_mode="proximal", seed=0)
model.fit(X, y, epochs=1, batch_size=16, clip_norm=0.5, verbose=0)
print(*map(used, optional))
"""


def test_a_model_compiles_or_loads_only_the_kernels_it_uses():
    """The design behind issue 11's compile time: a fresh process fitting a ReLU MLP with Adam on
    softmax cross-entropy holds the Dense op, ReLU, Adam and that loss, and no other op kind,
    activation, optimizer or loss (each is compiled, or loaded from the cache, on first use), and
    the penalty, l1's proximal step and clipping only once a model asks for them."""
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"] * 4 + ["False"] * 6 + ["False"] * 3 + ["True"] * 3


NULL_CHILD = r"""
import numpy as np
from fastgrad import Dense, Sequential
from fastgrad.kernels import train
model = Sequential([Dense(3, 2)], loss="mse", dtype="float64", seed=0)
X = np.ones((4, 3))
model.predict(X)
net = model._net()._replace(kernels=np.zeros((1, 4), np.int64))  # what the NumPy twin is given
work, _ = model._work(4)
try:
    train.predict_batches(model.params, net, X, 4, work, np.empty((4, 2)), 0, 0, 1)
except ValueError as e:
    print("ValueError:", e)
"""


def test_a_missing_address_raises_instead_of_calling_address_zero():
    """A Net without addresses (the NumPy twin's) given to the compiled loop: a clear error, not
    a jump to address 0 (run in a subprocess: that would be a crash)."""
    done = subprocess.run([sys.executable, "-c", NULL_CHILD], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ValueError: no kernel address for the op_forward slot" in done.stdout

"""Read-only input arrays (np.load(mmap_mode="r"), views of frozen buffers, arrays a library
hands out with writeable=False) are inputs like any other: every public entry gives the values
it gives for a writeable copy, and no kernel is compiled for read-only array types (a second
compile at best; kernels with the lane reductions failed to type for them: a new-user trial
hit Numba's TypingError in softmax_backward, and the same fault was in evaluate and
loss_and_grad with labels)."""
import numpy as np
import pytest

import fastgrad.functional as F
from fastgrad import Dense, Sequential
from fastgrad.kernels import losses, softmax, train


def _frozen(*arrays):
    out = []
    for a in arrays:
        a = np.array(a)
        a.flags.writeable = False
        out.append(a)
    return out


def _equal(got, want):
    if isinstance(got, dict):
        assert got.keys() == want.keys()
        for k in got:
            _equal(got[k], want[k])
    elif isinstance(got, (tuple, list)):
        for g, w in zip(got, want):
            _equal(g, w)
    elif hasattr(got, "history"):
        _equal(got.history, want.history)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_functional_entries_take_read_only_arrays(dtype):
    rng = np.random.default_rng(0)
    z, g = rng.standard_normal((2, 6, 4)).astype(dtype)
    labels = np.arange(6) % 4
    cases = {
        "softmax_backward": lambda z, g, y: F.softmax_backward(z, g),
        "log_softmax_backward": lambda z, g, y: F.log_softmax_backward(z, g),
        "softmax": lambda z, g, y: F.softmax(z[0]),
        "relu_backward": lambda z, g, y: F.relu_backward(z, g),
        "softmax_cross_entropy": lambda z, g, y: F.softmax_cross_entropy(z, y),
        "mse": lambda z, g, y: F.mse(z, g),
    }
    for name, call in cases.items():
        _equal(call(*_frozen(z, g, labels)), call(z.copy(), g.copy(), labels.copy()))
    for kernel in (softmax.softmax_backward, softmax.softmax_forward, losses.softmax_cross_entropy):
        assert not [s for s in kernel.signatures if "readonly" in str(s)], kernel


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_model_entries_take_read_only_arrays(loss):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 4))
    y = np.arange(32) % 3 if loss == "softmax_cross_entropy" else rng.standard_normal((32, 3))
    w = np.linspace(0.5, 2.0, 32)

    def run(X, y, w):
        m = Sequential([Dense(4, 8, "relu"), Dense(8, 3)], loss=loss, seed=0)
        history = m.fit(X, y, epochs=2, batch_size=8, verbose=0, sample_weight=w, validation_data=(X, y, w))
        return [history, m.train_step(X, y, sample_weight=w), m.evaluate(X, y, sample_weight=w),
                m.loss_and_grad(X, y, sample_weight=w), m.predict(X), m.params]

    _equal(run(*_frozen(X, y, w)), run(X.copy(), y.copy(), w.copy()))
    for kernel in (train.train_epoch, train.evaluate_batches, train.loss_and_grad_batch, train.predict_batches):
        assert not [s for s in kernel.signatures if "readonly" in str(s)], kernel

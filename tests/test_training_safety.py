"""The model's promises under stress: overflowed updates rolled back, NaN never trained on,
validated buffer assignment, several threads on one model, pickling, thread-count determinism."""
import contextlib
import copy
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastgrad
from fastgrad import Dense, Sequential
from fastgrad.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN
from fastgrad.datasets import make_classification
from fastgrad.kernels import train as K
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop, StepLR
from fastgrad.reference import train as R

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["compiled", "reference"]

# Every optimizer, asked to climb (maximize) with a rate of 0.6 x the dtype's largest value from a
# bias already at 0.95 x that value: the first update lands beyond the largest float. Adam's rate is
# 0.6/8 x: the optimizers refuse a first step size lr / (1 - beta1) = 10 lr that overflows by itself,
# and Adam's first update on the mae gradient is lr in size.
OPTIMIZERS = {
    "sgd": lambda lr: SGD(lr=lr, maximize=True),
    "sgd-momentum": lambda lr: SGD(lr=lr, momentum=0.9, nesterov=True, maximize=True),
    "rmsprop": lambda lr: RMSprop(lr=lr, centered=True, maximize=True),
    "adagrad": lambda lr: Adagrad(lr=lr, maximize=True),
    "adam": lambda lr: Adam(lr=lr / 8, maximize=True),
    "adamw": lambda lr: AdamW(lr=lr / 8, amsgrad=True, maximize=True),
}


def _overflowing_model(name, dtype, backend):
    big = 0.6 * float(np.finfo(dtype).max)
    model = Sequential([Dense(4, 1)], loss="mae", optimizer=OPTIMIZERS[name](big), dtype=dtype, seed=0,
                       backend=backend)
    model.layers[0].b = np.full(1, 0.95 * float(np.finfo(dtype).max), dtype)
    rng = np.random.default_rng(1)
    # batches of one row: a float64 loss summed over several rows of ~1e308 would itself overflow
    return model, rng.standard_normal((2, 4)), 1000 + rng.standard_normal(2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_overflowing_update_is_rolled_back_in_train_step(name, dtype, backend):
    model, X, y = _overflowing_model(name, dtype, backend)
    before = model.params.copy()
    with pytest.raises(FloatingPointError, match="update at train_step made a parameter NaN or inf.*restored"):
        model.train_step(X[:1], y[:1])
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.step_count == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_overflowing_update_is_rolled_back_in_fit(name, dtype, backend):
    model, X, y = _overflowing_model(name, dtype, backend)
    before = model.params.copy()
    with pytest.raises(FloatingPointError, match=r"update at epoch 1, batch 1 of 2 .*restored"):
        model.fit(X, y, epochs=2, batch_size=1, verbose=0)
    np.testing.assert_array_equal(model.params, before)
    history = model.fit(X, y, epochs=2, batch_size=1, verbose=0, callbacks=[TerminateOnNaN()])
    assert model.stop_training and history.epoch == []
    np.testing.assert_array_equal(model.params, before)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", [lambda: SGD(lr=1e37), lambda: Adam(lr=3e37)], ids=["sgd", "adam"])
def test_issue_example_keeps_every_parameter_finite(optimizer, backend):
    """float32 Dense(4, 1) on targets near 1000 with a huge rate: 33 (SGD) and 49 (Adam) of the
    parameters were inf/NaN after the FloatingPointError before the rollback. (The issue's
    Adam(lr=1e39) is now refused outright, as is any lr whose first step lr / (1 - beta1) overflows
    float32: test_optim covers that.)"""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 4)), 1000 + rng.standard_normal(200)
    model = Sequential([Dense(4, 1)], loss="mse", optimizer=optimizer(), seed=0, backend=backend)
    if isinstance(model.optimizer, SGD):
        with pytest.raises(FloatingPointError, match="epoch 1, batch"):
            model.fit(X, y, epochs=3, verbose=0)
    else:
        # Adam's updates are ~lr in size: the float32 loss overflows first in compiled code, while the
        # reference sums the float32 outputs' squares in float64 and trains on; either way, nothing
        # non-finite may reach the parameters.
        with contextlib.suppress(FloatingPointError):
            model.fit(X, y, epochs=3, verbose=0)
    assert np.all(np.isfinite(model.params))


def _batch_norm_model(backend, lr, dtype="float32"):
    from fastgrad import BatchNorm1d
    return Sequential([Dense(12, 16, activation="relu"), BatchNorm1d(16), Dense(16, 4)], loss="softmax_cross_entropy",
                      optimizer=SGD(lr=lr), dtype=dtype, seed=0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lr, first_failure", [(1e38, 2), (1e5, 3)])
def test_failed_batch_gives_back_the_running_statistics_of_the_last_good_batch(backend, lr, first_failure):
    """A batch whose loss is NaN had already moved BatchNorm1d's running statistics in its forward
    (to NaN: predict then returned NaN for every row after the FloatingPointError, found by a
    new-user trial); a batch with a finite loss could leave a running variance at inf (lr=1e5).
    Either stops training, and afterwards params, running statistics (finite) and step count
    equal those of the same model trained on the batches before the failure alone (replayed
    from the call's start: lr=1e5 fails after several good batches)."""
    import re
    X, y = make_classification(500, 12, 4, seed=2)
    X = X * 100
    model = _batch_norm_model(backend, lr)
    with pytest.raises(FloatingPointError, match="non-finite loss, gradient or running statistics") as failure:
        model.fit(X, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    failing_batch = int(re.search(r"batch (\d+) of 32", str(failure.value)).group(1))
    assert failing_batch >= first_failure
    good = _batch_norm_model(backend, lr)
    rows = 16 * (failing_batch - 1)
    good.fit(X[:rows], y[:rows], epochs=1, batch_size=16, verbose=0, shuffle=False)
    assert np.all(np.isfinite(model.state)) and np.all(np.isfinite(model.params))
    np.testing.assert_array_equal(model.state, good.state)
    np.testing.assert_array_equal(model.params, good.params)
    assert model.optimizer.step_count == good.optimizer.step_count == failing_batch - 1
    if lr < 1e30:  # (after one step of 1e38 the parameters are near float32's largest: outputs overflow)
        assert np.all(np.isfinite(model.predict(X[:4])))


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_first_batch_and_train_step_leave_the_running_statistics_untouched(backend):
    X, y = make_classification(64, 12, 4, seed=2)
    model = _batch_norm_model(backend, 1e38)
    model.fit(X[:16], y[:16], epochs=1, batch_size=16, verbose=0)  # one good step: lr * gradient finite
    state = model.state.copy()
    with pytest.raises(FloatingPointError):
        model.train_step(X[16:32] * 100, y[16:32])
    np.testing.assert_array_equal(model.state, state)
    with pytest.raises(FloatingPointError, match="batch 1 of"):
        model.fit(X[16:] * 100, y[16:], epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.state, state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_weight_behind_relu_stops_training(backend):
    X, y = make_classification(40, 4, 2, seed=0)
    model = Sequential([Dense(4, 8, "relu"), Dense(8, 2)], loss="softmax_cross_entropy", seed=0, backend=backend)
    model.layers[0].W[0, 0] = np.nan
    before = model.params.copy()
    with pytest.raises(FloatingPointError, match="hold NaN or inf before epoch 1, batch 1"):
        model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    with pytest.raises(FloatingPointError, match="hold NaN or inf before train_step"):
        model.train_step(X, y)
    np.testing.assert_array_equal(model.params, before)  # NaN compares equal here: same positions
    assert model.optimizer.step_count == 0


def test_count_correct_and_dead_fraction_with_nan():
    out = np.array([[np.nan, 1.0, 0.0], [0.0, 2.0, 1.0], [3.0, np.nan, 4.0], [5.0, 1.0, 0.0]])
    labels = np.array([0, 1, 2, 0])
    probs = np.eye(3)[labels]
    dummy_f, dummy_l = np.zeros((1, 3)), np.zeros(1, np.int64)
    for mod in (K, R):
        assert mod.count_correct(out, dummy_f, labels, True, K.SOFTMAX_CE) == 2  # rows 1 and 3
        assert mod.count_correct(out, probs, dummy_l, False, K.SOFTMAX_CE) == 2
        targets = np.array([[0.0, 1.0, 0.0]] * 4)
        # NaN entries never count, whatever their target: 12 entries, 2 NaN, 6 sign agreements
        assert mod.count_correct(out, targets, dummy_l, False, K.BCE_LOGITS) == 6
        z = np.array([[-1.0, np.nan, -2.0, 1.0], [-3.0, -1.0, 0.0, -1.0]])
        assert mod.dead_fraction(z) == 0.5  # columns 0 and 2; the NaN column is not dead
    rng = np.random.default_rng(0)
    for _ in range(20):
        z = rng.standard_normal((5, 6)) - 1.0
        z[rng.uniform(size=z.shape) < 0.1] = np.nan
        assert K.dead_fraction(z) == R.dead_fraction(z)
        lab = rng.integers(0, 6, 5)
        assert K.count_correct(z, dummy_f, lab, True, K.SOFTMAX_CE) == R.count_correct(z, dummy_f, lab, True,
                                                                                        K.SOFTMAX_CE)


def test_fit_is_bit_identical_for_one_and_two_threads():
    if fastgrad._jit.numba_max_threads() < 2:
        pytest.skip("needs 2 threads")
    X, y = make_classification(600, 16, 3, seed=0)
    runs = []
    previous = fastgrad.get_num_threads()["numba"]
    try:
        for n in (1, 2):
            fastgrad.set_num_threads(n)
            model = Sequential([Dense(16, 64, "relu"), Dense(64, 3)], loss="softmax_cross_entropy", seed=5)
            h = model.fit(X, y, epochs=2, batch_size=200, clip_norm=1.0, verbose=0)
            runs.append((model.params.copy(), h.history["loss"]))
    finally:
        fastgrad.set_num_threads(previous)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


# ----- assignable state ---------------------------------------------------------------------

def _run(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


SETUP = ("import numpy as np\nfrom fastgrad import Dense, Sequential\n"
         "m = Sequential([Dense(4, 5, 'relu'), Dense(5, 2)], loss='mse', seed=0)\n"
         "X = np.ones((6, 4), np.float32); y = np.zeros((6, 2), np.float32)\n"
         "buf = np.zeros(m.n_params + 10, np.float32)\n")


@pytest.mark.parametrize("assignment, then, match", [
    ("m.grads = buf[:m.n_params - 3]", "m.fit(X, y, verbose=0)", r"grads must have shape \(37,\), got \(34,\)"),
    ("m.params = buf[:m.n_params - 1]", "m.forward(X)", r"params must have shape \(37,\)"),
    ("m.params = np.zeros(10, np.float32)", "m.predict(X)", r"params must have shape \(37,\), got \(10,\)"),
    ("m.params = np.zeros(m.n_params)", "m.predict(X)", "params must have dtype float32 .*got float64"),
    ("m.params = np.zeros(2 * m.n_params, np.float32)[::2]", "m.predict(X)", "params must be C-contiguous"),
    ("m.params = [0.0] * m.n_params", "m.predict(X)", "params must be a numpy array"),
    ("m.layers[0].W = np.zeros((5, 4), np.float32)", "m.predict(X)", r"W must have shape \(4, 5\)"),
    ("m.layers[1].b = np.zeros(2, np.float64)", "m.predict(X)", "b must have dtype float32"),
])
def test_assigning_a_wrong_buffer_raises(assignment, then, match):
    code = SETUP + f"try:\n    {assignment}\nexcept ValueError as e:\n    print('ValueError:', e)\n{then}\nprint('alive')\n"
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    import re
    assert re.search(match, result.stdout), result.stdout
    assert "alive" in result.stdout


def test_assigning_a_right_buffer_copies_and_views_stay_views():
    m = Sequential([Dense(4, 5, "relu"), Dense(5, 2)], loss="mse", seed=0)
    buffer = m.params
    new = np.arange(m.n_params, dtype=np.float32)
    m.params = new
    assert m.params is buffer and np.array_equal(buffer, new) and not np.shares_memory(buffer, new)
    assert np.shares_memory(m.layers[0].W, m.params) and m.layers[0].W[0, 0] == 0
    m.params += 1
    m.layers[1].W *= 2
    assert m.params is buffer and m.params[0] == 1 and m.layers[1].W[0, 0] == 2 * (4 * 5 + 5 + 1)
    m.layers[0].b = np.full(5, 7, np.float32)
    np.testing.assert_array_equal(m.params[20:25], 7)
    m.grads = np.ones(m.n_params, np.float32)
    np.testing.assert_array_equal(m.layers[0].grad_W, 1)


# ----- threads ------------------------------------------------------------------------------

def test_threads_predicting_on_one_model_all_get_right_answers():
    X, y = make_classification(400, 8, 3, seed=0)
    model = Sequential([Dense(8, 32, "tanh"), Dense(32, 3)], loss="softmax_cross_entropy", seed=0)
    model.fit(X, y, epochs=1, verbose=0)
    parts = [X[i::4] for i in range(4)]
    expected = [model.predict(p, batch_size=7) for p in parts]
    expected_eval = [model.evaluate(p, y[i::4], batch_size=5) for i, p in enumerate(parts)]
    expected_grad = [model.loss_and_grad(p, y[i::4])[1] for i, p in enumerate(parts)]
    errors = []

    def work(i):
        for _ in range(20):
            if not np.array_equal(model.predict(parts[i], batch_size=7), expected[i]):
                errors.append(("predict", i))
            if model.evaluate(parts[i], y[i::4], batch_size=5) != expected_eval[i]:
                errors.append(("evaluate", i))
            if not np.array_equal(model.loss_and_grad(parts[i], y[i::4])[1], expected_grad[i]):
                errors.append(("loss_and_grad", i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


class _Pause(Callback):
    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        self.started.set()
        self.release.wait(60)


def test_fit_while_training_in_another_thread_raises():
    X, y = make_classification(64, 4, 2, seed=0)
    model = Sequential([Dense(4, 2)], loss="softmax_cross_entropy", seed=0)
    pause = _Pause()
    worker = threading.Thread(target=model.fit, args=(X, y), kwargs=dict(epochs=1, verbose=0, callbacks=[pause]))
    worker.start()
    try:
        assert pause.started.wait(120)
        with pytest.raises(RuntimeError, match="already training .in another thread"):
            model.fit(X, y, verbose=0)
        with pytest.raises(RuntimeError, match="already training"):
            model.train_step(X, y)
        model.predict(X)  # inference is allowed meanwhile
    finally:
        pause.release.set()
        worker.join()
    model.fit(X, y, verbose=0)  # and training once the other thread is done


# ----- pickling -------------------------------------------------------------------------------

def _halve(epoch, lr):
    return lr / 2


@pytest.mark.parametrize("clone", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy], ids=["pickle", "deepcopy"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_round_tripped_model_predicts_and_trains_identically(clone, backend):
    X, y = make_classification(120, 6, 3, seed=0)
    model = Sequential([Dense(6, 8, "leaky_relu", alpha=np.float32(0.2)), Dense(8, 3)],
                       loss="softmax_cross_entropy", optimizer=Adam(lr=1e-2), seed=np.int64(3), backend=backend)
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    twin = clone(model)
    assert twin.params is not model.params and np.shares_memory(twin.layers[0].W, twin.params)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    for m in (model, twin):
        m.fit(X, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(twin.params, model.params)
    assert twin.optimizer.step_count == model.optimizer.step_count


def test_layers_optimizers_schedules_callbacks_pickle(tmp_path):
    opt = SGD(lr=0.1, momentum=0.9)
    objects = [Dense(3, 2, "elu", alpha=0.5), opt, Adam(amsgrad=True), StepLR(opt, step_size=2),
               EarlyStopping(patience=2), ModelCheckpoint(str(tmp_path / "m.npz")), TerminateOnNaN(),
               LearningRateScheduler(_halve)]
    for obj in objects:
        for twin in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
            assert type(twin) is type(obj) and repr(twin) == repr(obj) if type(obj).__repr__ is not object.__repr__ \
                else type(twin) is type(obj)
    p = np.ones(4)
    opt.step(p, np.ones(4))
    twin = pickle.loads(pickle.dumps(opt))
    q = p.copy()
    opt.step(p, np.ones(4))
    twin.step(q, np.ones(4))
    np.testing.assert_array_equal(p, q)


def test_numpy_scalar_hyperparameters_become_python_and_save(tmp_path):
    model = Sequential([Dense(np.int64(3), 4, "leaky_relu", alpha=np.float32(0.2)), Dense(4, 1)], loss="mse",
                       seed=np.int64(3))
    assert type(model.seed) is int and type(model.layers[0].activation_options["alpha"]) is float
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.params, model.params)


# ----- compile-time plumbing ----------------------------------------------------------------

def test_warmup_command():
    from fastgrad import _warmup
    from fastgrad.cli import build_parser
    args = build_parser().parse_args(["warmup", "--dtype", "float32", "float64"])
    assert args.dtype == ["float32", "float64"] and callable(args.handler)
    times = {"train.fit[float32]": 1.5, "dense.dense_forward[float32]": 0.25, "dense.dense_backward[float32]": 0.5,
             "dense.dense_forward[float64]": 2.0}
    assert _warmup.family_seconds(times) == {"train[float32]": 1.5, "dense[float32]": 0.75, "dense[float64]": 2.0}

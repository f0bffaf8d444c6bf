"""The model API: gradients vs finite differences, compiled vs reference path, training, persistence."""
import numpy as np
import pytest

from conftest import loss_of_params
from fastgrad import Dense, Sequential, diff
from fastgrad.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN
from fastgrad.datasets import make_classification
from fastgrad.optim import SGD, Adam, AdamW, RMSprop, StepLR

ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus", "silu",
               "softmax", "log_softmax"]
LOSSES = ["mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy"]


def _data(loss, n=24, n_in=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    if loss == "softmax_cross_entropy":
        return X, rng.integers(0, k, n)
    if loss == "binary_cross_entropy":
        return X, (rng.uniform(size=(n, k)) > 0.5).astype(float)
    return X, rng.standard_normal((n, k))


def _model(activation="tanh", loss="mse", dtype="float64", backend="compiled", optimizer=None, seed=0, **kw):
    return Sequential([Dense(5, 7, activation=activation), Dense(7, 3)], loss=loss,
                      optimizer=optimizer or Adam(lr=1e-2), dtype=dtype, seed=seed, backend=backend, **kw)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_loss_and_grad_matches_finite_differences(activation, loss):
    model = _model(activation, loss, l1=0.0 if loss == "mae" else 1e-3, l2=1e-2)
    X, y = _data(loss)
    model.params[:] += 0.05  # move relu-family kinks off the sample's pre-activations
    loss_value, grad = model.loss_and_grad(X, y)
    f, p0 = loss_of_params(model, X, y)
    fd = diff.gradient(f, p0)
    assert loss_value == pytest.approx(f(p0), rel=1e-14)
    assert np.max(np.abs(fd - grad)) <= 1e-6 * max(1.0, np.max(np.abs(grad))), activation


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", [lambda: Adam(lr=1e-2), lambda: SGD(lr=0.05, momentum=0.9, nesterov=True),
                                       lambda: RMSprop(lr=1e-3, centered=True), lambda: AdamW(lr=1e-2, amsgrad=True)],
                         ids=["adam", "sgd-nesterov", "rmsprop-centered", "adamw-amsgrad"])
def test_compiled_epoch_equals_reference_epoch(loss, optimizer):
    X, y = _data(loss, n=50)
    histories, params = [], []
    for backend in ("compiled", "reference"):
        model = _model("relu", loss, backend=backend, optimizer=optimizer(), l1=1e-4, l2=1e-3)
        h = model.fit(X, y, epochs=2, batch_size=8, clip_norm=1.0, verbose=0, diagnostics=True)
        histories.append(h)
        params.append(model.params.copy())
    np.testing.assert_allclose(params[0], params[1], rtol=1e-10, atol=1e-12)
    for key in histories[1].history:
        np.testing.assert_allclose(histories[0].history[key], histories[1].history[key], rtol=1e-10)
    for key in histories[1].diagnostics:
        np.testing.assert_allclose(histories[0].diagnostics[key], histories[1].diagnostics[key], rtol=1e-8, atol=1e-12)


def test_float32_epoch_close_to_reference():
    X, y = make_classification(300, 16, 4, seed=1)
    models = [Sequential([Dense(16, 32, "relu"), Dense(32, 4)], loss="softmax_cross_entropy", seed=3,
                         backend=b) for b in ("compiled", "reference")]
    for m in models:
        m.fit(X, y, epochs=1, batch_size=32, verbose=0)
        assert m.params.dtype == np.float32
    np.testing.assert_allclose(models[0].params, models[1].params, rtol=1e-4, atol=1e-5)


def test_training_reduces_loss_and_separates_classes():
    X, y = make_classification(1000, 20, 3, class_sep=2.0, seed=2)
    model = Sequential([Dense(20, 32, "relu"), Dense(32, 3)], loss="softmax_cross_entropy",
                       optimizer=Adam(lr=1e-2), seed=0)
    before = model.evaluate(X, y)["loss"]
    history = model.fit(X, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert model.evaluate(X, y)["loss"] < 0.2 * before
    assert model.evaluate(X, y)["accuracy"] > 0.95
    probs = model.predict(X[:10])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_regression_and_binary_targets():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 1))
    y = 2 * X[:, 0] + 1
    model = Sequential([Dense(1, 1)], loss="mse", optimizer=SGD(lr=0.1), dtype="float64", seed=0)
    model.fit(X, y, epochs=30, batch_size=16, verbose=0)
    np.testing.assert_allclose([model.layers[0].W[0, 0], model.layers[0].b[0]], [2.0, 1.0], atol=1e-3)
    yb = (X[:, 0] > 0).astype(float)
    clf = Sequential([Dense(1, 1)], loss="binary_cross_entropy", optimizer=Adam(lr=0.1), seed=0)
    h = clf.fit(X, yb, epochs=10, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.95
    p = clf.predict(X)
    assert p.shape == (400, 1) and np.all((p >= 0) & (p <= 1))


def test_flat_buffer_layout():
    model = _model()
    l0, l1 = model.layers
    assert model.params.flags.c_contiguous and model.params.ndim == 1
    assert model.n_params == 5 * 7 + 7 + 7 * 3 + 3
    assert np.shares_memory(l0.W, model.params) and np.shares_memory(l1.b, model.params)
    assert l0.W.shape == (5, 7) and l1.b.shape == (3,)
    model.params[:] = np.arange(model.n_params)
    assert l0.W[0, 0] == 0 and l0.b[0] == 35 and l1.W[0, 0] == 42 and l1.b[-1] == model.n_params - 1
    _, grad = model.loss_and_grad(*_data("mse"))
    np.testing.assert_array_equal(grad[35:42], l0.grad_b)


def test_l1_l2_follow_keras():
    X, y = _data("mse")
    plain = _model(seed=1)
    reg = _model(seed=1, l1=0.01, l2=0.1)
    loss0, g0 = plain.loss_and_grad(X, y)
    loss1, g1 = reg.loss_and_grad(X, y)
    weights = np.concatenate([reg.layers[0].W.ravel(), reg.layers[1].W.ravel()])
    assert loss1 == pytest.approx(loss0 + 0.01 * np.abs(weights).sum() + 0.1 * (weights**2).sum(), rel=1e-12)
    W0 = reg.layers[0].W
    np.testing.assert_allclose(g1[:35].reshape(5, 7), g0[:35].reshape(5, 7) + 0.01 * np.sign(W0) + 0.2 * W0)
    np.testing.assert_array_equal(g1[35:42], g0[35:42])  # biases carry no penalty


def test_deterministic_given_seed():
    X, y = make_classification(200, 8, 3, seed=0)
    runs = []
    for _ in range(2):
        m = Sequential([Dense(8, 16, "relu"), Dense(16, 3)], loss="softmax_cross_entropy", seed=42)
        m.fit(X, y, epochs=2, batch_size=16, verbose=0)
        runs.append(m.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_save_load_continue_equals_uninterrupted(tmp_path):
    X, y = make_classification(160, 8, 3, seed=0)

    def new():
        return Sequential([Dense(8, 16, "tanh"), Dense(16, 3)], loss="softmax_cross_entropy",
                          optimizer=Adam(lr=3e-3), seed=7, dtype="float64")

    straight = new()
    straight.fit(X, y, epochs=4, batch_size=16, verbose=0)
    first = new()
    first.fit(X, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.npz"
    first.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind
    resumed = Sequential.load(path)
    assert resumed.epochs_done == 2 and resumed.optimizer.step_count == first.optimizer.step_count
    resumed.fit(X, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(resumed.params, straight.params)


def test_load_rejects_bad_files(tmp_path):
    model = _model()
    good = tmp_path / "good.npz"
    model.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array("fastgrad.Sequential 1"), config=np.array([{"a": 1}], dtype=object),
             params=np.ones(3))
    for path, match in [(truncated, "not a valid fastgrad model file"), (foreign, "not a valid fastgrad model file"),
                        (garbage, "not a valid fastgrad model file"), (pickled, "not a valid fastgrad model file")]:
        with pytest.raises(ValueError, match=match):
            Sequential.load(path)
    with pytest.raises(FileNotFoundError, match="no model file"):
        Sequential.load(tmp_path / "missing.npz")


def test_non_finite_loss_stops_with_last_finite_params():
    X, y = _data("mse", n=64)
    model = _model("relu", "mse", optimizer=SGD(lr=1e12), dtype="float32")
    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+"):
        model.fit(X, y, epochs=5, batch_size=8, verbose=0)
    assert np.all(np.isfinite(model.params))
    model2 = _model("relu", "mse", optimizer=SGD(lr=1e12), dtype="float32")
    history = model2.fit(X, y, epochs=5, batch_size=8, verbose=0, callbacks=[TerminateOnNaN()])
    assert model2.stop_training and len(history.epoch) < 5
    assert np.all(np.isfinite(model2.params))


def test_callbacks(tmp_path):
    X, y = make_classification(300, 8, 3, seed=0)
    model = Sequential([Dense(8, 16, "relu"), Dense(16, 3)], loss="softmax_cross_entropy",
                       optimizer=Adam(lr=0.05), seed=0)
    stop = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0, restore_best_weights=True)
    ckpt = ModelCheckpoint(str(tmp_path / "best-{epoch}.npz"), monitor="val_loss", save_best_only=True)
    h = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.25, callbacks=[stop, ckpt], verbose=0)
    assert len(h.epoch) == 2 and stop.stopped_epoch == 1  # min_delta too large to count as improvement
    assert ckpt.saved[0] == str(tmp_path / "best-1.npz")  # restored: the parameters of epoch 1
    np.testing.assert_array_equal(model.params, Sequential.load(ckpt.saved[0]).params)

    model = Sequential([Dense(8, 3)], loss="softmax_cross_entropy", optimizer=SGD(lr=1.0), seed=0)
    h = model.fit(X, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2)])
    assert h.history["lr"] == [0.5, 0.25, 0.125]
    sched = StepLR(model.optimizer, step_size=1, gamma=0.1)
    h = model.fit(X, y, epochs=3, verbose=0, callbacks=[sched])
    np.testing.assert_allclose(h.history["lr"], [0.125, 0.0125, 0.00125])


def test_validation_split_takes_last_rows():
    X, y = make_classification(100, 4, 2, seed=0)
    model = Sequential([Dense(4, 2)], loss="softmax_cross_entropy", seed=0)
    h = model.fit(X, y, epochs=1, validation_split=0.2, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(model.evaluate(X[80:], y[80:])["loss"], rel=1e-6)


def test_hessian_of_small_model():
    X, y = _data("mse", n=10)
    model = _model("tanh", "mse")
    H = model.hessian(X, y)
    assert H.shape == (model.n_params, model.n_params)
    np.testing.assert_allclose(H, H.T)
    f, p0 = loss_of_params(model, X, y)
    H_fd = diff.hessian(f, p0)
    assert np.max(np.abs(H - H_fd)) < 1e-5 * np.max(np.abs(H))
    big = Sequential([Dense(100, 30)], loss="mse", seed=0)
    with pytest.raises(ValueError, match="at most 2000"):
        big.hessian(np.ones((2, 100)), np.ones((2, 30)))


def test_train_step_and_summary(capsys):
    model = _model()
    X, y = _data("mse")
    before = model.params.copy()
    loss = model.train_step(X, y)
    assert loss == pytest.approx(_model().loss_and_grad(X, y)[0], rel=1e-12)
    assert not np.array_equal(before, model.params) and model.optimizer.step_count == 1
    assert model.summary() is None   # printed once (a notebook would show a returned table twice)
    text = capsys.readouterr().out
    assert f"total parameters: {model.n_params}" in text and "Dense(5, 7" in text
    captured = []
    model.summary(print_fn=captured.append)
    assert captured == [text.rstrip("\n")]


def test_bad_input():
    with pytest.raises(ValueError, match="layer 1 expects 6 inputs but layer 0 gives 7"):
        Sequential([Dense(5, 7), Dense(6, 3)], loss="mse")
    with pytest.raises(ValueError, match="non-empty list"):
        Sequential([], loss="mse")
    with pytest.raises(ValueError, match="loss must be one of"):
        Sequential([Dense(2, 2)], loss="hinge")
    with pytest.raises(TypeError, match="needs a loss"):
        Sequential([Dense(2, 2)])
    with pytest.raises(ValueError, match="activation must be one of"):
        Dense(2, 2, activation="swishy")
    with pytest.raises(ValueError, match="backend"):
        Sequential([Dense(2, 2)], loss="mse", backend="gpu")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Sequential([Dense(2, 2)], loss="mse", optimizer="adamax")
    with pytest.raises(TypeError, match="optimizer"):
        Sequential([Dense(2, 2)], loss="mse", optimizer=3)
    model = Sequential([Dense(4, 3)], loss="softmax_cross_entropy")
    X = np.ones((5, 4))
    with pytest.raises(ValueError, match="X must have 4 columns"):
        model.fit(np.ones((5, 3)), np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.fit(X, np.array([0, 1, 2, 3, 0]), verbose=0)
    with pytest.raises(ValueError, match="y must have 5 rows"):
        model.fit(X, np.zeros(4, int), verbose=0)
    with pytest.raises(TypeError, match="integer class labels"):
        model.fit(X, np.zeros(5), verbose=0)
    with pytest.raises(ValueError, match="X must not be empty"):
        model.fit(np.ones((0, 4)), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match="X must be finite"):
        model.fit(np.full((5, 4), np.nan), np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model.fit(X, np.zeros(5, int), batch_size=0, verbose=0)
    reg = Sequential([Dense(4, 2)], loss="mse")
    with pytest.raises(ValueError, match=r"y must have shape \(5, 2\)"):
        reg.fit(X, np.zeros(5), verbose=0)
    with pytest.raises(ValueError, match="already belongs to another model"):
        layer = Dense(2, 2)
        Sequential([layer], loss="mse")
        Sequential([layer], loss="mse")


def test_model_calls_compile_no_parallel_layer_or_loss_kernel():
    """The model's compiled calls run single-threaded (blas_phase), so they use the serial range
    helpers: compiling the parallel activation/softmax/loss kernels dominated a first fit's time."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import numpy as np; from fastgrad import Dense, Sequential\n"
            "from fastgrad.kernels import activations, dense, losses, softmax\n"
            "X = np.ones((8, 3), np.float32); y = np.zeros(8, int)\n"
            "for loss, last in (('softmax_cross_entropy', 'identity'), ('mse', 'softmax'), ('binary_cross_entropy', 'tanh')):\n"
            "    m = Sequential([Dense(3, 4, 'relu'), Dense(4, 2, last)], loss=loss, seed=0)\n"
            "    t = y if loss == 'softmax_cross_entropy' else np.zeros((8, 2))\n"
            "    m.fit(X, t, verbose=0); m.evaluate(X, t); m.predict(X); m.loss_and_grad(X, t); m.train_step(X, t)\n"
            "kernels = (dense.bias_activation, dense.activation_delta, dense.dense_forward, dense.dense_backward,\n"
            "           softmax.softmax_forward, softmax.softmax_backward, losses.elementwise_loss,\n"
            "           losses.softmax_cross_entropy, activations.activation_forward)\n"
            "print(sum(len(k.signatures) for k in kernels))\n")
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                         timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "0"


def test_work_buffers_stay_bounded_over_many_input_sizes():
    """One set of work buffers per thread, sized for the largest batch asked for: predict,
    evaluate and loss_and_grad on inputs of many sizes neither grow the model's memory (a set per
    size held 1000 sets, 2 GB, after predict on 1..1000 rows) nor change a result when a smaller
    batch runs in buffers sized for a larger one."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = rng.standard_normal((60, 2))
    def build():
        return Sequential([Dense(5, 8, activation="tanh"), Dense(8, 2)], loss="mse", seed=0)
    model = build()
    model.predict(X)
    for k in (1, 7, 60, 3, 59, 2):   # each against a new model, whose buffers have exactly k rows
        assert np.array_equal(model.predict(X[:k]), build().predict(X[:k]))
        loss, grad = model.loss_and_grad(X[:k], y[:k])
        fresh_loss, fresh_grad = build().loss_and_grad(X[:k], y[:k])
        assert loss == fresh_loss and np.array_equal(grad, fresh_grad)
        assert model.evaluate(X[:k], y[:k]) == build().evaluate(X[:k], y[:k])
    work = model._local.work
    assert work[0] == 60 and not hasattr(model._local, "buffers")
    held = sum(a.nbytes for a in work[1] if isinstance(a, np.ndarray)) + work[2].nbytes
    for k in range(1, 61):
        model.predict(X[:k])
    assert sum(a.nbytes for a in model._local.work[1] if isinstance(a, np.ndarray)) + model._local.work[2].nbytes == held


# ----- findings of the new-user trial of 2026-12-02: each error names the call and the remedy -----
def _norm_without_running_statistics():
    from fastgrad import BatchNorm1d
    return Sequential([Dense(3, 4), BatchNorm1d(4, track_running_stats=False), Dense(4, 1)], loss="mse",
                      dtype="float32", seed=0)


def test_one_row_through_batch_statistics_is_refused_by_every_call_that_names_itself():
    """loss_and_grad in evaluation mode took one row through a BatchNorm1d without running
    statistics and returned a zero gradient for every layer before it (predict, evaluate and
    forward refused); forward's error said "predict", training-mode forward's spoke of a batch_size."""
    model = _norm_without_running_statistics()
    one, y = np.ones((1, 3)), np.ones(1)
    for call, name in [(lambda: model.forward(one), "forward got X of 1 row"),
                       (lambda: model.predict(one), "predict got X of 1 row"),
                       (lambda: model.evaluate(one, y), "evaluate got X of 1 row"),
                       (lambda: model.loss_and_grad(one, y), "loss_and_grad got X of 1 row")]:
        with pytest.raises(ValueError, match=name + ".*pass at least 2 rows"):
            call()
    model.train()
    for call, name in [(lambda: model.forward(one), "forward in training mode"),
                       (lambda: model.loss_and_grad(one, y), "loss_and_grad in training mode")]:
        with pytest.raises(ValueError, match=name + ".*pass at least 2 rows"):
            call()
    assert np.all(np.isfinite(model.loss_and_grad(np.ones((2, 3)) * [[1], [2]], np.ones(2))[1]))


def test_one_callback_alone_is_taken_and_anything_else_named():
    X, y = np.ones((4, 3)), np.ones(4)
    model = Sequential([Dense(3, 1)], loss="mse", seed=0)
    assert model.fit(X, y, callbacks=TerminateOnNaN(), verbose=0).epoch == [0]  # Keras flattens one too
    for bad in (5, "TerminateOnNaN", {"a": 1}):
        with pytest.raises(TypeError, match="callbacks must be a list of fastgrad.callbacks.Callback"):
            model.fit(X, y, callbacks=bad, verbose=0)


def test_fit_from_its_own_callback_is_refused_without_blaming_another_thread():
    from fastgrad.callbacks import Callback

    class FitAgain(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.fit(np.ones((4, 3)), np.ones(4), verbose=0)
    model = Sequential([Dense(3, 1)], loss="mse", seed=0)
    with pytest.raises(RuntimeError, match=r"already training \(in another thread, or this thread's fit"):
        model.fit(np.ones((4, 3)), np.ones(4), callbacks=[FitAgain()], verbose=0)


@pytest.mark.filterwarnings("error")
def test_finite_float64_beyond_float32_is_named_not_called_non_finite():
    """A finite 1e300 in float64 data for a float32 model: NumPy's overflow warning, then "must be
    finite, found NaN or inf" about data that had none. Now the input's name and the range."""
    model = Sequential([Dense(3, 1)], loss="mse", dtype="float32", seed=0)
    X = np.ones((4, 3))
    X[0, 0] = 1e300
    for call in (lambda: model.predict(X), lambda: model.fit(X, np.ones(4), verbose=0),
                 lambda: model.evaluate(np.ones((4, 3)), X[:, 0])):
        with pytest.raises(ValueError, match=r"(X|y) holds finite values beyond float32's range"):
            call()
    with pytest.raises(ValueError, match=r"sample_weight must be finite.*after conversion to float32"):
        model.fit(np.ones((4, 3)), np.ones(4), sample_weight=np.full(4, 1e300), verbose=0)
    X[0, 0] = np.inf  # a real inf still gets the non-finite message
    with pytest.raises(ValueError, match="X must be finite"):
        model.predict(X)

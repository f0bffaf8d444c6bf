"""A user's loss and activation inside the compiled training loop (fastgrad.Loss, fastgrad.ActivationFn).

A user's MSE and tanh give the built-in trajectory; a loss and an activation fastgrad lacks
(log-cosh, a scaled softsign) give the gradient of central differences, the same numbers on
the compiled and the reference backend, and train; the construction-time check catches a
wrong gradient; what cannot work is refused clearly. Each pair of user functions compiles
its own training loop (tens of seconds), so the tests share a few pairs defined once here.
"""
import copy
import pickle

import numba
import numpy as np
import pytest

from fastgrad import Activation, ActivationFn, Dense, LayerNorm, Loss, Sequential
from fastgrad.optim import SGD, Adam
from conftest import central_diff


@numba.njit
def mse_value(out, target):
    total = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            d = out[i, j] - target[i, j]
            total += d * d
    return total / out.size


@numba.njit
def mse_gradient(out, target, grad):
    if target[0, 0] > 1e6:  # a sentinel row: lets a test make the loss raise in a chosen batch
        raise ValueError("sentinel target")
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            grad[i, j] = 2.0 * (out[i, j] - target[i, j]) / out.size


@numba.njit
def logcosh_value(out, target):
    """mean log(cosh(out - target)), in the stable form |d| + log1p(exp(-2|d|)) - log 2."""
    total = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            d = abs(out[i, j] - target[i, j])
            total += d + np.log1p(np.exp(-2.0 * d)) - np.log(2.0)
    return total / out.size


@numba.njit
def logcosh_gradient(out, target, grad):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            grad[i, j] = np.tanh(out[i, j] - target[i, j]) / out.size


@numba.njit
def tanh_forward(z, a):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[i, j] = np.tanh(z[i, j])


@numba.njit
def tanh_backward(z, grad_a, grad_z):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            t = np.tanh(z[i, j])
            grad_z[i, j] = grad_a[i, j] * (1 - t * t)


@numba.njit
def softsign2_forward(z, a):
    """2 z / (1 + |z|)."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[i, j] = 2.0 * z[i, j] / (1.0 + abs(z[i, j]))


@numba.njit
def softsign2_backward(z, grad_a, grad_z):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            d = 1.0 + abs(z[i, j])
            grad_z[i, j] = grad_a[i, j] * 2.0 / (d * d)


@numba.njit
def wrong_gradient(out, target, grad):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            grad[i, j] = (out[i, j] - target[i, j]) / out.size  # half the true gradient


USER_MSE = Loss(mse_value, mse_gradient)
USER_TANH = ActivationFn(tanh_forward, tanh_backward)
LOGCOSH = Loss(logcosh_value, logcosh_gradient, name="logcosh")
SOFTSIGN2 = ActivationFn(softsign2_forward, softsign2_backward, name="softsign2")


def _data(n=96, n_in=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    return X, np.sin(X[:, :k]) + 0.1 * rng.normal(size=(n, k))


def _pair(dtype="float64", backend="compiled"):
    """A user-function model and its built-in twin with the same weights."""
    user = Sequential([Dense(5, 8, activation=USER_TANH), LayerNorm(8), Dense(8, 2)], loss=USER_MSE,
                      optimizer=Adam(lr=0.01), dtype=dtype, seed=3, backend=backend)
    builtin = Sequential([Dense(5, 8, activation="tanh"), LayerNorm(8), Dense(8, 2)], loss="mse",
                         optimizer=Adam(lr=0.01), dtype=dtype, seed=3)
    np.testing.assert_array_equal(user.params, builtin.params)
    return user, builtin


def test_user_mse_and_tanh_follow_the_builtin_trajectory():
    X, y = _data()
    user, builtin = _pair()
    hu = user.fit(X, y, epochs=3, batch_size=16, verbose=0)
    hb = builtin.fit(X, y, epochs=3, batch_size=16, verbose=0)
    np.testing.assert_allclose(user.params, builtin.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hu.history["loss"], hb.history["loss"], rtol=1e-12)
    np.testing.assert_allclose(user.evaluate(X, y)["loss"], builtin.evaluate(X, y)["loss"], rtol=1e-12)
    np.testing.assert_allclose(user.predict(X), builtin.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(user.train_step(X[:10], y[:10]), builtin.train_step(X[:10], y[:10]), rtol=1e-12)


def test_fit_says_it_compiles_a_user_functions_kernels_before_it_does(capsys):
    """A user's loss or activation is compiled in the process as kernels the cached loop calls
    by address (never on disk); fit(verbose=1) said nothing when the built-in loop it checked
    was cached (new-user trial). Said once: not again when that dtype's kernels are compiled."""
    from fastgrad import training
    X, y = _data()
    user, _ = _pair(dtype="float32")
    kernels = [user._train.custom_loss, *(user._train.custom_activation or ())]
    compiled = all(any("float32" in str(sig) for sig in k.signatures) for k in kernels if k is not None)
    training._announce_compile(user, verbose=1)
    said = "compiling your loss or activation for fastgrad's float32 training loop" in capsys.readouterr().err
    assert said != compiled
    user.fit(X, y, epochs=1, batch_size=16, verbose=0)
    training._announce_compile(user, verbose=1)
    assert capsys.readouterr().err == ""


def test_float32_follows_the_builtin_trajectory():
    X, y = _data()
    user, builtin = _pair("float32")
    user.fit(X, y, epochs=2, batch_size=16, verbose=0)
    builtin.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert user.params.dtype == np.float32
    np.testing.assert_allclose(user.params, builtin.params, rtol=1e-5, atol=1e-6)


def test_activation_layer_and_reference_backend():
    X, y = _data()
    user = Sequential([Dense(5, 8), Activation(USER_TANH), Dense(8, 2)], loss=USER_MSE, dtype="float64", seed=1,
                      optimizer=SGD(lr=0.1, momentum=0.9))
    ref = Sequential([Dense(5, 8), Activation(USER_TANH), Dense(8, 2)], loss=USER_MSE, dtype="float64", seed=1,
                     optimizer=SGD(lr=0.1, momentum=0.9), backend="reference")
    builtin = Sequential([Dense(5, 8), Activation("tanh"), Dense(8, 2)], loss="mse", dtype="float64", seed=1,
                         optimizer=SGD(lr=0.1, momentum=0.9))
    for model in (user, ref, builtin):
        model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    np.testing.assert_allclose(user.params, builtin.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ref.params, builtin.params, rtol=1e-10, atol=1e-12)


def _novel(backend="compiled"):
    return Sequential([Dense(5, 6, activation=SOFTSIGN2), Dense(6, SOFTSIGN2), Dense(6, 2)], loss=LOGCOSH,
                      optimizer=Adam(lr=0.02), dtype="float64", seed=7, backend=backend)


def test_novel_loss_and_activation_gradient_equals_central_differences():
    X, y = _data(n=12)
    model = _novel()
    loss, grad = model.loss_and_grad(X, y)

    def loss_at(p):
        model.params = p
        return model.loss_and_grad(X, y)[0]
    p0 = model.params.copy()
    numeric = central_diff(loss_at, p0.copy())
    model.params = p0
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # the value is the closed form at the network's output
    d = model.predict(X) - y
    np.testing.assert_allclose(loss, np.mean(np.log(np.cosh(d))), rtol=1e-12)


def test_novel_pair_compiled_equals_reference_and_learns():
    X, y = _data()
    a, b = _novel(), _novel("reference")
    ha = a.fit(X, y, epochs=20, batch_size=16, verbose=0)
    hb = b.fit(X, y, epochs=20, batch_size=16, verbose=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-9)
    assert ha.history["loss"][-1] < 0.5 * ha.history["loss"][0]


def test_wrong_gradient_is_caught_at_construction():
    with pytest.raises(ValueError, match=r"gradient does not match finite differences of value .*worst entry \(\d+, "
                                         r"\d+\)"):
        Sequential([Dense(3, 2)], loss=Loss(mse_value, wrong_gradient))
    # unchecked, it is taken as given
    Sequential([Dense(3, 2)], loss=Loss(mse_value, wrong_gradient, check=False), backend="reference")

    def bad_backward(z, grad_a, grad_z):
        grad_z[...] = grad_a  # the identity's derivative, not tanh's
    with pytest.raises(ValueError, match="backward does not match finite differences of forward"):
        Sequential([Dense(3, 2, activation=ActivationFn(tanh_forward, bad_backward))], loss="mse",
                   backend="reference")


def test_non_finite_check_is_reported():
    def value(out, target):
        return float(np.sum(np.log(out)))  # NaN for the negative outputs of the random batch

    def gradient(out, target, grad):
        grad[...] = 1 / out
    with pytest.raises(ValueError, match="non-finite value.*check=False"):
        Sequential([Dense(3, 2)], loss=Loss(value, gradient), backend="reference")


def test_refusals():
    with pytest.raises(TypeError, match="value must be a function"):
        Loss(3, mse_gradient)
    with pytest.raises(TypeError, match="backward must be a function"):
        ActivationFn(tanh_forward, "tanh")
    with pytest.raises(TypeError, match="check must be True or False"):
        Loss(mse_value, mse_gradient, check="yes")

    def plain(out, target):
        return 0.0
    with pytest.raises(TypeError, match=r"value must be a @numba.njit function.*backend='reference'"):
        Sequential([Dense(3, 2)], loss=Loss(plain, mse_gradient, check=False))
    with pytest.raises(ValueError, match="one ActivationFn"):
        Sequential([Dense(3, 4, activation=USER_TANH), Dense(4, 2, activation=SOFTSIGN2)], loss="mse")
    with pytest.raises(ValueError, match="takes no options"):
        Dense(3, 4, activation=USER_TANH, alpha=0.1)
    with pytest.raises(ValueError, match="metric 'accuracy' does not apply"):
        Sequential([Dense(3, 2)], loss=USER_MSE, metrics=["accuracy"], backend="reference")


def test_weights_saving_and_distributed_are_refused_clearly(tmp_path):
    X, y = _data(n=8)
    model = Sequential([Dense(5, 2)], loss=USER_MSE, backend="reference")
    with pytest.raises(ValueError, match="sample and class weights need a built-in loss"):
        model.fit(X, y, sample_weight=np.ones(8), verbose=0)
    with pytest.raises(ValueError, match="cannot be saved to a file.*get_weights"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    from fastgrad.distributed import _check_layers
    with pytest.raises(ValueError, match="trains locally"):
        _check_layers(model)


def test_pickle_and_deepcopy_continue_identically():
    X, y = _data()
    model = _novel("reference")
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    clone.fit(X, y, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(clone.params, model.params)
    compiled = _novel()
    twin = copy.deepcopy(compiled)
    assert twin.loss is compiled.loss and twin._train is compiled._train  # one compiled loop for both
    compiled.fit(X, y, epochs=1, verbose=0)
    twin.fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(twin.params, compiled.params)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_raising_loss_keeps_the_updates_before_it(backend, k):
    """The loss raises in batch k (0-based) of a fit: the parameters and the step count are
    those after the k updates before it (PyTorch's semantics), whatever the parity of k
    (the compiled loop alternates two parameter buffers)."""
    X, y = _data(n=64)
    y[16 * k] = 1e7  # the first row of batch k
    model = Sequential([Dense(5, 8, activation=USER_TANH), Dense(8, 2)], loss=USER_MSE, dtype="float64", seed=3,
                       backend=backend)
    twin = Sequential([Dense(5, 8, activation="tanh"), Dense(8, 2)], loss="mse", dtype="float64", seed=3)
    with pytest.raises(ValueError, match="sentinel"):
        model.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for b in range(k):
        twin.train_step(X[16 * b:16 * (b + 1)], y[16 * b:16 * (b + 1)])
    assert model.optimizer.step_count == twin.optimizer.step_count == k
    np.testing.assert_allclose(model.params, twin.params, rtol=1e-12, atol=1e-14)
    y[16 * k] = 0.0  # training goes on from there exactly as the twin's
    model.train_step(X[:16], y[:16])
    twin.train_step(X[:16], y[:16])
    np.testing.assert_allclose(model.params, twin.params, rtol=1e-12, atol=1e-14)


def test_equal_pairs_are_one_and_share_the_compiled_loop():
    again = ActivationFn(tanh_forward, tanh_backward)
    assert again == USER_TANH and again is not USER_TANH and again != SOFTSIGN2
    model = Sequential([Dense(5, 8, activation=USER_TANH), Dense(8, 8, activation=again), Dense(8, 2)],
                       loss=Loss(mse_value, mse_gradient), dtype="float64")
    first, _ = _pair()
    assert model._train is first._train
    clone = pickle.loads(pickle.dumps(first))
    assert clone._train is first._train  # in this process the unpickled functions are the same


def test_user_function_errors_name_the_function():
    @numba.njit
    def dot_loss(out, target):  # types in float64, not in float32 (np.dot of mixed dtypes)
        d = (out - target).ravel()
        return np.dot(d, d * np.ones(d.size)) / d.size

    @numba.njit
    def dot_gradient(out, target, grad):
        grad[:] = 2.0 * (out - target) / out.size
    Sequential([Dense(3, 2)], loss=Loss(dot_loss, dot_gradient), dtype="float64")  # fine in float64
    with pytest.raises(TypeError, match=r"Loss\('dot_loss'\): value raised TypingError on a random float32 batch.*"
                                        r"value\(out, target\) -> float"):
        Sequential([Dense(3, 2)], loss=Loss(dot_loss, dot_gradient), dtype="float32")
    with pytest.raises(TypeError, match=r"value raised TypeError.*called as value\(out, target\) -> float"):
        Sequential([Dense(3, 2)], loss=Loss(mse_gradient, mse_value), backend="reference")  # swapped

    def array_value(out, target):
        return (out - target) ** 2
    with pytest.raises(TypeError, match="value must return a float.*shape"):
        Sequential([Dense(3, 2)], loss=Loss(array_value, mse_gradient), backend="reference")

    def none_value(out, target):  # np.ndim(None) is 0 and np.isrealobj(None) True: not a float all the same
        return None

    def text_value(out, target):
        return "0.5"
    for value, got in ((none_value, "NoneType"), (text_value, "str")):
        with pytest.raises(TypeError, match=f"value must return a float.*got {got}"):
            Sequential([Dense(3, 2)], loss=Loss(value, mse_gradient), backend="reference")
    with pytest.raises(TypeError, match="value must return a float.*got NoneType"):  # compiled as well
        Sequential([Dense(3, 2)], loss=Loss(numba.njit(none_value), mse_gradient))

    def failing_forward(z, a):
        raise ValueError("no negative inputs")
    with pytest.raises(ValueError, match=r"forward raised ValueError.*forward\(z, a\): no negative inputs"):
        Sequential([Dense(3, 2, activation=ActivationFn(failing_forward, tanh_backward))], loss="mse",
                   backend="reference")


def test_a_pickle_from_before_the_checked_attributes_still_loads():
    """Models pickled when loss, dtype, l1 ... were plain attributes (no l1_mode) load as before."""
    model = Sequential([Dense(3, 2)], loss="mse", l1=0.1, seed=0)
    state = model.__getstate__()
    for name in ("loss", "dtype", "backend", "huber_delta", "metrics", "l1", "l2"):
        state[name] = state.pop("_" + name)
    del state["_l1_mode"]
    old = Sequential.__new__(Sequential)
    old.__setstate__(state)
    assert old.loss == "mse" and old.l1 == 0.1 and old.l1_mode == "subgradient" and old.dtype == np.float32
    X = np.random.default_rng(0).normal(size=(8, 3))
    np.testing.assert_array_equal(old.predict(X), model.predict(X))


def test_built_attributes_are_fixed_or_checked():
    model = Sequential([Dense(3, 2)], loss="mse")
    for name, value in (("loss", USER_MSE), ("loss", "mae"), ("dtype", "float64"), ("backend", "reference")):
        with pytest.raises(AttributeError, match=f"Sequential.{name} is fixed when the model is built"):
            setattr(model, name, value)
    assert model.loss == "mse" and model.dtype == np.float32 and model.backend == "compiled"
    with pytest.raises(ValueError, match="huber_delta"):
        model.huber_delta = 0.0
    model.huber_delta = 2.0
    with pytest.raises(ValueError, match="metric 'accuracy' does not apply"):
        model.metrics = ["accuracy"]
    model.metrics = ["mae"]
    assert model.metrics == ("mae",)
    copy.deepcopy(model).fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)


def test_regression_metrics_and_lr_find():
    from fastgrad import lr_find
    X, y = _data()
    model = Sequential([Dense(5, 8, activation=USER_TANH), LayerNorm(8), Dense(8, 2)], loss=USER_MSE,
                       dtype="float64", seed=3, metrics=["mae", "r2"])
    history = model.fit(X, y, epochs=2, verbose=0, validation_split=0.25)
    assert {"mae", "r2", "val_mae", "val_r2"} <= set(history.history)
    before = model.params.copy()
    result = lr_find(model, X, y, num=20)
    np.testing.assert_array_equal(model.params, before)
    assert np.all(np.isfinite(result.losses[:5]))

"""``l1_mode="proximal"``: soft-thresholding after each update (issue 16).

The kernel against its NumPy twin (hypothesis for shapes, NaN and ties at the threshold),
one step against the closed form, the compiled loop against the reference backend, full-batch
SGD against scikit-learn's lasso (the exact zeros the subgradient never reaches), the loss
that still holds the penalty, validation of the assignable options, saving, and Dask.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgrad import Dense, Dropout, LayerNorm, Sequential
from fastgrad.reference import train as reference_train
from fastgrad.kernels import train as compiled
from fastgrad.optim import LBFGS, SGD, Adam


def _soft(w, t):
    return np.sign(w) * np.maximum(np.abs(w) - t, 0.0)


def _model(l1=0.05, mode="proximal", optimizer=None, dtype="float64", backend="compiled", seed=0):
    return Sequential([Dense(6, 8, activation="tanh"), LayerNorm(8), Dense(8, 2)], loss="mse", l1=l1,
                      l1_mode=mode, optimizer=optimizer or SGD(lr=0.05), dtype=dtype, seed=seed,
                      backend=backend)


def _data(n=40, n_in=6, k=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.normal(size=(n, k))


@settings(max_examples=25, deadline=None)
@given(n_in=st.integers(1, 7), n_out=st.integers(1, 5), threshold=st.floats(0.0, 1.5),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_kernel_equals_reference(n_in, n_out, threshold, dtype, seed):
    model = Sequential([Dense(n_in, n_out), LayerNorm(n_out), Dense(n_out, 3)], loss="mse", dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    params = rng.normal(size=model.n_params).astype(dtype)
    params[::5] = dtype(threshold)           # ties at the threshold go to 0
    params[1::7] = -dtype(threshold)
    params[2::11] = np.nan                   # NaN stays NaN
    ours, ref = params.copy(), params.copy()
    t = dtype(threshold)
    compiled.proximal_l1(ours, model._net(), t)
    reference_train.proximal_l1(ref, model._net(), t)
    np.testing.assert_array_equal(ours, ref)
    # only Dense weights move; biases and LayerNorm's weight and bias do not
    for layer in (model.layers[0], model.layers[2]):
        lo = layer.W.ctypes.data - model.params.ctypes.data
        i0 = lo // model.params.itemsize
        w = params[i0:i0 + layer.W.size]
        got = ours[i0:i0 + layer.W.size]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(w))
        finite = ~np.isnan(w)
        np.testing.assert_array_equal(got[finite], _soft(w[finite], t).astype(dtype))
    moved = ours != params
    dense_rows = np.zeros(model.n_params, bool)
    for layer in (model.layers[0], model.layers[2]):
        i0 = (layer.W.ctypes.data - model.params.ctypes.data) // model.params.itemsize
        dense_rows[i0:i0 + layer.W.size] = True
    assert not np.any(moved & ~dense_rows & ~np.isnan(params))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_is_gradient_step_then_soft_threshold(dtype):
    X, y = _data()
    lr, lam = 0.05, 2.0
    model = _model(l1=lam, dtype=dtype)
    smooth = _model(l1=0.0, mode="subgradient", dtype=dtype)
    smooth.params = model.params.copy()
    loss_smooth, grad = smooth.loss_and_grad(X, y)
    W0 = [layer.W.copy() for layer in (model.layers[0], model.layers[2])]
    expected = model.params - model.dtype.type(lr) * grad
    loss = model.train_step(X, y)
    # the step's loss holds l1 * sum|W| at the parameters before the update
    np.testing.assert_allclose(loss, loss_smooth + lam * sum(np.abs(w).sum() for w in W0),
                               rtol=1e-6 if dtype == "float32" else 1e-12)
    expected_model = _model(l1=0.0, mode="subgradient", dtype=dtype)
    expected_model.params = expected.astype(dtype)
    for layer in (expected_model.layers[0], expected_model.layers[2]):
        layer.W = _soft(layer.W, lr * lam).astype(dtype)
    np.testing.assert_allclose(model.params, expected_model.params, rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-7 if dtype == "float32" else 1e-15)
    assert np.count_nonzero(model.layers[0].W == 0) > 0  # lr * lam = 0.1 catches some of 48 weights


@pytest.mark.parametrize("optimizer", [lambda: SGD(lr=0.05, momentum=0.9), lambda: Adam(lr=0.01)])
def test_compiled_fit_equals_reference_backend(optimizer):
    X, y = _data(n=64)
    a = _model(l1=1.0, optimizer=optimizer())
    b = _model(l1=1.0, optimizer=optimizer(), backend="reference")
    b.params = a.params.copy()
    ha = a.fit(X, y, epochs=4, batch_size=16, verbose=0)
    hb = b.fit(X, y, epochs=4, batch_size=16, verbose=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-10)
    assert np.count_nonzero(a.layers[0].W == 0) == np.count_nonzero(b.layers[0].W == 0) > 0


def _lasso_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 10))
    w = np.zeros(10)
    w[:3] = (2.0, -1.5, 0.7)
    return X, X @ w + 0.3 + 0.1 * rng.normal(size=200)


def _linear(mode, lam, lr):
    model = Sequential([Dense(10, 1)], loss="mse", l1=lam, l1_mode=mode, optimizer=SGD(lr=lr), dtype="float64",
                       seed=0)
    return model


def test_full_batch_sgd_reaches_the_lasso_solution():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = _lasso_data()
    lam, lr = 0.2, 0.1  # lr < 1 / L with L = 2 * max eigenvalue of X^T X / n (about 2 * 1.5)
    model = _linear("proximal", lam, lr)
    model.fit(X, y, epochs=3000, batch_size=200, shuffle=False, verbose=0)
    # fastgrad's MSE is mean(r^2); scikit-learn's lasso objective is mean(r^2) / 2 + alpha |w|_1
    lasso = sklearn.Lasso(alpha=lam / 2, tol=1e-14, max_iter=100_000).fit(X, y)
    W = model.layers[0].W[:, 0]
    np.testing.assert_array_equal(W == 0, lasso.coef_ == 0)
    assert np.count_nonzero(W == 0) >= 5
    np.testing.assert_allclose(W, lasso.coef_, atol=1e-9)
    np.testing.assert_allclose(model.layers[0].b[0], lasso.intercept_, atol=1e-9)


def test_subgradient_mode_never_reaches_zero():
    X, y = _lasso_data()
    prox, sub = _linear("proximal", 0.2, 0.1), _linear("subgradient", 0.2, 0.1)
    for model in (prox, sub):
        model.fit(X, y, epochs=500, batch_size=200, shuffle=False, verbose=0)
    assert np.count_nonzero(prox.layers[0].W == 0) >= 5
    assert np.count_nonzero(sub.layers[0].W == 0) == 0
    # both near the same solution: where the proximal weights are 0, the subgradient's hover near 0
    zero = prox.layers[0].W == 0
    assert np.all(np.abs(sub.layers[0].W[zero]) < 0.05) and np.all(np.abs(prox.layers[0].W[:3]) > 0.5)


def test_loss_includes_the_penalty_in_both_modes():
    X, y = _data()
    for mode in ("proximal", "subgradient"):
        model = _model(l1=0.1, mode=mode)
        plain = _model(l1=0.0, mode="subgradient")
        plain.params = model.params.copy()
        l1_term = 0.1 * sum(np.abs(layer.W).sum() for layer in (model.layers[0], model.layers[2]))
        np.testing.assert_allclose(model.evaluate(X, y)["loss"], plain.evaluate(X, y)["loss"] + l1_term,
                                   rtol=1e-12)
        loss, grad = model.loss_and_grad(X, y)
        loss0, grad0 = plain.loss_and_grad(X, y)
        np.testing.assert_allclose(loss, loss0 + l1_term, rtol=1e-12)
        if mode == "proximal":  # the gradient of the smooth part only
            np.testing.assert_array_equal(grad, grad0)
        else:
            assert not np.allclose(grad, grad0)


def test_per_step_schedule_thresholds_with_each_steps_rate():
    from fastgrad.schedules import OneCycleLR
    X, y = _data(n=64)
    a = _model(optimizer=SGD(lr=0.05))
    b = _model(optimizer=SGD(lr=0.05), backend="reference")
    b.params = a.params.copy()
    for model in (a, b):
        model.fit(X, y, epochs=2, batch_size=16, verbose=0,
                  callbacks=[OneCycleLR(model.optimizer, max_lr=0.2, total_steps=8, cycle_momentum=False)])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-13)


def test_options_are_checked_when_given_and_assigned():
    with pytest.raises(ValueError, match="l1_mode must be one of 'subgradient', 'proximal'; got 'lasso'"):
        _model(mode="lasso")
    model = _model()
    with pytest.raises(ValueError, match="l1_mode"):
        model.l1_mode = True
    with pytest.raises(ValueError, match="l1"):
        model.l1 = -0.1
    with pytest.raises(ValueError, match="l2"):
        model.l2 = float("nan")
    assert model.l1 == 0.05 and model.l1_mode == "proximal"
    model.l1_mode = "subgradient"
    model.l1 = 0.2
    assert model._objective().l1 == 0.2 and not model._objective().l1_prox


def test_lbfgs_refuses_proximal():
    with pytest.raises(ValueError, match="l1_mode='proximal'.*LBFGS"):
        _model(optimizer=LBFGS())
    model = _model(mode="subgradient", optimizer=LBFGS())
    with pytest.raises(ValueError, match="l1_mode='proximal'.*LBFGS"):
        model.l1_mode = "proximal"
    model = _model()
    model.optimizer = LBFGS()
    with pytest.raises(ValueError, match="l1_mode='proximal'.*LBFGS"):
        model.fit(*_data(), epochs=1, verbose=0)


def test_dropout_model_trains_with_proximal():
    X, y = _data(n=64)
    model = Sequential([Dense(6, 16, activation="relu"), Dropout(0.2), Dense(16, 2)], loss="mse", l1=1.0,
                       l1_mode="proximal", optimizer=SGD(lr=0.05), seed=0)
    model.fit(X, y, epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(model.params)) and np.count_nonzero(model.layers[0].W == 0) > 0


def test_saved_and_loaded(tmp_path):
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded.l1_mode == "proximal" and loaded.l1 == model.l1
    model.fit(X, y, epochs=1, verbose=0, shuffle=False)
    loaded.fit(X, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(model.params, loaded.params)

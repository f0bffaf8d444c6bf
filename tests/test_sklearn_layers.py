"""fastgrad.sklearn's dropout and batch_norm: the network they build, one training step and the
running statistics by hand, evaluation-mode predictions, determinism, the folded last batch,
refusals, early stopping, warm_start/partial_fit, persistence, and scikit-learn's checks."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastgrad.layers import Activation, BatchNorm1d, Dense, Dropout  # noqa: E402
from fastgrad.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from fastgrad.sklearn import _train  # noqa: E402

pytestmark = pytest.mark.usefixtures("sklearn_kernels")  # compiled once per session (conftest.py)


def _data(kind, n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    if kind == "multiclass":
        return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * rng.standard_normal(n)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ----- the network -----------------------------------------------------------------------------
@pytest.mark.parametrize("dropout, batch_norm, activation, kinds", [
    (0.0, False, "relu", [Dense, Dense, Dense]),
    (0.2, False, "relu", [Dense, Dropout, Dense, Dropout, Dense]),
    (0.0, True, "logistic", [Dense, BatchNorm1d, Activation, Dense, BatchNorm1d, Activation, Dense]),
    (0.2, True, "tanh", [Dense, BatchNorm1d, Activation, Dropout, Dense, BatchNorm1d, Activation, Dropout, Dense]),
    (0.0, True, "identity", [Dense, BatchNorm1d, Dense, BatchNorm1d, Dense]),
])
def test_hidden_layers_and_views(dropout, batch_norm, activation, kinds):
    """Dense(act) [-> Dropout], or Dense (linear, no bias) -> BatchNorm1d -> Activation [-> Dropout];
    coefs_ are the Dense weights, intercepts_ their biases or, with batch_norm, BatchNorm1d's beta."""
    X, y = _data("multiclass")
    est = _quiet(MLPClassifier((6, 4), activation=activation, dropout=dropout, batch_norm=batch_norm, max_iter=2,
                               random_state=0).fit, X, y)
    layers = est.model_.layers
    assert [type(layer) for layer in layers] == kinds
    assert [layer.p for layer in layers if isinstance(layer, Dropout)] == [dropout] * (2 if dropout else 0)
    fused = {"logistic": "sigmoid"}.get(activation, activation)
    assert [layer.activation for layer in layers if isinstance(layer, Activation)] == [fused] * 2 * (
        batch_norm and activation != "identity")
    hidden = [layer for layer in layers[:-1] if isinstance(layer, Dense)]
    assert all(layer.use_bias != batch_norm for layer in hidden)
    assert all(layer.activation == ("identity" if batch_norm else fused) for layer in hidden)
    assert est.n_layers_ == 4 and [W.shape for W in est.coefs_] == [(5, 6), (6, 4), (4, 3)]
    assert [b.shape for b in est.intercepts_] == [(6,), (4,), (3,)]
    assert all(np.shares_memory(a, est.model_.params) for a in est.coefs_ + est.intercepts_)
    norms = [layer for layer in layers if isinstance(layer, BatchNorm1d)]
    for b, norm in zip(est.intercepts_, norms):
        assert np.shares_memory(b, norm.bias) and b.ctypes.data == norm.bias.ctypes.data
    assert est.model_.state.size == (2 * (6 + 4) if batch_norm else 0)


def test_predictions_by_hand_use_running_statistics_and_no_dropout():
    """decision_function = the network evaluated by hand from coefs_, intercepts_ and BatchNorm1d's
    weight and running statistics, without dropout; the same after model_.train()."""
    X, y = _data("multiclass", n=90)
    est = _quiet(MLPClassifier((6, 4), activation="tanh", dropout=0.5, batch_norm=True, max_iter=30,
                               batch_size=32, random_state=0, dtype="float64").fit, X, y)
    norms = [layer for layer in est.model_.layers if isinstance(layer, BatchNorm1d)]
    assert not np.allclose(norms[0].running_mean, 0) and not np.allclose(norms[0].running_var, 1)
    a = X
    for W, b, norm in zip(est.coefs_[:-1], est.intercepts_[:-1], norms):
        a = np.tanh((a @ W - norm.running_mean) / np.sqrt(norm.running_var + 1e-5) * norm.weight + b)
    z = a @ est.coefs_[-1] + est.intercepts_[-1]
    np.testing.assert_allclose(est.decision_function(X), z, rtol=1e-12, atol=1e-12)
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), proba / proba.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(est.predict(X), np.argmax(z, axis=1))
    est.model_.train()  # the estimators' predict paths evaluate whatever the model's mode
    np.testing.assert_allclose(est.decision_function(X), z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X[:1]), est.predict_proba(X)[:1], rtol=1e-13)  # row by row


def test_one_sgd_step_and_running_statistics_by_hand():
    """One full-batch SGD step with dropout and batch_norm moves the parameters by
    -lr * (the training-mode gradient, dropout masks and batch statistics included, + the L2 term
    on the Dense weights only), and the running statistics by PyTorch's rule."""
    X, y = _data("multiclass", n=40)
    lr, alpha, n = 0.1, 0.3, len(X)
    params = dict(hidden_layer_sizes=(7, 5), solver="sgd", momentum=0.0, batch_size=n, shuffle=False, alpha=alpha,
                  max_iter=1, random_state=3, dtype="float64", dropout=0.5, batch_norm=True)
    start = _quiet(MLPClassifier(**dict(params, learning_rate_init=1e-300)).fit, X, y)
    stepped = _quiet(MLPClassifier(**dict(params, learning_rate_init=lr)).fit, X, y)
    model = start.model_
    assert model.dropout_seed == stepped.model_.dropout_seed  # drawn from random_state
    p0 = model.params.copy()
    W0 = [W.copy() for W in start.coefs_]
    model.optimizer.step_count = 0        # the gradient of the first step: its dropout masks
    model.train()
    _, grad = model.loss_and_grad(X, y)
    model.eval()
    _, grad_eval = model.loss_and_grad(X, y)
    assert not np.allclose(grad, grad_eval)  # dropout and batch statistics did act
    model.params[:] = 0.0                   # the penalised entries: the Dense weights alone
    for W, w0 in zip(start.coefs_, W0):
        W[...] = w0
    dense_only = model.params.copy()
    model.params[:] = p0
    expected = p0 - lr * (grad + alpha / n * dense_only)
    np.testing.assert_allclose(stepped.model_.params, expected, rtol=1e-10, atol=1e-13)
    z = X @ W0[0]  # the first BatchNorm1d's input (its Dense has no bias)
    norm = stepped.model_.layers[1]
    np.testing.assert_allclose(norm.running_mean, 0.1 * z.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * z.var(axis=0, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("solver", ("adam", "sgd", "adamw", "rmsprop", "adagrad"))
def test_every_stochastic_solver_trains_with_dropout_and_batch_norm(solver):
    X, y = _data("multiclass", n=120)
    params = dict(hidden_layer_sizes=(16, 8), solver=solver, dropout=0.2, batch_norm=True, batch_size=32,
                  learning_rate_init=0.01, max_iter=15, tol=0.0, random_state=0)
    est = _quiet(MLPClassifier(**params).fit, X, y)
    assert est.n_iter_ == 15 and est.loss_curve_[-1] < 0.8 * est.loss_curve_[0]
    assert est.score(X, y) > 0.7
    again = _quiet(MLPClassifier(**params).fit, X, y)
    np.testing.assert_array_equal(again.model_.params, est.model_.params)
    np.testing.assert_array_equal(again.model_.state, est.model_.state)


def test_dropout_is_deterministic_given_random_state():
    X, y = _data("regression")
    params = dict(hidden_layer_sizes=(16,), max_iter=5, dropout=0.3)
    a = _quiet(MLPRegressor(random_state=0, **params).fit, X, y)
    b = _quiet(MLPRegressor(random_state=0, **params).fit, X, y)
    other = _quiet(MLPRegressor(random_state=1, **params).fit, X, y)
    plain = _quiet(MLPRegressor(random_state=0, **dict(params, dropout=0.0)).fit, X, y)
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    assert a.loss_curve_ == b.loss_curve_
    assert a.model_.dropout_seed != other.model_.dropout_seed
    assert not np.allclose(a.coefs_[0], plain.coefs_[0])
    # the same initialisation as without dropout: its seed is drawn after scikit-learn's draws
    init = [_quiet(MLPRegressor(random_state=0, learning_rate_init=1e-300, **dict(params, dropout=d)).fit, X, y)
            for d in (0.0, 0.3)]
    np.testing.assert_array_equal(init[0].coefs_[0], init[1].coefs_[0])
    warm = MLPRegressor(random_state=0, warm_start=True, **params)
    seeds = [_quiet(warm.fit, X, y).model_.dropout_seed for _ in range(2)]
    assert seeds[0] != seeds[1]  # a fit's fresh optimizer counts steps from 1 again: fresh masks


# ----- the last batch of one row ---------------------------------------------------------------
def test_batch_sizes_fold_a_last_row_into_the_batch_before():
    np.testing.assert_array_equal(_train.batch_sizes(5, 2), [2, 2, 1])
    np.testing.assert_array_equal(_train.batch_sizes(5, 2, fold_single=True), [2, 3])
    np.testing.assert_array_equal(_train.batch_sizes(401, 200, fold_single=True), [200, 201])
    np.testing.assert_array_equal(_train.batch_sizes(6, 2, fold_single=True), [2, 2, 2])
    np.testing.assert_array_equal(_train.batch_sizes(4, 10, fold_single=True), [4])


def test_batch_norm_epoch_with_a_folded_last_batch_by_hand():
    """5 rows in batches of 2 with batch_norm: two SGD steps, on rows 0-1 then 2-4 (not 2-3, 4)."""
    X, y = _data("regression", n=5)
    lr = 0.05
    params = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=2, shuffle=False, alpha=0.0,
                  max_iter=1, random_state=0, dtype="float64", batch_norm=True)
    start = _quiet(MLPRegressor(**dict(params, learning_rate_init=1e-300)).fit, X, y)
    est = _quiet(MLPRegressor(**dict(params, learning_rate_init=lr)).fit, X, y)
    model = start.model_.train()
    expected = model.params.copy()
    for rows in (slice(0, 2), slice(2, 5)):
        model.params[:] = expected
        _, grad = model.loss_and_grad(X[rows], y[rows])
        expected = expected - lr * grad / 2.0  # the kernel's mse is 2x scikit-learn's objective (1 output)
    np.testing.assert_allclose(est.model_.params, expected, rtol=1e-10, atol=1e-13)
    assert est.t_ == 5 and np.isfinite(est.model_.state).all()


def test_batch_norm_last_row_of_a_large_epoch_trains():
    X, y = _data("multiclass", n=201)  # batch_size "auto": 200 + 1 rows, trained as one batch of 201
    est = _quiet(MLPClassifier((8,), batch_norm=True, max_iter=5, random_state=0).fit, X, y)
    assert np.isfinite(est.model_.state).all() and np.isfinite(est.loss_curve_).all()
    assert est.t_ == 5 * 201


# ----- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, error, match", [
    (dict(dropout=1.0), ValueError, r"dropout must be < 1.0, got 1.0"),
    (dict(dropout=-0.1), ValueError, r"dropout must be >= 0.0, got -0.1"),
    (dict(dropout="0.1"), TypeError, r"dropout must be a real number, got"),
    (dict(dropout=np.nan), ValueError, r"dropout must be finite"),
    (dict(batch_norm="yes"), TypeError, r"batch_norm must be True or False, got 'yes'"),
    (dict(batch_norm=1), TypeError, r"batch_norm must be True or False, got 1"),
    (dict(batch_norm=True, batch_size=1), ValueError, r"batch_norm=True needs batch_size >= 2.*got batch_size=1"),
    (dict(solver="lbfgs", dropout=0.2), ValueError,
     r"solver='lbfgs' cannot train with dropout=0.2 and batch_norm=False"),
    (dict(solver="lbfgs", batch_norm=True), ValueError, r"solver='lbfgs' cannot train with dropout=0.0 and "
                                                        r"batch_norm=True.*stochastic solver"),
])
@pytest.mark.parametrize("cls", (MLPClassifier, MLPRegressor))
def test_invalid_dropout_and_batch_norm_raise_at_fit(cls, params, error, match):
    est = cls((3,), max_iter=2, **params)  # __init__ stores, never checks (scikit-learn's rule)
    assert all(est.get_params()[k] is v for k, v in params.items())
    X, y = _data("multiclass" if cls is MLPClassifier else "regression")
    with pytest.raises(error, match=match):
        est.fit(X, y)


def test_batch_norm_refuses_one_sample_for_fit_and_partial_fit():
    X, y = _data("regression")
    with pytest.raises(ValueError, match="batch_norm=True needs at least 2 training samples.*got 1 sample"):
        MLPRegressor((3,), batch_norm=True).fit(X[:1], y[:1])
    est = MLPClassifier((3,), batch_norm=True)
    with pytest.raises(ValueError, match="got 1 sample"):
        est.partial_fit(X[:1], [0], classes=[0, 1])
    assert _quiet(MLPRegressor((3,), dropout=0.5, max_iter=2).fit, X[:1], y[:1]).n_iter_ == 2  # dropout alone: fine


# ----- early stopping, warm_start, partial_fit, persistence ----------------------------------------
def test_early_stopping_restores_parameters_and_running_statistics(monkeypatch):
    """The model after fit is the one of the best validation epoch: parameters and BatchNorm1d's
    running statistics (the model's state buffer), so its validation score is the best one."""
    from fastgrad.sklearn import _base
    snapshots = []
    original = _base.BaseMLP._update_no_improvement_count

    def spy(self, X_val, val, logs):
        snapshots.append((self.model_.params.copy(), self.model_.state.copy()))
        return original(self, X_val, val, logs)

    monkeypatch.setattr(_base.BaseMLP, "_update_no_improvement_count", spy)
    X, y = _data("regression", n=300, seed=2)
    est = _quiet(MLPRegressor((16,), batch_norm=True, dropout=0.1, early_stopping=True, n_iter_no_change=3,
                              learning_rate_init=0.05, batch_size=16, max_iter=200, random_state=0,
                              dtype="float64").fit, X, y)
    best = int(np.argmax(est.validation_scores_))
    assert best < est.n_iter_ - 1 < 199  # stopped, after epochs worse than the best
    params, state = snapshots[best]
    np.testing.assert_array_equal(est.model_.params, params)
    np.testing.assert_array_equal(est.model_.state, state)
    assert not np.array_equal(snapshots[-1][1], state)  # the restore mattered


def test_partial_fit_and_pickle_resume_identically():
    X, y = _data("multiclass")
    est = MLPClassifier((8,), batch_norm=True, dropout=0.3, batch_size=16, random_state=0)
    est.partial_fit(X, y, classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert np.shares_memory(copy.intercepts_[0], copy.model_.params)
    assert copy.model_.dropout_seed == est.model_.dropout_seed
    for _ in range(2):
        est.partial_fit(X, y)
        copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.model_.params, est.model_.params)
    np.testing.assert_array_equal(copy.model_.state, est.model_.state)
    assert [type(layer) for layer in copy.model_.layers] == [type(layer) for layer in est.model_.layers]
    fresh = clone(est)
    assert not hasattr(fresh, "model_") and fresh.get_params()["batch_norm"] is True
    assert fresh.get_params()["dropout"] == 0.3


def test_joblib_round_trip(tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = _data("regression")
    est = _quiet(MLPRegressor((6,), batch_norm=True, dropout=0.2, max_iter=10, random_state=0).fit, X, y)
    joblib.dump(est, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.model_.state, est.model_.state)


def test_warm_start_continues_changes_dropout_and_refuses_another_batch_norm():
    X, y = _data("multiclass")
    est = MLPClassifier((6,), batch_norm=True, dropout=0.3, warm_start=True, max_iter=3, random_state=0)
    _quiet(est.fit, X, y)
    _quiet(est.fit, X, y)
    assert len(est.loss_curve_) == 6 and est.t_ == 6 * len(X)
    before = est.model_.params.copy()
    state = est.model_.state.copy()
    est.set_params(dropout=0.0, learning_rate_init=1e-300)  # the same network without Dropout, same arrays
    _quiet(est.fit, X, y)
    assert not any(isinstance(layer, Dropout) for layer in est.model_.layers)
    np.testing.assert_allclose(est.model_.params, before, rtol=0, atol=1e-290)
    assert not np.array_equal(est.model_.state, state)  # training continued the running statistics
    assert all(np.shares_memory(a, est.model_.params) for a in est.coefs_ + est.intercepts_)
    with pytest.raises(ValueError, match=r"architecture of the previous fit.*batch_norm=True, got .*batch_norm=False"):
        est.set_params(batch_norm=False).fit(X, y)


def test_no_hidden_layers_ignore_dropout_and_batch_norm():
    """hidden_layer_sizes=() is a linear model: nothing to drop or normalize, warm_start continues."""
    X, y = _data("multiclass")
    est = MLPClassifier((), dropout=0.3, batch_norm=True, warm_start=True, max_iter=3, batch_size=16, random_state=0)
    _quiet(est.fit, X, y)
    model = est.model_
    assert [type(layer) for layer in model.layers] == [Dense]
    _quiet(est.fit, X, y)
    assert est.model_ is model and len(est.loss_curve_) == 6
    plain = _quiet(MLPClassifier((), warm_start=True, max_iter=3, batch_size=16, random_state=0).fit, X, y)
    _quiet(plain.fit, X, y)
    np.testing.assert_array_equal(plain.model_.params, est.model_.params)


def test_grid_search_over_dropout_and_batch_norm():
    from sklearn.model_selection import GridSearchCV
    X, y = _data("multiclass", n=150)
    grid = {"dropout": [0.0, 0.2], "batch_norm": [False, True]}
    search = _quiet(GridSearchCV(MLPClassifier((16,), max_iter=60, learning_rate_init=0.01, random_state=0), grid,
                                 cv=2).fit, X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.6 and search.score(X, y) > 0.8


# ----- scikit-learn's checks with dropout and batch_norm ----------------------------------------------
# Integer sample weights are not repeated rows with dropout (one mask per row) or batch_norm
# (BatchNorm1d's batch statistics are unweighted, as in PyTorch and Keras); the default
# configuration passes this check (tests/test_sklearn.py).
LAYER_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data":
        "dropout draws a mask per row and BatchNorm1d's batch statistics are unweighted, so weight k is not k rows"}


@parametrize_with_checks(
    [MLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0, dtype="float64", dropout=0.1,
                   batch_norm=True),
     MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01, random_state=0, dtype="float64",
                  dropout=0.1, batch_norm=True)],
    expected_failed_checks=lambda est: LAYER_EXPECTED_FAILURES)
def test_sklearn_estimator_checks_with_dropout_and_batch_norm(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)

"""fastgrad.sklearn: scikit-learn's estimator checks, parity with scikit-learn's MLP, persistence."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks  # noqa: E402

from fastgrad.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# The kernels compile (or load) once per session, before the first test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sklearn_kernels")


def _check_instances(dtype):
    """Both estimators; small networks, enough epochs for the checks' score thresholds."""
    return [MLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0, dtype=dtype),
            MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01, random_state=0,
                         dtype=dtype)]


@parametrize_with_checks(_check_instances("float64"), expected_failed_checks=lambda est: {})
def test_sklearn_estimator_checks_float64(estimator, check):
    """Every check of scikit-learn, no expected failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# The checks that compare predictions to 1e-7 relative/absolute: in float32 the BLAS sums a row's
# products in another order for another number of rows (measured: 1.2e-7 apart on outputs of
# ~1; weighted vs repeated rows: 2.8e-7 relative). They run on the float64 instances above, and
# float32 is held to float32 round-off below and in test_sklearn_weights.py.
FLOAT64_ONLY = {"check_methods_subset_invariance", "check_sample_weight_equivalence_on_dense_data"}
FLOAT32_CHECKS = [pytest.param(est, check, id=f"{type(est).__name__}-float32-{check.func.__name__}")
                  for est in _check_instances("float32")
                  for _, check in estimator_checks_generator(est)
                  if check.func.__name__ not in FLOAT64_ONLY]


@pytest.mark.parametrize("estimator, check", FLOAT32_CHECKS)
def test_sklearn_estimator_checks_float32(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("cls", (MLPClassifier, MLPRegressor))
def test_float32_predictions_subset_invariant_to_round_off(cls):
    X, y = _data("multiclass" if cls is MLPClassifier else "regression", n=60)
    est = cls((32,), max_iter=20, random_state=0).fit(X, y)
    method = est.predict_proba if cls is MLPClassifier else est.predict
    full = method(X)
    by_batch = np.concatenate([method(X[i:i + 7]) for i in range(0, 60, 7)])
    np.testing.assert_allclose(by_batch, full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([method(X[i:i + 1]) for i in range(60)]), full, rtol=1e-5, atol=1e-6)


# ----- parity with scikit-learn's MLP (float64: same init draws, same batches, same objective) ------
def _data(kind, n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    if kind == "multiclass":
        return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    if kind == "binary":
        return X, np.where(X[:, 0] - X[:, 3] > 0, "yes", "no")
    if kind == "multilabel":
        return X, np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 4] > 0.3], axis=1).astype(int)
    if kind == "regression":
        return X, X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * rng.standard_normal(n)
    return X, np.stack([X[:, 0] - X[:, 1], np.sin(X[:, 2])], axis=1)


def _pair(kind, **params):
    cls = (MLPRegressor, sk_nn.MLPRegressor) if kind.endswith("regression") else (MLPClassifier,
                                                                                    sk_nn.MLPClassifier)
    ours = cls[0](dtype="float64", **params)
    theirs = cls[1](**params)
    return ours, theirs


def _fit_both(kind, **params):
    X, y = _data(kind)
    ours, theirs = _pair(kind, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours.fit(X, y), theirs.fit(X, y), X, y


KINDS = ("multiclass", "binary", "multilabel", "regression", "multioutput_regression")


@pytest.mark.parametrize("kind", KINDS)
def test_sgd_trajectory_equals_sklearn(kind):
    """SGD with Nesterov momentum, alpha, a short last batch (50 = 3 * 16 + 2), shuffling:
    the same parameters as scikit-learn's after 5 epochs, to float64 round-off."""
    ours, theirs, X, _ = _fit_both(kind, hidden_layer_sizes=(7, 4), activation="tanh", solver="sgd",
                                   alpha=0.3, batch_size=16, learning_rate_init=0.05, max_iter=5,
                                   random_state=1, tol=0.0)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    assert ours.t_ == theirs.t_ == 250
    if kind != "multioutput_regression":  # scikit-learn's reported loss averages over outputs, see docs
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)
        assert ours.best_loss_ == min(ours.loss_curve_) and ours.loss_ == ours.loss_curve_[-1]
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    assert ours.validation_loss_curve_ == []
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.n_layers_ == theirs.n_layers_ == 4


@pytest.mark.parametrize("kind", ("multiclass", "multilabel", "regression"))
def test_lbfgs_equals_sklearn(kind):
    ours, theirs, X, _ = _fit_both(kind, hidden_layer_sizes=(6,), activation="logistic", solver="lbfgs",
                                   alpha=0.5, max_iter=15, random_state=3)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ("multiclass", "regression"))
def test_adam_close_to_sklearn(kind):
    """Adam differs from scikit-learn's only in where epsilon enters (PyTorch's form)."""
    ours, theirs, X, _ = _fit_both(kind, hidden_layer_sizes=(8,), max_iter=20, batch_size=10,
                                   learning_rate_init=0.01, random_state=0, tol=0.0)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(ours.predict(X) if kind == "regression" else ours.predict_proba(X),
                               theirs.predict(X) if kind == "regression" else theirs.predict_proba(X),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ("binary", "regression"))
def test_early_stopping_equals_sklearn(kind):
    """Same split, same validation scores, same stopping epoch, best parameters restored."""
    X, y = _data(kind, n=200, seed=4)
    params = dict(hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=0.05, batch_size=32,
                  early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, tol=1e-3,
                  max_iter=200, random_state=2)
    ours, theirs = _pair(kind, **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-9)
    assert ours.best_loss_ is None
    assert len(ours.validation_loss_curve_) == ours.n_iter_
    assert ours.history_.history["val_score"] == ours.validation_scores_
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kind, stratified", [("multiclass", True), ("binary", True), ("multilabel", False)])
def test_early_stopping_split_is_stratified(kind, stratified, monkeypatch):
    """scikit-learn's documentation: the split is stratified except for multi-label y."""
    from fastgrad.sklearn import _base
    seen = {}

    def spy(*arrays, **kwargs):
        seen["stratify"] = kwargs["stratify"]
        return _base_split(*arrays, **kwargs)

    from sklearn.model_selection import train_test_split as _base_split
    monkeypatch.setattr(_base, "train_test_split", spy)
    X, y = _data(kind, n=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((4,), early_stopping=True, max_iter=2, random_state=0).fit(X, y)
    if stratified:
        np.testing.assert_array_equal(seen["stratify"], y)
    else:
        assert seen["stratify"] is None


def test_adaptive_and_invscaling_learning_rates_equal_sklearn():
    for schedule in ("invscaling", "adaptive"):
        ours, theirs, X, _ = _fit_both("regression", hidden_layer_sizes=(5,), solver="sgd", momentum=0.0,
                                       learning_rate=schedule, learning_rate_init=0.02, batch_size=50,
                                       max_iter=40, n_iter_no_change=2, tol=0.5, random_state=0)
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def test_loss_is_sklearns_objective_with_alpha_scaling():
    """loss_ at the end of L-BFGS = mean squared error / 2 + alpha / (2 n) * sum ||W||^2, by hand."""
    X, y = _data("regression")
    est = MLPRegressor((4,), solver="lbfgs", alpha=2.0, max_iter=5, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    penalty = 2.0 / (2 * len(X)) * sum(float(np.sum(W ** 2)) for W in est.coefs_)
    expected = np.mean((est.predict(X) - y) ** 2) / 2 + penalty
    assert est.loss_ == pytest.approx(expected, rel=1e-12)


# ----- fit variants ------------------------------------------------------------------------
def test_partial_fit_requires_classes_then_rejects_unseen_labels():
    X, y = _data("multiclass")
    est = MLPClassifier((5,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1, 2] and est.n_outputs_ == 3
    est.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X, np.where(y == 2, 7, y))
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


def test_partial_fit_equals_sklearn():
    X, y = _data("multiclass")
    ours, theirs = _pair("multiclass", hidden_layer_sizes=(6,), solver="sgd", random_state=0, batch_size=20)
    for _ in range(3):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-9, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 150


def test_warm_start_continues_and_checks_classes():
    X, y = _data("multiclass")
    est = MLPClassifier((5,), warm_start=True, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        first = est.coefs_[0].copy()
        est.fit(X, y)
    assert len(est.loss_curve_) == 6 and est.t_ == 300
    assert not np.allclose(first, est.coefs_[0])
    with pytest.raises(ValueError, match="warm_start can only be used"):
        est.fit(X[y < 2], y[y < 2])
    cold = MLPClassifier((5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X, y)
        cold.fit(X, y)
    np.testing.assert_array_equal(cold.coefs_[0], first)


def test_multilabel_and_multioutput_shapes():
    X, Y = _data("multilabel")
    est = MLPClassifier((8,), max_iter=50, random_state=0).fit(X, Y)
    proba = est.predict_proba(X)
    assert est.predict(X).shape == Y.shape and proba.shape == Y.shape
    assert set(np.unique(est.predict(X))) <= {0, 1}
    z = est.decision_function(X)
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-z.astype(np.float64))), rtol=1e-6)  # one sigmoid per label
    np.testing.assert_array_equal(est.predict(X), (z > 0).astype(int))
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-6, atol=1e-10)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 3 and list(est.classes_) == [0, 1, 2]
    assert est.score(X, Y) == np.mean(np.all(est.predict(X) == Y, axis=1))  # subset accuracy
    X, Y = _data("multioutput_regression")
    reg = MLPRegressor((8,), max_iter=50, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == Y.shape and reg.n_outputs_ == 2 and reg.out_activation_ == "identity"
    from sklearn.metrics import r2_score
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, reg.predict(X)))


def test_probabilities_and_decision_function_agree():
    X, y = _data("binary")
    est = MLPClassifier((6,), max_iter=30, random_state=0).fit(X, y)
    z = est.decision_function(X)
    proba = est.predict_proba(X)
    assert z.shape == (len(X),)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(z > 0).astype(int)])


def test_views_dtype_and_outputs():
    X, y = _data("multiclass")
    est = MLPClassifier((6, 4), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert all(np.shares_memory(W, est.model_.params) for W in est.coefs_ + est.intercepts_)
    assert [W.shape for W in est.coefs_] == [(5, 6), (6, 4), (4, 3)]
    assert est.model_.dtype == np.float32
    assert est.predict_proba(X).dtype == np.float64
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert len(est.history_.history["loss"]) == 5


@pytest.mark.parametrize("method", ("predict", "predict_proba", "predict_log_proba", "decision_function", "score"))
def test_not_fitted(method):
    args = (np.ones((2, 3)),) + ((np.zeros(2),) if method == "score" else ())
    with pytest.raises(NotFittedError):
        getattr(MLPClassifier(), method)(*args)
    if hasattr(MLPRegressor, method):
        with pytest.raises(NotFittedError):
            getattr(MLPRegressor(), method)(*args)


def test_tags_through_sklearn_tags():
    """Tags come from __sklearn_tags__ (calling super(): the mixins' estimator type), never _more_tags."""
    from sklearn.utils import get_tags
    clf, reg = get_tags(MLPClassifier()), get_tags(MLPRegressor())
    assert clf.estimator_type == "classifier" and clf.classifier_tags.multi_label
    assert clf.target_tags.required and clf.input_tags.two_d_array and not clf.input_tags.sparse
    assert reg.estimator_type == "regressor" and reg.target_tags.multi_output and reg.target_tags.required
    for cls in (MLPClassifier, MLPRegressor):
        assert not hasattr(cls, "_more_tags")
        assert "__sklearn_tags__" in cls.__dict__


@pytest.mark.parametrize("params, match", [
    (dict(solver="newton"), "solver"), (dict(activation="softmax"), "activation"),
    (dict(alpha=-1.0), "alpha"), (dict(hidden_layer_sizes=(3, 0)), "hidden_layer_sizes"),
    (dict(batch_size=0), "batch_size"), (dict(dtype="int32"), "dtype"), (dict(clip_norm=0.0), "clip_norm"),
    (dict(learning_rate="cyclic"), "learning_rate"), (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(shuffle="yes"), "shuffle")])
def test_invalid_parameters_named(params, match):
    X, y = _data("multiclass")
    with pytest.raises((ValueError, TypeError), match=match):
        MLPClassifier(**params).fit(X, y)


def test_l1_and_clip_norm_in_one_sgd_step():
    """One full-batch SGD step without momentum moves the parameters by -lr * grad J: l1 adds
    -lr * l1 / n * sign(W) to the weights (not the biases); clip_norm caps the step at lr * clip_norm."""
    X, y = _data("regression")
    params = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, batch_size=len(X), max_iter=1,
                  random_state=0, dtype="float64", alpha=0.0, learning_rate_init=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = MLPRegressor(**dict(params, learning_rate_init=1e-300)).fit(X, y)
        plain = MLPRegressor(**params).fit(X, y)
        lasso = MLPRegressor(l1=2.0, **params).fit(X, y)
        clipped = MLPRegressor(clip_norm=1e-3, **params).fit(X, y)
    for W0, Wp, Wl in zip(start.coefs_, plain.coefs_, lasso.coefs_):
        np.testing.assert_allclose(Wl - Wp, -0.1 * 2.0 / len(X) * np.sign(W0), rtol=1e-9, atol=1e-12)
    for b_p, b_l in zip(plain.intercepts_, lasso.intercepts_):
        np.testing.assert_allclose(b_l, b_p, rtol=1e-12)
    step = np.linalg.norm(clipped.model_.params - start.model_.params)
    assert step == pytest.approx(0.1 * 1e-3, rel=1e-3)


# ----- persistence and meta-estimators ---------------------------------------------------------
def test_pickle_round_trip_is_exact_and_training_resumes():
    X, y = _data("multiclass")
    est = MLPClassifier((6,), solver="adam", random_state=0)
    est.partial_fit(X, y, classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert np.shares_memory(copy.coefs_[0], copy.model_.params)
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.model_.params, est.model_.params)
    assert copy.model_.optimizer.step_count == est.model_.optimizer.step_count


def test_joblib_round_trip_and_clone(tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = _data("regression")
    est = MLPRegressor((6,), max_iter=20, random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    fresh = clone(est)
    assert not hasattr(fresh, "model_") and fresh.get_params() == est.get_params()


def test_pipeline_and_grid_search_in_processes():
    """GridSearchCV with 2 worker processes (the estimators pickle) scores exactly as in-process."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = _data("multiclass", n=150)
    pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=100, learning_rate_init=0.01,
                                                         random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1e-1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_processes = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X, y)
        in_process = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(in_processes.cv_results_["mean_test_score"],
                                  in_process.cv_results_["mean_test_score"])
    assert in_processes.best_score_ > 0.6
    assert in_processes.score(X, y) > 0.8


@pytest.mark.parametrize("cls", (MLPClassifier, MLPRegressor))
def test_feature_names_from_pandas(cls):
    pd = pytest.importorskip("pandas")
    X, y = _data("multiclass" if cls is MLPClassifier else "regression")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    est = cls((4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(frame, y)
    assert list(est.feature_names_in_) == list(frame.columns) and est.n_features_in_ == 5
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(est.predict(frame), est.predict(X.astype(np.float32)))
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame.rename(columns={"f0": "other"}))
    assert not hasattr(_quiet_fit(cls((4,), max_iter=2), X, y), "feature_names_in_")  # NumPy input: none


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_array_api_check_runs_with_scipy_array_api():
    """scikit-learn skips check_array_api_input (NumPy under array-API dispatch) unless SCIPY_ARRAY_API
    is set before SciPy is imported; the two skips of the checks above run here, in a fresh process."""
    code = """if True:
        import warnings
        from sklearn.utils.estimator_checks import estimator_checks_generator
        from fastgrad.sklearn import MLPClassifier, MLPRegressor
        warnings.simplefilter("ignore")
        ran = []
        for est in (MLPClassifier((8,), max_iter=50, random_state=0, dtype="float64"),
                    MLPRegressor((8,), max_iter=50, random_state=0, dtype="float64")):
            for e, check in estimator_checks_generator(est):
                if check.func.__name__ == "check_array_api_input":
                    check(e)
                    ran.append(type(est).__name__)
        print(ran)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), SCIPY_ARRAY_API="1")
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.stdout.strip().splitlines()[-1] == "['MLPClassifier', 'MLPRegressor']"


def test_import_fastgrad_does_not_import_sklearn():
    code = "import sys, fastgrad; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)

"""fastgrad.sklearn: sample_weight (fit, partial_fit, lbfgs, early stopping, score) and class_weight.

scikit-learn's MLP (1.7+) takes sample_weight: in float64 with SGD the weighted trajectories
equal its own to round-off. class_weight is checked against the sample_weight it stands for,
and integer/zero weights against repeated/removed rows. (The estimator checks of
scikit-learn, sample-weight family included, run in test_sklearn.py.)
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402

from fastgrad.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from fastgrad.sklearn._train import _runs, penalty_denominators  # noqa: E402

pytestmark = pytest.mark.usefixtures("sklearn_kernels")  # compiled once per session (conftest.py)

KINDS = ("multiclass", "binary", "multilabel", "regression", "multioutput_regression")


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


def _weights(n, seed=1):
    """Positive weights and one exact zero (scikit-learn divides by zero in a batch of zeros)."""
    w = np.random.default_rng(seed).uniform(0.1, 3.0, n)
    w[7] = 0.0
    return w


def _pair(kind, **params):
    regression = kind.endswith("regression")
    ours = (MLPRegressor if regression else MLPClassifier)(dtype="float64", **params)
    theirs = (sk_nn.MLPRegressor if regression else sk_nn.MLPClassifier)(**params)
    return ours, theirs


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _assert_same_params(a, b, rtol=1e-9, atol=1e-11):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol)


# ----- parity with scikit-learn's weighted MLP ----------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_weighted_sgd_trajectory_equals_sklearn(kind):
    """Weighted batch loss, the L2 term over each batch's weight sum, a short last batch,
    shuffling: the same parameters and loss curve as scikit-learn's after 5 epochs."""
    X, y = _data(kind)
    w = _weights(len(X))
    params = dict(hidden_layer_sizes=(7, 4), activation="tanh", solver="sgd", alpha=0.3, batch_size=16,
                  learning_rate_init=0.05, max_iter=5, random_state=1, tol=0.0)
    ours, theirs = _pair(kind, **params)
    _quiet(ours.fit, X, y, sample_weight=w)
    _quiet(theirs.fit, X, y, sample_weight=w)
    _assert_same_params(ours, theirs)
    if kind != "multioutput_regression":  # scikit-learn's reported loss averages over outputs (docs)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    unweighted = _quiet(_pair(kind, **params)[0].fit, X, y)
    assert not np.allclose(unweighted.coefs_[0], ours.coefs_[0])  # the weights did something


@pytest.mark.parametrize("kind", ("multiclass", "binary", "regression"))
def test_weighted_lbfgs_equals_sklearn(kind):
    X, y = _data(kind)
    w = _weights(len(X))
    ours, theirs = _pair(kind, hidden_layer_sizes=(6,), activation="logistic", solver="lbfgs", alpha=0.5,
                         max_iter=15, random_state=3)
    _quiet(ours.fit, X, y, sample_weight=w)
    _quiet(theirs.fit, X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    _assert_same_params(ours, theirs, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ("binary", "regression"))
def test_weighted_early_stopping_equals_sklearn(kind):
    """The split carries the weights; validation scores are weighted (scikit-learn's _score with
    the validation rows' sample_weight); same stopping epoch and restored parameters."""
    X, y = _data(kind, n=200, seed=4)
    w = np.random.default_rng(5).integers(0, 4, 200).astype(float)
    ours, theirs = _pair(kind, hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=0.05, batch_size=32,
                         early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, tol=1e-3,
                         max_iter=200, random_state=2)
    ours.fit(X, y, sample_weight=w)
    theirs.fit(X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    _assert_same_params(ours, theirs, rtol=1e-8, atol=1e-10)
    unweighted = type(ours)(**ours.get_params()).fit(X, y)
    assert unweighted.validation_scores_[:3] != ours.validation_scores_[:3]


def test_weighted_partial_fit_equals_sklearn():
    X, y = _data("multiclass")
    w = _weights(len(X))
    ours, theirs = _pair("multiclass", hidden_layer_sizes=(6,), solver="sgd", random_state=0, batch_size=20)
    for _ in range(3):
        ours.partial_fit(X, y, classes=[0, 1, 2], sample_weight=w)
        theirs.partial_fit(X, y, classes=[0, 1, 2], sample_weight=w)
    _assert_same_params(ours, theirs)
    reg, sk_reg = _pair("regression", hidden_layer_sizes=(6,), solver="sgd", random_state=0, batch_size=20)
    Xr, yr = _data("regression")
    for _ in range(2):
        reg.partial_fit(Xr, yr, sample_weight=w)
        sk_reg.partial_fit(Xr, yr, sample_weight=w)
    _assert_same_params(reg, sk_reg)


@pytest.mark.parametrize("cls, metric", [(MLPClassifier, accuracy_score), (MLPRegressor, r2_score)])
def test_score_takes_sample_weight(cls, metric):
    X, y = _data("multiclass" if cls is MLPClassifier else "regression")
    w = _weights(len(X))
    est = _quiet(cls((6,), max_iter=5, random_state=0).fit, X, y)
    assert est.score(X, y, sample_weight=w) == pytest.approx(metric(y, est.predict(X), sample_weight=w))
    assert est.score(X, y, sample_weight=w) != pytest.approx(est.score(X, y))


# ----- what weights are equivalent to --------------------------------------------------------------
@pytest.mark.parametrize("solver", ("adam", "sgd", "lbfgs"))
def test_unit_weights_are_bit_identical_to_none(solver):
    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=16, max_iter=4, random_state=0)
    plain = _quiet(MLPClassifier(**params).fit, X, y)
    ones = _quiet(MLPClassifier(**params).fit, X, y, sample_weight=np.ones(len(X)))
    scalar = _quiet(MLPClassifier(**params).fit, X, y, sample_weight=1)
    for other in (ones, scalar):
        np.testing.assert_array_equal(other.model_.params, plain.model_.params)
        assert other.loss_curve_ == plain.loss_curve_


@pytest.mark.parametrize("cls", (MLPClassifier, MLPRegressor))
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_integer_and_zero_weights_equal_repeated_and_removed_rows(cls, dtype, rtol):
    """Full-batch training (batch_size="auto" covers every row): weight k == the row k times,
    weight 0 == the row removed, for float64 and, to float32 round-off, float32."""
    X, y = _data("multiclass" if cls is MLPClassifier else "regression", n=30, seed=6)
    w = np.random.default_rng(7).integers(0, 4, len(X))
    params = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.01, random_state=0, dtype=dtype)
    weighted = _quiet(cls(**params).fit, X, y, sample_weight=w)
    repeated = _quiet(cls(**params).fit, np.repeat(X, w, axis=0), np.repeat(y, w, axis=0))
    method = "predict_proba" if cls is MLPClassifier else "predict"
    np.testing.assert_allclose(getattr(weighted, method)(X), getattr(repeated, method)(X), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=rtol)


def test_zero_weight_batch_is_no_update_and_no_penalty():
    """SGD without momentum, no shuffling: a batch whose weights are all 0 changes nothing (its
    penalty is 0 too), so zero-weighting rows 10..19 equals removing them."""
    X, y = _data("regression", n=40)
    w = np.ones(40)
    w[10:20] = 0.0
    keep = w > 0
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, shuffle=False, batch_size=10, alpha=0.5,
                  learning_rate_init=0.05, max_iter=3, tol=0.0, random_state=0, dtype="float64")
    weighted = _quiet(MLPRegressor(**params).fit, X, y, sample_weight=w)
    removed = _quiet(MLPRegressor(**params).fit, X[keep], y[keep])
    np.testing.assert_allclose(weighted.model_.params, removed.model_.params, rtol=1e-12, atol=1e-14)


def test_penalty_denominators_and_runs():
    sizes = np.array([4, 4, 4, 2])
    np.testing.assert_array_equal(penalty_denominators(sizes, None, np.arange(14)), [4.0, 4.0, 4.0, 2.0])
    w = np.array([1, 2, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 5, 5], np.float32)
    perm = np.arange(14)[::-1].copy()  # batches gather w[perm]: [5,5,0,0], [1,3,0,0], [0,0,0,0], [2,1]
    np.testing.assert_array_equal(penalty_denominators(sizes, w, perm), [10.0, 4.0, np.inf, 3.0])
    # a last batch of one row folded into the one before (batch_norm): [5,5,0,0], [1,3,0,0], [0,0,0,0,2,1]
    np.testing.assert_array_equal(penalty_denominators(np.array([4, 4, 6]), w, perm), [10.0, 4.0, 3.0])
    assert _runs(np.array([4.0, 4.0, 4.0, 2.0])) == [(0, 3), (3, 4)]
    assert _runs(np.array([3.0])) == [(0, 1)]
    assert _runs(np.array([1.0, 2.0, 2.0, 1.0])) == [(0, 1), (1, 3), (3, 4)]
    # equal penalties but another batch size: another call
    assert _runs(np.array([4, 4, 5]), np.array([4.0, 4.0, 4.0])) == [(0, 2), (2, 3)]


# ----- class_weight ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, solver, early_stopping", [
    ("multiclass", "adam", False), ("binary", "sgd", False), ("multiclass", "lbfgs", False),
    ("binary", "adam", True)])
def test_class_weight_dict_equals_its_sample_weight(kind, solver, early_stopping):
    """class_weight={label: c} trains exactly as sample_weight=c[y] (times sample_weight);
    with early stopping the validation score is class-weighted too."""
    X, y = _data(kind, n=120)
    labels = np.unique(y)
    cw = {labels[0]: 3.0, labels[1]: 0.5}
    sw = _weights(len(X))
    params = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=16, max_iter=8, random_state=0,
                  early_stopping=early_stopping, n_iter_no_change=100)
    by_class = _quiet(MLPClassifier(class_weight=cw, **params).fit, X, y, sample_weight=sw)
    rows = np.array([cw.get(label, 1.0) for label in y]) * sw
    by_rows = _quiet(MLPClassifier(**params).fit, X, y, sample_weight=rows)
    np.testing.assert_array_equal(by_class.model_.params, by_rows.model_.params)
    assert by_class.loss_curve_ == by_rows.loss_curve_
    if early_stopping:
        assert by_class.validation_scores_ == by_rows.validation_scores_


def test_class_weight_balanced_is_sklearns_formula_and_weighs_counts_by_sample_weight():
    X, y = _data("multiclass", n=90)
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=10, random_state=0, dtype="float64")
    balanced = _quiet(MLPClassifier(class_weight="balanced", **params).fit, X, y)
    counts = np.bincount(y)
    manual = {c: len(y) / (3 * counts[c]) for c in range(3)}
    by_dict = _quiet(MLPClassifier(class_weight=manual, **params).fit, X, y)
    np.testing.assert_allclose(balanced.model_.params, by_dict.model_.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(list(manual.values()), compute_class_weight("balanced", classes=np.arange(3), y=y))
    # with integer sample weights, "balanced" counts weighted rows: the same as repeating them
    w = np.random.default_rng(3).integers(0, 3, len(y))
    weighted = _quiet(MLPClassifier(class_weight="balanced", **params).fit, X, y, sample_weight=w)
    repeated = _quiet(MLPClassifier(class_weight="balanced", **params).fit, np.repeat(X, w, axis=0),
                      np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-9)


def test_class_weight_shifts_predictions_to_the_heavy_class():
    X, y = _data("binary", n=200)
    flip = np.random.default_rng(2).random(200) < 0.3  # noisy labels: the weights decide the overlap
    y = np.where(flip, np.where(y == "yes", "no", "yes"), y)
    params = dict(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01, random_state=0)
    plain = _quiet(MLPClassifier(**params).fit, X, y)
    heavy = _quiet(MLPClassifier(class_weight={"yes": 20.0}, **params).fit, X, y)
    assert np.mean(heavy.predict(X) == "yes") > np.mean(plain.predict(X) == "yes") + 0.1


def test_class_weight_with_partial_fit_and_warm_start():
    """partial_fit: a dict weighs each call's rows, "balanced" raises (scikit-learn's SGDClassifier
    rule); warm_start fit: "balanced" comes from each call's y."""
    X, y = _data("multiclass")
    cw = {0: 2.0, 2: 0.25}
    params = dict(hidden_layer_sizes=(6,), solver="sgd", batch_size=20, random_state=0)
    a, b = MLPClassifier(class_weight=cw, **params), MLPClassifier(**params)
    for _ in range(2):
        a.partial_fit(X, y, classes=[0, 1, 2])
        b.partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.array([cw.get(v, 1.0) for v in y]))
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    with pytest.raises(ValueError, match="balanced.*partial_fit"):
        MLPClassifier(class_weight="balanced", **params).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="balanced.*partial_fit"):
        a.set_params(class_weight="balanced").partial_fit(X, y)
    X2, y2 = X[:30], np.r_[y[:27], [0, 1, 2]]
    warm = dict(params, warm_start=True, max_iter=3)
    first = _quiet(MLPClassifier(class_weight="balanced", **warm).fit, X, y)
    second = MLPClassifier(class_weight=dict(enumerate(compute_class_weight("balanced", classes=np.arange(3), y=y))),
                           **warm)
    _quiet(second.fit, X, y)
    _quiet(first.fit, X2, y2)
    _quiet(second.set_params(class_weight=dict(enumerate(
        compute_class_weight("balanced", classes=np.arange(3), y=y2)))).fit, X2, y2)
    np.testing.assert_allclose(first.model_.params, second.model_.params, rtol=1e-6, atol=1e-7)


# ----- validation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample_weight, error, match", [
    (-np.ones(50), ValueError, "sample_weight must be >= 0"),
    (np.r_[np.nan, np.ones(49)], ValueError, "sample_weight must be finite"),
    (np.ones(49), ValueError, r"sample_weight must be 1-D with one weight per row \(50,\)"),
    (np.ones((50, 2)), ValueError, "sample_weight must be 1-D"),
    (np.zeros(50), ValueError, "sample_weight must not be all zero"),
    (np.array(["a"] * 50), TypeError, "sample_weight must hold real numbers"),
    (np.full(50, 1e39), ValueError, "sample_weight must be finite.*float32"),
])
@pytest.mark.parametrize("method", ("fit", "partial_fit"))
def test_invalid_sample_weight_named(sample_weight, error, match, method):
    X, y = _data("regression")
    with pytest.raises(error, match=match):
        getattr(MLPRegressor((3,), max_iter=2), method)(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("class_weight, error, match", [
    ("auto", ValueError, 'class_weight must be None, "balanced" or a dict'),
    ([1.0, 2.0, 3.0], TypeError, 'class_weight must be None, "balanced" or a dict'),
    ({0: -1.0}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
    ({0: np.inf}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
    ({0: "x"}, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, ValueError, "class_weight .*every row a weight of zero"),
    ({0: 1.0, 1: 1.0, 7: 2.0}, ValueError, r"classes, \[2\], are not in class_weight"),
])
def test_invalid_class_weight_named(class_weight, error, match):
    X, y = _data("multiclass")
    with pytest.raises(error, match=match):
        MLPClassifier((3,), max_iter=2, class_weight=class_weight).fit(X, y)


def test_class_weight_rejects_multilabel_y_and_empty_splits():
    X, Y = _data("multilabel")
    with pytest.raises(ValueError, match="class_weight needs single-label y"):
        MLPClassifier((3,), max_iter=2, class_weight="balanced").fit(X, Y)
    X, y = _data("regression", n=40)
    w = np.zeros(40)
    w[0] = 1.0
    with pytest.raises(ValueError, match="zero on every row of the (training|validation) part"):
        MLPRegressor((3,), max_iter=2, early_stopping=True, random_state=0).fit(X, y, sample_weight=w)


def test_weights_are_not_modified_and_readonly_weights_work():
    X, y = _data("multiclass")
    w = _weights(len(X))
    w.setflags(write=False)
    before = w.copy()
    est = _quiet(MLPClassifier((4,), max_iter=3, random_state=0, class_weight="balanced").fit, X, y,
                 sample_weight=w)
    np.testing.assert_array_equal(w, before)
    assert np.isfinite(est.model_.params).all()


def test_weighted_validation_score_and_loss_by_hand(monkeypatch):
    """One epoch with early stopping: the validation score is r2 with the validation rows'
    weights, the validation loss their weighted mean of (f - y)^2 / 2."""
    from fastgrad.sklearn import _base
    split = {}

    def spy(*arrays, **kwargs):
        split["train"], split["val"] = out = _split(*arrays, **kwargs)
        return out

    from sklearn.model_selection import train_test_split as _split
    monkeypatch.setattr(_base, "train_test_split", spy)
    X, y = _data("regression", n=60)
    w = np.random.default_rng(8).uniform(0.0, 4.0, 60)
    est = _quiet(MLPRegressor((5,), early_stopping=True, max_iter=1, random_state=0, dtype="float64").fit, X, y,
                 sample_weight=w)
    val = split["val"]
    f = est.predict(X[val])
    assert est.validation_scores_[0] == pytest.approx(r2_score(y[val], f, sample_weight=w[val]), rel=1e-12)
    expected = np.sum(w[val] * (f - y[val]) ** 2) / np.sum(w[val]) / 2
    assert est.validation_loss_curve_[0] == pytest.approx(expected, rel=1e-10)


def test_kernel_weights_are_checked_before_any_kernel():
    """An internal caller passing weights that do not fit X stops in Python (the kernels would
    read outside the array)."""
    from fastgrad.sklearn import _train
    est = _quiet(MLPRegressor((3,), max_iter=1, random_state=0).fit, *_data("regression"))
    model = est.model_
    X = np.zeros((10, 5), np.float32)
    yf = np.zeros((10, 1), np.float32)
    for bad in (np.ones(9, np.float32), np.ones(10, np.float64), np.ones(20, np.float32)[::2]):
        with pytest.raises(ValueError, match="weights must be a C-contiguous float32 array"):
            _train.run_epoch(model, X, yf, np.zeros(1, np.int64), False, np.arange(10), 5, 0.1, 0.0, 0.0, 0.0,
                             weights=bad)
        with pytest.raises(ValueError, match="weights must be a C-contiguous float32 array"):
            _train.fit_lbfgs(model, X, yf, np.zeros(1, np.int64), False, 1.0, 0.0, 0.0, 1, 1, 0.0, False,
                             weights=bad)


def test_sample_weight_through_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = _data("multiclass")
    w = _weights(len(X))
    params = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    pipe = _quiet(make_pipeline(StandardScaler(), MLPClassifier(**params)).fit, X, y,
                  mlpclassifier__sample_weight=w)
    direct = _quiet(MLPClassifier(**params).fit, StandardScaler().fit_transform(X), y, sample_weight=w)
    np.testing.assert_array_equal(pipe[-1].model_.params, direct.model_.params)

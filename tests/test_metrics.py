"""fastgrad.metrics and Sequential(metrics=...) (issue 13): each metric equals scikit-learn's
definition (when scikit-learn is installed; float64, to 1e-12), fit logs them for training and
validation data, evaluate returns them, files keep them, bad names are refused."""
from __future__ import annotations

import numpy as np
import pytest

from fastgrad import Dense, Sequential, metrics

RNG = np.random.default_rng(7)


def _sk():
    return pytest.importorskip("sklearn.metrics")


def _probs(n, k):
    z = RNG.standard_normal((n, k))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("ties", [False, True])
def test_binary_auc_equals_roc_auc_score(ties):
    sk = _sk()
    y = RNG.integers(0, 2, 300)
    score = RNG.random(300) + 0.3 * y
    if ties:
        score = np.round(score, 1)   # many tied scores: each group is one step of the curve
    assert metrics.roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score), abs=1e-12)
    assert np.isnan(metrics.roc_auc(np.ones(5), RNG.random(5)))   # one class only


def test_softmax_metrics_equal_scikit_learn():
    sk = _sk()
    labels = RNG.integers(0, 4, 400)
    probs = _probs(400, 4)
    probs[np.arange(400), labels] += 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    got = metrics.compute(("accuracy", "auc", "precision", "recall"), probs, np.zeros((400, 4)), labels, True,
                          "softmax_cross_entropy")
    pred = probs.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels, pred), abs=1e-12)
    assert got["auc"] == pytest.approx(sk.roc_auc_score(labels, probs, multi_class="ovr", average="macro"),
                                       abs=1e-12)
    assert got["precision"] == pytest.approx(sk.precision_score(labels, pred, average="macro", zero_division=0),
                                             abs=1e-12)
    assert got["recall"] == pytest.approx(sk.recall_score(labels, pred, average="macro", zero_division=0),
                                          abs=1e-12)
    onehot = np.eye(4)[labels]   # probability targets give the same figures as labels
    assert metrics.compute(("auc",), probs, onehot, np.zeros(400, np.int64), False, "softmax_cross_entropy") == \
        {"auc": got["auc"]}


@pytest.mark.parametrize("k", [1, 3])
def test_binary_metrics_equal_scikit_learn(k):
    sk = _sk()
    Y = RNG.integers(0, 2, (300, k)).astype(float)
    P = np.clip(RNG.random((300, k)) * 0.8 + 0.3 * Y, 0, 1)
    got = metrics.compute(("auc", "precision", "recall", "accuracy"), P, Y, None, False, "binary_cross_entropy")
    pred = (P > 0.5).astype(int)
    if k == 1:
        assert got["auc"] == pytest.approx(sk.roc_auc_score(Y[:, 0], P[:, 0]), abs=1e-12)
        assert got["precision"] == pytest.approx(sk.precision_score(Y[:, 0], pred[:, 0]), abs=1e-12)
        assert got["recall"] == pytest.approx(sk.recall_score(Y[:, 0], pred[:, 0]), abs=1e-12)
    else:
        assert got["auc"] == pytest.approx(sk.roc_auc_score(Y, P, average="macro"), abs=1e-12)
        assert got["precision"] == pytest.approx(sk.precision_score(Y, pred, average="macro", zero_division=0),
                                                 abs=1e-12)
        assert got["recall"] == pytest.approx(sk.recall_score(Y, pred, average="macro", zero_division=0), abs=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean(pred == Y), abs=1e-15)


def test_regression_metrics_equal_scikit_learn():
    sk = _sk()
    Y = RNG.standard_normal((200, 3))
    P = Y + 0.3 * RNG.standard_normal((200, 3))
    Y[:, 2] = 1.5   # a constant column: 0 unless predicted exactly
    got = metrics.compute(("r2", "mae", "mse"), P, Y, None, False, "mse")
    assert got["r2"] == pytest.approx(sk.r2_score(Y, P), abs=1e-12)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(Y, P), abs=1e-12)
    assert got["mse"] == pytest.approx(sk.mean_squared_error(Y, P), abs=1e-12)
    assert metrics.r2(Y, Y, None, False, "mse") == 1.0


def test_fit_logs_and_evaluate_returns_the_metrics(tmp_path):
    X = RNG.standard_normal((120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    model = Sequential([Dense(5, 8, "relu"), Dense(8, 3)], loss="softmax_cross_entropy", dtype="float64", seed=0,
                       metrics=["accuracy", "auc", "precision", "recall"])
    history = model.fit(X[:90], y[:90], epochs=3, batch_size=16, validation_data=(X[90:], y[90:]), verbose=0)
    for name in ("auc", "precision", "recall", "val_auc", "val_precision", "val_recall"):
        assert len(history.history[name]) == 3 and 0.0 <= history.history[name][-1] <= 1.0
    logs = model.evaluate(X[90:], y[90:])
    assert logs["auc"] == history.history["val_auc"][-1]
    expected = metrics.compute(("auc", "precision"), model.predict(X[90:]), np.zeros((30, 3)), y[90:], True,
                               "softmax_cross_entropy")
    assert logs["auc"] == expected["auc"] and logs["precision"] == expected["precision"]
    assert history.history["auc"][-1] == model.evaluate(X[:90], y[:90])["auc"]   # end-of-epoch model
    model.save(tmp_path / "m.npz")
    assert Sequential.load(tmp_path / "m.npz").metrics == ("accuracy", "auc", "precision", "recall")
    reg = Sequential([Dense(5, 2)], loss="mse", dtype="float64", seed=0, metrics=["r2", "mae"])
    assert set(reg.evaluate(X, X[:, :2])) == {"loss", "r2", "mae"}


def test_bad_metrics_are_refused():
    with pytest.raises(ValueError, match="metrics must be names"):
        Sequential([Dense(2, 2)], loss="mse", metrics=["f1"])
    with pytest.raises(ValueError, match="does not apply to a regression loss"):
        Sequential([Dense(2, 2)], loss="mse", metrics=["auc"])
    with pytest.raises(ValueError, match="does not apply to a classification loss"):
        Sequential([Dense(2, 2)], loss="softmax_cross_entropy", metrics=["r2"])
    with pytest.raises(TypeError, match="list of names"):
        Sequential([Dense(2, 2)], loss="mse", metrics="mae")

"""fastgrad.lr_find (issue 13): the sweep is train_step at geometric rates, in one compiled call;
the model and optimizer come back exactly (a later fit is bit-identical); it stops on
divergence; the suggestion is the steepest descent of the smoothed loss; bad arguments raise."""
from __future__ import annotations

import numpy as np
import pytest

import fastgrad
from fastgrad import BatchNorm1d, Dense, Dropout, Sequential, datasets


def _model(seed=0):
    return Sequential([Dense(64, 32, "relu"), BatchNorm1d(32), Dropout(0.1), Dense(10)],
                      loss="sparse_categorical_crossentropy", optimizer="adam", dtype="float64", seed=seed)


def _digits():
    return datasets.load_digits(np.float64)   # already scaled to [0, 1]


def test_model_and_optimizer_are_restored_exactly():
    X, y = _digits()
    model, twin = _model(), _model()
    model.fit(X, y, epochs=1, batch_size=64, verbose=0)
    twin.fit(X, y, epochs=1, batch_size=64, verbose=0)
    result = fastgrad.lr_find(model, X, y, num=60)
    assert result.lrs.size == result.losses.size == result.smoothed.size <= 60
    for a, b in ((model.params, twin.params), (model.state, twin.state)):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.step_count == twin.optimizer.step_count and model.optimizer.lr == twin.optimizer.lr
    model.fit(X, y, epochs=1, batch_size=64, verbose=0)
    twin.fit(X, y, epochs=1, batch_size=64, verbose=0)
    np.testing.assert_array_equal(model.params, twin.params)


def test_sweep_equals_train_step_at_the_geometric_rates():
    X, y = _digits()
    model, replay = _model(1), _model(1)
    result = fastgrad.lr_find(model, X, y, start=1e-5, end=1e-1, num=12, batch_size=50, diverge=1e9)
    assert result.stopped == "end" and result.lrs.size == 12
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-5, 1e-1, 12), rtol=1e-12)
    rows = replay.rng.permutation(len(X))[:(len(X) // 50) * 50]
    for i, lr in enumerate(result.lrs):
        replay.optimizer.lr = lr
        idx = rows[i * 50:(i + 1) * 50]
        assert replay.train_step(X[idx], y[idx]) == result.losses[i]


def test_divergence_ends_the_sweep_and_the_suggestion_is_sensible():
    X, y = _digits()
    model = _model(2)
    result = fastgrad.lr_find(model, X, y, start=1e-6, end=1e3, num=100)
    assert result.stopped in ("diverged", "non-finite") and result.lrs.size < 100
    assert 1e-5 < result.suggestion < 10.0
    smoothed = result.smoothed
    assert smoothed.min() < 0.7 * smoothed[0]          # the loss fell somewhere in the sweep
    beta = 0.98                                        # smoothed = bias-corrected EMA of losses
    avg = 0.0
    for i, loss in enumerate(result.losses):
        avg = beta * avg + (1 - beta) * loss
        assert smoothed[i] == pytest.approx(avg / (1 - beta ** (i + 1)), rel=1e-12)


def test_bad_arguments():
    X, y = _digits()
    model = _model()
    with pytest.raises(ValueError, match="end"):
        fastgrad.lr_find(model, X, y, start=1.0, end=0.1)
    with pytest.raises(ValueError, match="num"):
        fastgrad.lr_find(model, X, y, num=1)
    with pytest.raises(ValueError, match="diverge"):
        fastgrad.lr_find(model, X, y, diverge=1.0)
    with pytest.raises(ValueError, match="X must have 64 columns"):
        fastgrad.lr_find(model, X[:, :5], y)

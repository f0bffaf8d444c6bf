"""fastgrad.plot (issue 13), rendered with matplotlib's Agg backend; the figures' content is
checked (panels, labels, line data, contour levels), not pixels. Skipped without matplotlib."""
from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastgrad  # noqa: E402
from fastgrad import Dense, Dropout, Sequential, datasets, minimize, plot  # noqa: E402
from fastgrad.testfunctions import rosenbrock  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_history_plot_has_a_panel_per_quantity_with_its_validation_curve():
    X, y = datasets.load_digits(np.float64)
    model = Sequential([Dense(64, 16, "relu"), Dense(10)], loss="softmax_cross_entropy", dtype="float64", seed=0,
                       metrics=["auc"])
    history = model.fit(X[:1500], y[:1500], epochs=3, batch_size=64, validation_data=(X[1500:], y[1500:]),
                        verbose=0)
    fig = history.plot()
    panels = [ax for ax in fig.axes if ax.get_ylabel() != "lr"]
    assert [ax.get_ylabel() for ax in panels] == ["loss", "accuracy", "auc"]
    loss_lines = {line.get_label(): line.get_ydata() for line in panels[0].get_lines()}
    np.testing.assert_array_equal(loss_lines["loss"], history.history["loss"])
    np.testing.assert_array_equal(loss_lines["val_loss"], history.history["val_loss"])
    lr_axes = [ax for ax in fig.axes if ax.get_ylabel() == "lr"]
    assert len(lr_axes) == 1 and list(lr_axes[0].get_lines()[0].get_ydata()) == history.history["lr"]


def test_lr_find_plot_marks_the_suggestion():
    X, y = datasets.load_digits(np.float64)
    model = Sequential([Dense(64, 16, "relu"), Dense(10)], loss="softmax_cross_entropy", dtype="float64", seed=0)
    result = fastgrad.lr_find(model, X, y, num=40)
    ax = plot.lr_find(result).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["smoothed loss"].get_ydata(), result.smoothed)
    assert lines[f"suggestion {result.suggestion:.2g}"].get_xdata()[0] == result.suggestion


def test_loss_landscape_of_a_function_with_a_descent_path():
    x0 = np.array([-1.0, 1.5])
    path = minimize(rosenbrock, x0, method="momentum", lr=1e-3, max_iter=200, history=True).history["x"]
    fig = plot.loss_landscape(rosenbrock, np.array([0.0, 1.0]), span=2.0, num=21, path=path)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "direction 1" and len(ax.collections) > 0
    red = [line for line in ax.get_lines() if line.get_label() == "path"][0]
    np.testing.assert_allclose(red.get_xdata(), path[:, 0] - 0.0)   # axes directions: the coordinates
    np.testing.assert_allclose(red.get_ydata(), path[:, 1] - 1.0)
    curve = plot.loss_landscape(rosenbrock, np.array([1.0, 1.0]), directions=np.array([1.0, 0.0]), num=11)
    line = curve.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [rosenbrock(np.array([1.0 + a, 1.0])) for a in line.get_xdata()])


def test_loss_landscape_of_a_model_leaves_it_unchanged():
    X, y = datasets.load_digits(np.float64)
    model = Sequential([Dense(64, 8, "tanh"), Dropout(0.5), Dense(10)], loss="softmax_cross_entropy",
                       dtype="float64", seed=0)
    before = model.params.copy()
    fig = plot.loss_landscape(model, X=X[:200], y=y[:200], num=5, span=0.5)
    np.testing.assert_array_equal(model.params, before)
    f, p0 = plot._model_loss(model, X[:200], y[:200])
    evaluation = f(p0 * 1.1)
    model.train()   # the surface is the evaluation-mode loss whatever the model's mode
    assert f(p0 * 1.1) == evaluation and model.training
    assert model.loss_and_grad(X[:200], y[:200])[0] != model.eval().loss_and_grad(X[:200], y[:200])[0]
    assert fig.axes[0].get_xlabel() == "direction 1"
    with pytest.raises(ValueError, match="needs X and y"):
        plot.loss_landscape(model)
    with pytest.raises(ValueError, match="directions must have shape"):
        plot.loss_landscape(rosenbrock, np.zeros(2), directions=np.ones((3, 2)))

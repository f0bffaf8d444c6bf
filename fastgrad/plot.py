"""Figures of training and of loss surfaces (matplotlib, an optional extra: ``pip install
'fastgrad[plot]'``; importing this module does not import matplotlib, each function does).

* :func:`history` (also ``History.plot()``): loss, metrics and their ``val_`` curves per epoch,
  one panel per quantity, the learning rate on a second axis of the loss panel;
* :func:`lr_find`: an :class:`~fastgrad.LRFinderResult`, loss against rate on a log axis, the
  suggestion marked;
* :func:`loss_landscape`: a function (or a model's loss) along one direction (a curve) or two
  (filled contours) through a point, with an optimizer's path projected onto that plane: the
  figures calculus-for-ML texts draw of gradient descent on a surface.

Each returns the matplotlib ``Figure``; pass ``ax`` to draw into existing axes instead (then
that axes' figure is returned). ``ImportError`` naming the extra without matplotlib.
"""
from __future__ import annotations

import numpy as np

from fastgrad._checks import as_float_array, as_int, as_scalar

__all__ = ("history", "lr_find", "loss_landscape")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("fastgrad.plot needs matplotlib: pip install 'fastgrad[plot]'") from None
    return plt


def history(hist, ax=None):
    """Curves of a :class:`~fastgrad.callbacks.History`: one panel per logged quantity (loss,
    each metric), its ``val_`` curve dashed in the same panel; ``lr`` on a second y axis of
    the loss panel. ``ax``: one axes (everything drawn there) or None (a new figure)."""
    plt = _pyplot()
    logs = hist.history
    names = [k for k in logs if not k.startswith("val_") and k != "lr"]
    if not names:
        raise ValueError("the history holds no epochs to plot")
    if ax is None:
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax] * len(names)
    epochs = np.arange(1, len(logs[names[0]]) + 1)
    for name, axis in zip(names, axes):
        axis.plot(epochs, logs[name], label=name)
        if f"val_{name}" in logs:
            axis.plot(epochs, logs[f"val_{name}"], linestyle="--", label=f"val_{name}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend(loc="best")
    from matplotlib.ticker import MaxNLocator
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))   # whole epochs
    if "lr" in logs:
        twin = axes[0].twinx()
        twin.plot(epochs, logs["lr"], color="gray", linestyle=":", label="lr")
        twin.set_ylabel("lr")
        handles, labels = axes[0].get_legend_handles_labels()
        extra, extra_labels = twin.get_legend_handles_labels()
        axes[0].legend(handles + extra, labels + extra_labels, loc="best")
    if ax is None:
        fig.tight_layout()   # the lr axis's labels clear the next panel
    return fig


def lr_find(result, ax=None):
    """Loss (thin) and smoothed loss (thick) of an :class:`~fastgrad.LRFinderResult` against the
    rate, log-scaled; the suggested rate as a vertical line."""
    plt = _pyplot()
    fig, ax = (plt.subplots(figsize=(5, 3.5)) if ax is None else (ax.figure, ax))
    ax.plot(result.lrs, result.losses, alpha=0.35, label="loss")
    ax.plot(result.lrs, result.smoothed, linewidth=2, label="smoothed loss")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="red", linestyle="--", label=f"suggestion {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend(loc="best")
    return fig


def _model_loss(model, X, y):
    """f(params) -> the model's loss on (X, y), in evaluation mode, the model left unchanged."""
    X, yf, yl, use_labels = model._data(X, y)

    def f(p):
        saved, mode = model.params.copy(), model.training
        try:
            model.params[...] = p
            model.training = False   # a deterministic surface: Dropout off, running statistics
            return model._batch_loss_grad(X, yf, yl, use_labels)[0]
        finally:
            model.params[...] = saved
            model.training = mode
    return f, model.params.astype(np.float64)


def loss_landscape(f, x0=None, directions=None, span=1.0, num=41, path=None, X=None, y=None, seed=0, ax=None,
                   levels=30):
    """``f`` (a callable of a 1-D float64 array returning a number, or a ``Sequential`` with
    ``X``, ``y``: its loss as a function of its parameters) around ``x0`` (n,) (a model: its
    current parameters).

    ``directions``: None (n = 1: the axis; n = 2: the two axes; otherwise two random Gaussian
    directions from ``seed``, each scaled to the norm of ``x0``, or to 1 when ``x0`` is 0), an
    array (n,) (one direction: a curve) or (2, n) (a plane: contours). The grid is
    ``x0 + a d1 (+ b d2)`` for ``a, b`` in ``linspace(-span, span, num)``. ``path`` (m, n),
    e.g. an optimizer's iterates, is drawn projected onto the directions (least squares).
    Returns the figure; its axes carry the grid (curve data or a contour set).
    """
    plt = _pyplot()
    if hasattr(f, "_batch_loss_grad"):
        if X is None or y is None:
            raise ValueError("a model's loss landscape needs X and y")
        f, start = _model_loss(f, X, y)
        x0 = start if x0 is None else x0
    if not callable(f):
        raise TypeError(f"f must be a callable or a Sequential model, got {type(f).__name__}")
    x0 = as_float_array(x0, "x0", ndim=1, dtype=np.float64)
    n = x0.size
    span = as_scalar(span, "span", low=0.0, low_open=True)
    num = as_int(num, "num", low=3)
    if directions is None:
        if n <= 2:
            directions = np.eye(n)
        else:
            rng = np.random.default_rng(seed)
            directions = rng.standard_normal((2, n))
            scale = np.linalg.norm(x0) or 1.0
            directions *= scale / np.linalg.norm(directions, axis=1, keepdims=True)
    directions = np.atleast_2d(as_float_array(directions, "directions", dtype=np.float64))
    if directions.ndim != 2 or directions.shape[1] != n or directions.shape[0] not in (1, 2):
        raise ValueError(f"directions must have shape ({n},) or (2, {n}), got {np.shape(directions)}")
    t = np.linspace(-span, span, num)
    fig, ax = (plt.subplots(figsize=(5, 4)) if ax is None else (ax.figure, ax))
    coords = None
    if path is not None:
        path = as_float_array(path, "path", ndim=2, dtype=np.float64)
        if path.shape[1] != n:
            raise ValueError(f"path must have shape (m, {n}), got {path.shape}")
        coords = np.linalg.lstsq(directions.T, (path - x0).T, rcond=None)[0]   # (k, m)
    if directions.shape[0] == 1:
        values = np.array([float(f(x0 + a * directions[0])) for a in t])
        ax.plot(t, values)
        if coords is not None:
            ax.plot(coords[0], [float(f(p)) for p in path], "o-", color="red", markersize=3, label="path")
            ax.legend(loc="best")
        ax.set_xlabel("step along the direction")
        ax.set_ylabel("f")
        return fig
    A, B = np.meshgrid(t, t)
    values = np.array([[float(f(x0 + a * directions[0] + b * directions[1])) for a, b in zip(ra, rb)]
                       for ra, rb in zip(A, B)])
    filled = ax.contourf(A, B, values, levels=levels, cmap="viridis")
    fig.colorbar(filled, ax=ax, label="f")
    if coords is not None:
        ax.plot(coords[0], coords[1], "o-", color="red", markersize=3, label="path")
        ax.legend(loc="best")
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    return fig

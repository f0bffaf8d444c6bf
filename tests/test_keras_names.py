"""What Keras and PyTorch users write (issue 13): a required loss, the loss, optimizer,
initializer and activation names of those libraries, and a final softmax/sigmoid before the
matching cross-entropy (trained on the logits, as Keras does, instead of applied twice)."""
from __future__ import annotations

import numpy as np
import pytest

from fastgrad import Activation, BatchNorm1d, Dense, Sequential, init
from fastgrad.model import LOSS_ALIASES
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop


def _data(n=64, n_in=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    return X, (X[:, 0] * 2 + X[:, 1] > 0).astype(np.int64) if k == 2 else rng.integers(0, k, n)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spelling", ["dense", "activation_layer"])
def test_final_softmax_trains_as_the_logits_spelling(backend, dtype, spelling):
    """Dense(k, "softmax") + softmax_cross_entropy follows, bit for bit, the trajectory of
    Dense(k) + softmax_cross_entropy; predict gives probabilities (rows sum to 1)."""
    X, y = _data()
    last = ([Dense(8, 4, "softmax")] if spelling == "dense" else [Dense(8, 4), Activation("softmax")])
    probs = Sequential([Dense(6, 8, "tanh"), BatchNorm1d(8)] + last, loss="softmax_cross_entropy",
                       dtype=dtype, seed=1, backend=backend)
    logits = Sequential([Dense(6, 8, "tanh"), BatchNorm1d(8), Dense(8, 4)], loss="softmax_cross_entropy",
                        dtype=dtype, seed=1, backend=backend)
    h1 = probs.fit(X, y, epochs=3, batch_size=16, verbose=0)
    h2 = logits.fit(X, y, epochs=3, batch_size=16, verbose=0)
    np.testing.assert_array_equal(probs.params, logits.params)
    assert h1.history["loss"] == h2.history["loss"] and h1.history["loss"][-1] < h1.history["loss"][0]
    p = probs.predict(X)
    np.testing.assert_array_equal(p, logits.predict(X))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.forward(X), logits.forward(X))   # both give logits


def test_final_sigmoid_trains_as_the_logits_spelling(tmp_path):
    """Dense(1, "sigmoid") + binary_cross_entropy learns (it stalled at 50% when the sigmoid was
    applied twice) and equals Dense(1) + binary_cross_entropy; the fusion survives save/load."""
    X, y = _data(k=2)
    probs = Sequential([Dense(6, 8, "relu"), Dense(8, 1, "sigmoid")], loss="binary_crossentropy",
                       dtype="float64", seed=2)
    logits = Sequential([Dense(6, 8, "relu"), Dense(8, 1)], loss="binary_cross_entropy", dtype="float64", seed=2)
    probs.fit(X, y, epochs=40, batch_size=16, verbose=0)
    logits.fit(X, y, epochs=40, batch_size=16, verbose=0)
    np.testing.assert_array_equal(probs.params, logits.params)
    assert probs.evaluate(X, y)["accuracy"] > 0.75   # it learns (50% when the sigmoid ran twice)
    probs.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded.layers[-1].activation == "sigmoid"
    np.testing.assert_array_equal(loaded.predict(X), probs.predict(X))


def test_other_final_activations_are_kept():
    """Only the activation the loss fuses is dropped: a final sigmoid before mse stays."""
    X = np.random.default_rng(0).standard_normal((5, 3))
    model = Sequential([Dense(3, 2, "sigmoid")], loss="mse", dtype="float64", seed=0)
    W, b = model.layers[0].W, model.layers[0].b
    np.testing.assert_allclose(model.predict(X), 1 / (1 + np.exp(-(X @ W + b))), rtol=1e-12)
    tanh = Sequential([Dense(3, 2, "tanh")], loss="softmax_cross_entropy", dtype="float64", seed=0)
    np.testing.assert_allclose(tanh.forward(X), np.tanh(X @ tanh.layers[0].W + tanh.layers[0].b), rtol=1e-12)


def test_loss_is_required():
    with pytest.raises(TypeError, match="needs a loss"):
        Sequential([Dense(2, 2)])


@pytest.mark.parametrize("alias", sorted(LOSS_ALIASES))
def test_loss_aliases_name_the_same_loss(alias):
    model = Sequential([Dense(3, 2)], loss=alias, dtype="float64", seed=0)
    same = Sequential([Dense(3, 2)], loss=LOSS_ALIASES[alias], dtype="float64", seed=0)
    assert model.loss == LOSS_ALIASES[alias]
    X = np.random.default_rng(0).standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0]) if model.loss == "softmax_cross_entropy" else np.abs(X[:, :2]) % 1
    if model.loss == "binary_cross_entropy":
        y = (y > 0.5).astype(float)
    assert model.loss_and_grad(X, y)[0] == same.loss_and_grad(X, y)[0]


@pytest.mark.parametrize("name, cls", [("adam", Adam), ("adamw", AdamW), ("sgd", SGD), ("rmsprop", RMSprop),
                                       ("adagrad", Adagrad)])
def test_optimizer_by_name_has_the_defaults(name, cls):
    model = Sequential([Dense(3, 2)], loss="mse", optimizer=name)
    assert type(model.optimizer) is cls
    assert type(Sequential([Dense(3, 2)], loss="mse", optimizer=cls.__name__).optimizer) is cls   # Keras: "Adam"
    assert model.optimizer.hyperparameters() == cls().hyperparameters()


@pytest.mark.parametrize("alias, name", sorted(init.INITIALIZER_ALIASES.items()))
def test_initializer_aliases(alias, name):
    a = Sequential([Dense(5, 4, init=alias)], loss="mse", dtype="float64", seed=3)
    b = Sequential([Dense(5, 4, init=name)], loss="mse", dtype="float64", seed=3)
    assert a.layers[0].init == name
    np.testing.assert_array_equal(a.params, b.params)


def test_swish_is_silu():
    X = np.random.default_rng(0).standard_normal((5, 3))
    a = Sequential([Dense(3, 4, "swish")], loss="mse", dtype="float64", seed=0)
    b = Sequential([Dense(3, 4, "silu")], loss="mse", dtype="float64", seed=0)
    np.testing.assert_array_equal(a.params, b.params)   # both He-initialized (the ReLU family)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(Sequential([Activation("swish")], loss="mse", n_in=3, dtype="float64").predict(X),
                               X / (1 + np.exp(-X)), rtol=1e-12)


def test_progress_off_a_terminal_and_the_bar_ends_with_the_epochs_figures(capsys, monkeypatch):
    """verbose=1 writes one line per epoch when stderr is not a terminal (a log file, a pipe, as
    Keras); with a bar, the bar ends with the epoch's loss, metrics and validation figures."""
    from fastgrad import training
    X, y = _data()
    model = Sequential([Dense(6, 4)], loss="softmax_cross_entropy", dtype="float64", seed=0, metrics=["auc"])
    model.fit(X, y, epochs=2, batch_size=16, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "auc=" in lines[0]

    class Bar:
        def __init__(self):
            self.postfix, self.closed, self.updates = None, False, 0

        def update(self, n):
            self.updates += n

        def set_postfix(self, values=None, refresh=True, **kw):
            self.postfix = values if values is not None else kw

        def close(self):
            self.closed = True
    bars = []
    monkeypatch.setattr(training, "_progress_bar", lambda verbose, epoch, n: bars.append(Bar()) or bars[-1])
    model.fit(X, y, epochs=1, batch_size=16, verbose=1, validation_data=(X, y))
    assert bars[0].closed and bars[0].updates == 4
    assert set(bars[0].postfix) == {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"}
    assert capsys.readouterr().out == ""   # the bar replaces the line


def test_one_optimizer_cannot_serve_two_models():
    """Its state is laid out on one model's parameters: a second model is refused at construction;
    a copy of a model owns a copy of its optimizer."""
    import copy
    from fastgrad.optim import Adam
    opt = Adam()
    model = Sequential([Dense(3, 2)], loss="mse", optimizer=opt)
    with pytest.raises(ValueError, match="already belongs to another model"):
        Sequential([Dense(3, 2)], loss="mse", optimizer=opt)
    twin = copy.deepcopy(model)
    assert twin.optimizer is not opt
    X = np.ones((4, 3))
    twin.fit(X, np.zeros((4, 2)), epochs=1, verbose=0)
    model.fit(X, np.zeros((4, 2)), epochs=1, verbose=0)


def test_evaluate_verbose_prints_one_line(capsys):
    X, y = _data()
    model = Sequential([Dense(6, 4)], loss="softmax_cross_entropy", dtype="float64", seed=0, metrics=["auc"])
    logs = model.evaluate(X, y, verbose=1)
    line = capsys.readouterr().out.strip()
    assert line == ", ".join(f"{k}={v:.4g}" for k, v in logs.items()) and "auc=" in line
    model.evaluate(X, y)
    assert capsys.readouterr().out == ""

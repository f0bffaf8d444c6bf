"""Sequential.fit with LBFGS (issue 16): one full-batch L-BFGS step per epoch on the compiled
loss and gradient; equals LBFGS.step driven by hand, and torch.optim.LBFGS on the same network
(when torch is installed); files keep the optimizer; what it cannot do raises clearly."""
from __future__ import annotations

import numpy as np
import pytest

from fastgrad import BatchNorm1d, Dense, Sequential, datasets
from fastgrad.optim import LBFGS


def _data(n=200):
    X, y = datasets.load_digits(np.float64)
    return X[:n], y[:n]


def _model(**kw):
    return Sequential([Dense(64, 16, "tanh"), Dense(16, 10)], loss="softmax_cross_entropy",
                      optimizer=LBFGS(history_size=10, max_iter=15, **kw), dtype="float64", seed=0, l2=1e-4)


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_fit_is_lbfgs_step_on_the_full_batch(line_search):
    X, y = _data()
    fitted, by_hand = _model(line_search_fn=line_search), _model(line_search_fn=line_search)
    history = fitted.fit(X, y, epochs=3, verbose=0)
    for _ in range(3):
        def closure():
            loss, grads = by_hand._batch_loss_grad(*by_hand._data(X, y), w=None)
            by_hand.grads[...] = grads
            return loss
        by_hand.optimizer.step(closure, by_hand.params, by_hand.grads)
    np.testing.assert_array_equal(fitted.params, by_hand.params)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] and history.history["accuracy"][-1] > 0.9
    assert losses[-1] == pytest.approx(fitted.loss_and_grad(X, y)[0], rel=1e-12)


def test_fit_equals_torch_lbfgs():
    torch = pytest.importorskip("torch")
    X, y = _data(120)
    model = _model()
    model.l2 = 0.0
    W1, b1, W2, b2 = (torch.tensor(a.copy(), requires_grad=True) for a in
                      (model.layers[0].W, model.layers[0].b, model.layers[1].W, model.layers[1].b))
    opt = torch.optim.LBFGS([W1, b1, W2, b2], history_size=10, max_iter=15)
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch.tanh(Xt @ W1 + b1) @ W2 + b2, yt)
        loss.backward()
        return loss
    for _ in range(2):
        opt.step(closure)
    model.fit(X, y, epochs=2, verbose=0)
    ours = np.concatenate([model.layers[0].W.ravel(), model.layers[0].b, model.layers[1].W.ravel(),
                           model.layers[1].b])
    theirs = np.concatenate([t.detach().numpy().ravel() for t in (W1, b1, W2, b2)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


def test_save_load_and_what_lbfgs_refuses(tmp_path):
    X, y = _data()
    model = Sequential([Dense(64, 8, "relu"), Dense(10)], loss="softmax_cross_entropy", optimizer="lbfgs",
                       dtype="float64", seed=1)
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert isinstance(loaded.optimizer, LBFGS) and loaded.optimizer.hyperparameters() == \
        model.optimizer.hyperparameters()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(TypeError, match="use fit"):
        model.train_step(X, y)
    import fastgrad
    with pytest.raises(TypeError, match="lr_find makes mini-batch updates"):
        fastgrad.lr_find(model, X, y)
    with pytest.raises(ValueError, match="clip_norm"):
        model.fit(X, y, clip_norm=1.0, verbose=0)
    with pytest.raises(ValueError, match="BatchNorm1d"):
        Sequential([Dense(64, 8), BatchNorm1d(8), Dense(10)], loss="softmax_cross_entropy", optimizer="lbfgs")

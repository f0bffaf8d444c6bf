"""Sample and class weights: the weighted mean sum(w l)/sum(w) in training and evaluation.

Compiled kernels vs their NumPy twins (hypothesis for shapes), finite differences and
PyTorch for the weighted gradient, bit-identity of all-ones weights, integer weights vs
duplicated rows, class_weight (dict and "balanced"), and the validation of the inputs.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgrad import Dense, Sequential
from fastgrad.optim import SGD
from fastgrad.training import run_batches
from conftest import central_diff

LOSS_NAMES = ("mse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy")


def _model(loss, k=3, n_in=4, hidden=5, dtype="float64", seed=0, backend="compiled", optimizer=None):
    return Sequential([Dense(n_in, hidden, activation="tanh"), Dense(hidden, k)], loss=loss, dtype=dtype,
                      seed=seed, backend=backend, optimizer=optimizer)


def _data(loss, n, k=3, n_in=4, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, k, n) if labels else rng.dirichlet(np.ones(k), n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, k)).astype(float)
    else:
        y = rng.normal(size=(n, k))
    return X, y


def _row_losses(model, X, y):
    """Each row's loss (mean over its outputs), from one-row evaluations."""
    return np.array([model.evaluate(X[i:i + 1], y[i:i + 1])["loss"] for i in range(X.shape[0])])


# ----- the weighted value and gradient -----------------------------------------------------------
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_weighted_loss_is_weighted_mean_of_row_losses(loss):
    X, y = _data(loss, 9)
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 0.25, 1.5, 0.0, 4.0])
    model = _model(loss)
    expected = float(np.sum(w * _row_losses(model, X, y)) / np.sum(w))
    value, _ = model.loss_and_grad(X, y, sample_weight=w)
    assert value == pytest.approx(expected, rel=1e-12)
    for batch in (9, 4, 1):  # evaluate in batches: the weight sums carry across batches
        assert model.evaluate(X, y, batch_size=batch, sample_weight=w)["loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_weighted_gradient_matches_central_differences(loss):
    X, y = _data(loss, 7, seed=1)
    w = np.array([1.0, 0.0, 2.5, 0.5, 3.0, 1.0, 0.125])
    model = _model(loss, seed=2)
    p0 = model.params.copy()

    def f(p):
        model.params = p
        return model.loss_and_grad(X, y, sample_weight=w)[0]

    numeric = central_diff(f, p0)
    model.params = p0
    _, grad = model.loss_and_grad(X, y, sample_weight=w)
    # MAE's kink and Huber's switch are away from these random points
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_weighted_loss_and_gradient_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 4))
    w = rng.uniform(0, 3, 8)
    cases = {"softmax_cross_entropy": rng.integers(0, 3, 8), "binary_cross_entropy": rng.integers(0, 2, (8, 3)) * 1.0,
             "mse": rng.normal(size=(8, 3))}
    for loss, y in cases.items():
        model = Sequential([Dense(4, 3)], loss=loss, dtype="float64", seed=4)
        value, grad = model.loss_and_grad(X, y, sample_weight=w)
        W = torch.tensor(model.layers[0].W, requires_grad=True)
        b = torch.tensor(model.layers[0].b, requires_grad=True)
        z = torch.tensor(X) @ W + b
        if loss == "softmax_cross_entropy":
            per_row = F.cross_entropy(z, torch.tensor(y), reduction="none")
        elif loss == "binary_cross_entropy":
            per_row = F.binary_cross_entropy_with_logits(z, torch.tensor(y), reduction="none").mean(dim=1)
        else:
            per_row = F.mse_loss(z, torch.tensor(y), reduction="none").mean(dim=1)
        tw = torch.tensor(w)
        ref = (tw * per_row).sum() / tw.sum()
        ref.backward()
        assert value == pytest.approx(ref.item(), rel=1e-12), loss
        expected = np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])
        np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-14, err_msg=loss)
    # PyTorch's own class weights are the same convention
    y = cases["softmax_cross_entropy"]
    cw = np.array([0.5, 2.0, 1.5])
    model = Sequential([Dense(4, 3)], loss="softmax_cross_entropy", dtype="float64", seed=4)
    z = torch.tensor(model.forward(X))
    ref = F.cross_entropy(z, torch.tensor(y), weight=torch.tensor(cw)).item()
    assert model.evaluate(X, y, sample_weight=cw[y])["loss"] == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_integer_weights_equal_duplicated_rows_in_a_full_batch_step(loss):
    X, y = _data(loss, 6, seed=5)
    w = np.array([2, 1, 3, 0, 1, 4])
    a, b = _model(loss, seed=6, optimizer=SGD(lr=0.1)), _model(loss, seed=6, optimizer=SGD(lr=0.1))
    la, ga = a.loss_and_grad(X, y, sample_weight=w)
    lb, gb = b.loss_and_grad(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0))
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-15)
    la = a.train_step(X, y, sample_weight=w)
    lb = b.train_step(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0))
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-15)


# ----- all-ones weights are the unweighted run, bit for bit ---------------------------------------
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_all_ones_weights_give_the_unweighted_trajectory_bit_for_bit(loss, dtype):
    X, y = _data(loss, 30, seed=7)
    runs = []
    for w in (None, np.ones(30), np.ones(30, dtype=np.int64), np.ones(30, np.float32)):
        model = _model(loss, dtype=dtype, seed=8)
        history = model.fit(X, y, epochs=3, batch_size=7, verbose=0, sample_weight=w,
                            validation_data=(X, y) if w is None else (X, y, np.ones(30)))
        runs.append((model.params.copy(), history.history))
    for params, history in runs[1:]:
        assert np.array_equal(params, runs[0][0])
        assert history == runs[0][1]


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_unit_weights_in_the_weighted_kernel_give_bit_identical_updates(loss, backend, dtype):
    """Past the Python shortcut: the compiled weighted path itself, with unit weights, computes
    every gradient entry as the unweighted one does (losses agree to round-off)."""
    X, y = _data(loss, 23, seed=9)
    out = []
    for w in (None, np.ones(23, dtype)):
        model = _model(loss, dtype=dtype, seed=10, backend=backend)
        data = model._data(X, y)
        perm = np.random.default_rng(11).permutation(23)
        for _ in range(3):
            run = run_batches(model, *data, perm, 5, None, False, weights=w)
            assert run.failed is None
        out.append((model.params.copy(), run.losses))
    if backend == "compiled":
        assert np.array_equal(out[0][0], out[1][0])
    else:  # the NumPy twin scales each row in another order: round-off only
        np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-6 if dtype == np.float32 else 1e-14)


# ----- compiled kernels vs their NumPy twins on the weighted path ----------------------------------
@settings(max_examples=20)
@given(n=st.integers(1, 17), n_in=st.integers(1, 4), hidden=st.integers(1, 5), k=st.integers(1, 3),
       batch=st.integers(1, 8), loss=st.sampled_from(LOSS_NAMES), seed=st.integers(0, 2**16),
       zero_frac=st.sampled_from([0.0, 0.5, 0.9]))
def test_weighted_training_compiled_equals_reference(n, n_in, hidden, k, batch, loss, seed, zero_frac):
    rng = np.random.default_rng(seed)
    X, y = _data(loss, n, k=k, n_in=n_in, seed=seed)
    w = rng.uniform(0.1, 3.0, n) * (rng.random(n) >= zero_frac)
    w[rng.integers(n)] = 1.5  # not all zero; batches of only zeros happen with zero_frac 0.9
    results = []
    for backend in ("compiled", "reference"):
        model = _model(loss, k=k, n_in=n_in, hidden=hidden, seed=seed, backend=backend)
        history = model.fit(X, y, epochs=2, batch_size=batch, verbose=0, sample_weight=w)
        results.append((model.params.copy(), history.history["loss"],
                        model.evaluate(X, y, batch_size=batch, sample_weight=w)["loss"],
                        model.loss_and_grad(X, y, sample_weight=w)))
    (pc, hc, ec, (lc, gc)), (pr, hr, er, (lr, gr)) = results
    np.testing.assert_allclose(pc, pr, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(hc, hr, rtol=1e-9, atol=1e-12)
    assert ec == pytest.approx(er, rel=1e-9, abs=1e-12)
    assert lc == pytest.approx(lr, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(gc, gr, rtol=1e-9, atol=1e-11)


def test_weighted_training_float32_close_to_reference():
    X, y = _data("softmax_cross_entropy", 20, seed=12)
    w = np.random.default_rng(12).uniform(0, 2, 20)
    params = []
    for backend in ("compiled", "reference"):
        model = _model("softmax_cross_entropy", dtype="float32", seed=13, backend=backend)
        model.fit(X, y, epochs=2, batch_size=6, verbose=0, sample_weight=w)
        params.append(model.params.copy())
        assert model.params.dtype == np.float32
    np.testing.assert_allclose(params[0], params[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_a_batch_whose_weights_sum_to_zero_has_loss_zero_and_no_gradient(loss, backend):
    X, y = _data(loss, 4, seed=14)
    model = _model(loss, seed=15, backend=backend)
    before = model.params.copy()
    run = run_batches(model, *model._data(X, y), np.arange(4), 4, None, False, weights=np.zeros(4))
    assert run.failed is None and run.losses[0] == 0.0
    assert np.all(model.grads == 0)
    assert np.array_equal(model.params, before)  # Adam moves nothing on a zero gradient


def test_weights_travel_with_the_shuffled_rows():
    """A weight that sits on one row moves with it: weighting row 0 only trains on row 0 only,
    whatever the permutation (batch_size = n: one full batch per epoch)."""
    X, y = _data("mse", 10, seed=16)
    w = np.zeros(10)
    w[3] = 2.0
    a = _model("mse", seed=17)
    a.fit(X, y, epochs=3, batch_size=10, verbose=0, sample_weight=w, shuffle=True)
    b = _model("mse", seed=17)
    b.fit(X[3:4], y[3:4], epochs=3, batch_size=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-15)


# ----- class weights -------------------------------------------------------------------------------
def test_class_weight_dict_multiplies_into_sample_weight():
    X, y = _data("softmax_cross_entropy", 25, seed=18)
    sw = np.random.default_rng(18).uniform(0.5, 2, 25)
    cw = {0: 2.0, 2: 0.5}  # class 1 not named: weight 1
    per_row = np.array([cw.get(c, 1.0) for c in y])
    a, b = _model("softmax_cross_entropy", seed=19), _model("softmax_cross_entropy", seed=19)
    ha = a.fit(X, y, epochs=2, batch_size=8, verbose=0, sample_weight=sw, class_weight=cw)
    hb = b.fit(X, y, epochs=2, batch_size=8, verbose=0, sample_weight=sw * per_row)
    assert np.array_equal(a.params, b.params)
    assert ha.history == hb.history


def test_class_weight_balanced_is_scikit_learns_formula():
    X, y = _data("softmax_cross_entropy", 30, seed=20)
    y[:12] = 0  # unbalanced
    from fastgrad._weights import class_weight_rows
    counts = np.bincount(y, minlength=3)
    expected = 30 / (3 * counts)
    np.testing.assert_allclose(class_weight_rows("balanced", y, 3), expected[y], rtol=1e-15)
    sklearn_utils = pytest.importorskip("sklearn.utils")
    ref = sklearn_utils.compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_allclose(class_weight_rows("balanced", y, 3), ref[y], rtol=1e-15)
    # a class absent from y: sklearn counts only the classes present
    y2 = np.array([0, 0, 0, 2])
    ref2 = sklearn_utils.compute_class_weight("balanced", classes=np.array([0, 2]), y=y2)
    np.testing.assert_allclose(class_weight_rows("balanced", y2, 3), ref2[[0, 0, 0, 1]], rtol=1e-15)
    a, b = _model("softmax_cross_entropy", seed=21), _model("softmax_cross_entropy", seed=21)
    a.fit(X, y, epochs=1, batch_size=8, verbose=0, class_weight="balanced")
    b.fit(X, y, epochs=1, batch_size=8, verbose=0, sample_weight=expected[y])
    assert np.array_equal(a.params, b.params)


def test_class_weight_binary_cross_entropy_with_one_output():
    rng = np.random.default_rng(22)
    X, y = rng.normal(size=(12, 4)), rng.integers(0, 2, 12)
    a, b = _model("binary_cross_entropy", k=1, seed=23), _model("binary_cross_entropy", k=1, seed=23)
    a.train_step(X, y, class_weight={1: 3.0})
    b.train_step(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("loss,y,cw", [
    ("mse", np.zeros((4, 3)), {0: 1.0}),
    ("softmax_cross_entropy", np.full((4, 3), 1 / 3), "balanced"),     # probabilities, not labels
    ("binary_cross_entropy", np.zeros((4, 3)), {0: 2.0}),              # three outputs
    ("softmax_cross_entropy", np.array([0, 1, 2, 0]), {3: 1.0}),       # not a class
    ("softmax_cross_entropy", np.array([0, 1, 2, 0]), {0: -1.0}),
    ("softmax_cross_entropy", np.array([0, 1, 2, 0]), {0: np.nan}),
    ("softmax_cross_entropy", np.array([0, 1, 2, 0]), "balance"),
    ("softmax_cross_entropy", np.array([0, 1, 2, 0]), {0: 0.0, 1: 0.0, 2: 0.0}),
])
def test_class_weight_errors(loss, y, cw):
    model = _model(loss)
    with pytest.raises(ValueError, match="class_weight"):
        model.fit(np.zeros((4, 4)), y, class_weight=cw, verbose=0)


def test_class_weight_of_the_wrong_type():
    with pytest.raises(TypeError, match="class_weight"):
        _model("softmax_cross_entropy").fit(np.zeros((4, 4)), np.array([0, 1, 2, 0]), class_weight=[1, 2], verbose=0)


# ----- validation of sample_weight ---------------------------------------------------------------
@pytest.mark.parametrize("w,kind,match", [
    (np.ones((5, 1)), ValueError, r"1-D .*\(5,\).*\(5, 1\)"),
    (np.ones(4), ValueError, r"\(5,\).*\(4,\)"),
    (np.array([1, 2, np.nan, 1, 1]), ValueError, "finite"),
    (np.array([1, 2, np.inf, 1, 1]), ValueError, "finite"),
    (np.array([1, 2, -1, 1, 1]), ValueError, ">= 0"),
    (np.zeros(5), ValueError, "all zero"),
    (np.array(["a"] * 5), TypeError, "real numbers"),
    (np.array([1e-50] * 5), ValueError, "all zero"),  # zero once converted to the model's float32
])
def test_sample_weight_errors_name_the_argument(w, kind, match):
    X, y = _data("mse", 5)
    model = _model("mse", dtype="float32")
    for call in (lambda: model.fit(X, y, sample_weight=w, verbose=0), lambda: model.evaluate(X, y, sample_weight=w),
                 lambda: model.train_step(X, y, sample_weight=w), lambda: model.loss_and_grad(X, y, sample_weight=w)):
        with pytest.raises(kind, match="sample_weight") as info:
            call()
        assert info.match(match)


def test_validation_data_triple_and_validation_split_carry_weights():
    X, y = _data("softmax_cross_entropy", 30, seed=24)
    w = np.random.default_rng(24).uniform(0.5, 2, 30)
    model = _model("softmax_cross_entropy", seed=25)
    history = model.fit(X[:20], y[:20], epochs=1, batch_size=8, verbose=0, validation_data=(X[20:], y[20:], w[20:]))
    assert history.history["val_loss"][0] == model.evaluate(X[20:], y[20:], sample_weight=w[20:])["loss"]
    a, b = _model("softmax_cross_entropy", seed=26), _model("softmax_cross_entropy", seed=26)
    ha = a.fit(X, y, epochs=1, batch_size=8, verbose=0, sample_weight=w, validation_split=1 / 3)
    hb = b.fit(X[:20], y[:20], epochs=1, batch_size=8, verbose=0, sample_weight=w[:20],
               validation_data=(X[20:], y[20:], w[20:]))
    assert np.array_equal(a.params, b.params) and ha.history == hb.history
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, validation_data=(X, y, w, w), verbose=0)
    with pytest.raises(ValueError, match="validation_data's sample weights"):
        model.fit(X[:20], y[:20], validation_data=(X[20:], y[20:], w), verbose=0)


def test_weighted_epoch_loss_is_the_weighted_mean_of_its_batches():
    X, y = _data("mse", 12, seed=27)
    w = np.random.default_rng(27).uniform(0, 2, 12)
    model = _model("mse", seed=28, optimizer=SGD(lr=0.0))  # lr 0: every batch sees the same parameters
    history = model.fit(X, y, epochs=1, batch_size=5, verbose=0, sample_weight=w)
    assert history.history["loss"][0] == pytest.approx(model.evaluate(X, y, sample_weight=w)["loss"], rel=1e-12)


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_weighted_softmax_cross_entropy_with_probability_targets(backend):
    X, y = _data("softmax_cross_entropy", 8, seed=29, labels=False)
    w = np.array([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.25, 4.0])
    model = _model("softmax_cross_entropy", seed=30, backend=backend)
    expected = float(np.sum(w * _row_losses(model, X, y)) / np.sum(w))
    value, grad = model.loss_and_grad(X, y, sample_weight=w)
    assert value == pytest.approx(expected, rel=1e-12)
    _, dup = model.loss_and_grad(np.repeat(X, [1, 0, 2, 1, 3, 1, 1, 4], axis=0),
                                 np.repeat(y, [1, 0, 2, 1, 3, 1, 1, 4], axis=0),
                                 sample_weight=np.repeat([1, 1, 1, 0.5, 1, 1, 0.25, 1], [1, 0, 2, 1, 3, 1, 1, 4]))
    np.testing.assert_allclose(grad, dup, rtol=1e-12, atol=1e-15)

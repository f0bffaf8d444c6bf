"""Losses: kernels vs references, references vs finite differences, stability, known values."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from cases import loss_inputs as _inputs
from conftest import assert_close, central_diff

ELEMENTWISE = [("mse", {}), ("mae", {}), ("huber", {}), ("huber", {"delta": 0.3}),
               ("binary_cross_entropy", {}), ("binary_cross_entropy_with_logits", {})]
shapes = st.tuples(st.integers(1, 50), st.integers(1, 30))


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c[0] + str(c[1].get("delta", "")))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_elementwise_matches_reference(case, reduction, dtype, shape, seed):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(seed), shape, dtype)
    loss, grad = getattr(F, name)(pred, target, reduction=reduction, **options)
    ref_loss, ref_grad = getattr(R, name)(pred, target, reduction=reduction, **options)
    assert isinstance(loss, float) and grad.dtype == dtype and grad.shape == pred.shape
    assert loss == pytest.approx(ref_loss, rel=10 * (1e-12 if dtype == np.float64 else 1e-5))
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c[0] + str(c[1].get("delta", "")))
def test_elementwise_parallel_path(case, dtype):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(0), (300, 400), dtype)
    loss, grad = getattr(F, name)(pred, target, **options)
    ref_loss, ref_grad = getattr(R, name)(pred, target, **options)
    assert loss == pytest.approx(ref_loss, rel=1e-11 if dtype == np.float64 else 1e-5)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c[0] + str(c[1].get("delta", "")))
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_grad_matches_finite_differences(case, module):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(5), (4, 3), np.float64)
    fn = getattr(module, name)
    fd = central_diff(lambda p: fn(p, target, **options)[0], pred)
    grad = fn(pred, target, **options)[1]
    assert np.max(np.abs(fd - grad)) / np.max(np.abs(grad)) < 1e-6


def _ce_inputs(rng, n, k, dtype, probs):
    logits = (rng.standard_normal((n, k)) * 3).astype(dtype)
    if probs:
        t = rng.uniform(size=(n, k))
        return logits, (t / t.sum(1, keepdims=True)).astype(dtype)
    return logits, rng.integers(0, k, n)


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(n=st.integers(1, 60), k=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_softmax_ce_matches_reference(probs, smoothing, reduction, dtype, n, k, seed):
    logits, target = _ce_inputs(np.random.default_rng(seed), n, k, dtype, probs)
    loss, grad = F.softmax_cross_entropy(logits, target, smoothing, reduction)
    ref_loss, ref_grad = R.softmax_cross_entropy(logits, target, smoothing, reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-11 if dtype == np.float64 else 1e-5, abs=1e-6)
    assert grad.dtype == dtype
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("shape", [(1024, 10), (4096, 100), (64, 1000)], ids=str)
def test_softmax_ce_parallel_path(shape, dtype):
    logits, target = _ce_inputs(np.random.default_rng(2), *shape, dtype, False)
    loss, grad = F.softmax_cross_entropy(logits, target, 0.05)
    ref_loss, ref_grad = R.softmax_cross_entropy(logits, target, 0.05)
    assert loss == pytest.approx(ref_loss, rel=1e-11 if dtype == np.float64 else 1e-5)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_softmax_ce_grad_matches_finite_differences(probs, module):
    logits, target = _ce_inputs(np.random.default_rng(9), 3, 4, np.float64, probs)
    fd = central_diff(lambda z: module.softmax_cross_entropy(z, target, 0.1)[0], logits)
    grad = module.softmax_cross_entropy(logits, target, 0.1)[1]
    assert np.max(np.abs(fd - grad)) / np.max(np.abs(grad)) < 1e-6


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_ce_probability_rows_that_do_not_sum_to_one(smoothing, reduction, dtype):
    """The gradient is (sum_j q_j) softmax - q (PyTorch's), not softmax - q: multi-label-like
    rows (several ones) and rows summing to less than 1, on the default path, its twin, finite
    differences and the compiled training loop."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((6, 5)).astype(dtype)
    q = rng.uniform(size=(6, 5)).astype(dtype)
    q[0] = (1, 1, 0, 0, 1)
    q[1] = 0.0
    loss, grad = F.softmax_cross_entropy(logits, q, smoothing, reduction)
    ref_loss, ref_grad = R.softmax_cross_entropy(logits, q, smoothing, reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-11 if dtype == np.float64 else 1e-5)
    assert_close(grad, ref_grad, dtype)
    z64 = logits.astype(np.float64)
    fd = central_diff(lambda z: F.softmax_cross_entropy(z, q.astype(np.float64), smoothing, reduction)[0], z64)
    np.testing.assert_allclose(F.softmax_cross_entropy(z64, q.astype(np.float64), smoothing, reduction)[1], fd,
                               rtol=1e-6, atol=1e-9)
    torch = pytest.importorskip("torch")
    t = torch.tensor(z64, requires_grad=True)
    out = torch.nn.functional.cross_entropy(t, torch.tensor(q.astype(np.float64)), reduction=reduction,
                                            label_smoothing=smoothing)
    out.backward()
    assert loss == pytest.approx(out.item(), rel=1e-12 if dtype == np.float64 else 1e-5)
    assert_close(grad, t.grad.numpy().astype(dtype), dtype)


def test_training_loop_takes_the_same_gradient_for_unnormalized_probabilities():
    from fastgrad import Dense, Sequential
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 4))
    q = (rng.uniform(size=(12, 3)) > 0.5).astype(float)  # 0/1 rows: 0, 1, 2 or 3 ones
    grads = []
    for backend in ("compiled", "reference"):
        model = Sequential([Dense(4, 3)], loss="softmax_cross_entropy", dtype="float64", seed=0, backend=backend)
        loss, grad = model.loss_and_grad(X, q)
        grads.append(grad)
        fd = central_diff(lambda p: (setattr(model, "params", p), model.loss_and_grad(X, q)[0])[1],
                          model.params.copy())
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-15)


def test_known_values():
    loss, grad = F.mse(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    assert loss == 2.5 and np.allclose(grad, [1.0, 2.0])
    loss, grad = F.mse(np.array([1.0, 2.0]), np.array([0.0, 0.0]), reduction="sum")
    assert loss == 5.0 and np.allclose(grad, [2.0, 4.0])
    loss, grad = F.huber(np.array([0.5, 3.0]), np.zeros(2))
    assert loss == pytest.approx((0.125 + 2.5) / 2) and np.allclose(grad, [0.25, 0.5])
    loss, _ = F.softmax_cross_entropy(np.zeros((2, 4)), np.array([1, 3]))
    assert loss == pytest.approx(np.log(4))
    loss, _ = F.binary_cross_entropy_with_logits(np.array([0.0]), np.array([1.0]))
    assert loss == pytest.approx(np.log(2))


def test_worked_example_single_sigmoid_neuron():
    """x=2, y=1, w=0.5, b=-0.1: y_hat = sigmoid(0.9) ~ 0.7109, BCE ~ 0.3412."""
    x, y, w, b = 2.0, 1.0, 0.5, -0.1
    z = np.array([[w * x + b]])
    y_hat = F.sigmoid(z)
    assert y_hat[0, 0] == pytest.approx(0.7109, abs=5e-5)
    loss, grad_p = F.binary_cross_entropy(y_hat, np.array([[y]]))
    assert loss == pytest.approx(0.3412, abs=5e-5)
    grad_z = F.sigmoid_backward(z, grad_p)
    logit_loss, grad_z_fused = F.binary_cross_entropy_with_logits(z, np.array([[y]]))
    assert logit_loss == pytest.approx(loss, rel=1e-12)
    grad_x, grad_W, grad_b = F.dense_backward(np.array([[x]]), np.array([[w]]), z, grad_z_fused)
    assert grad_W[0, 0] == pytest.approx((y_hat[0, 0] - y) * x, rel=1e-12)
    assert grad_b[0] == pytest.approx(y_hat[0, 0] - y, rel=1e-12)
    assert grad_z[0, 0] == pytest.approx(grad_z_fused[0, 0], rel=1e-10)


@pytest.mark.parametrize("x,t,expected", [(np.inf, 1.0, 0.0), (-np.inf, 0.0, 0.0), (1e4, 1.0, 0.0),
                                          (-1e4, 1.0, 1e4), (np.inf, 0.0, np.inf)])
def test_bce_with_logits_extremes(x, t, expected, dtype):
    loss, grad = F.binary_cross_entropy_with_logits(np.array([x], dtype), np.array([t], dtype))
    assert loss == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isfinite(grad))


def test_softmax_ce_extremes(dtype):
    logits = np.array([[np.inf, 0.0, -np.inf], [1e4, -1e4, 0.0], [0.0, -np.inf, 1.0]], dtype)
    loss, grad = F.softmax_cross_entropy(logits, np.array([0, 0, 2]), reduction="sum")
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-5)
    probs = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype)
    assert F.softmax_cross_entropy(logits, probs, reduction="sum")[0] == pytest.approx(loss, rel=1e-6)
    # the true loss is infinite when the target sits on a -inf logit
    assert F.softmax_cross_entropy(logits[:1], np.array([2]))[0] == np.inf


def test_bce_clamps_probabilities(dtype):
    loss, grad = F.binary_cross_entropy(np.array([0.0, 1.0], dtype), np.array([1.0, 0.0], dtype))
    assert loss == pytest.approx(-np.log(1e-12), rel=1e-5) and np.all(np.isfinite(grad))


def test_nan_propagates_to_loss():
    assert np.isnan(F.mse(np.array([np.nan, 1.0]), np.zeros(2))[0])
    assert np.isnan(F.softmax_cross_entropy(np.array([[np.nan, 1.0]]), np.array([0]))[0])

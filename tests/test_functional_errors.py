"""Bad input to the functional API raises a clear error naming the argument, never a crash."""
import numpy as np
import pytest

import fastgrad.functional as F
from fastgrad import Activation, BatchNorm1d, Dense, LayerNorm, Sequential
import fastgrad.reference as R


@pytest.mark.parametrize("name", sorted(F.ACTIVATIONS))
def test_activation_rejects_bad_input(name):
    fwd, bwd = F.ACTIVATIONS[name]
    with pytest.raises(TypeError, match="z"):
        fwd(np.ones(3, dtype=complex))
    with pytest.raises(TypeError, match="z"):
        fwd(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="z"):
        fwd(np.array([object(), object()]))
    with pytest.raises(ValueError, match="z must not be empty"):
        fwd(np.ones((0, 3)))
    with pytest.raises(ValueError, match="grad_a must have the shape of z"):
        bwd(np.ones((2, 3)), np.ones((3, 2)))


def test_softmax_rank_and_axis():
    with pytest.raises(ValueError, match="z must be 1-D or 2-D"):
        F.softmax(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="axis"):
        F.log_softmax(np.ones((2, 2)), axis=2)
    for fn in (F.softmax, F.log_softmax):
        for axis in (True, np.bool_(False), 1.0, "1", None):
            with pytest.raises(TypeError, match="axis must be an integer"):
                fn(np.ones((2, 2)), axis=axis)
    for fn in (F.softmax_backward, F.log_softmax_backward):
        with pytest.raises(TypeError, match="axis must be an integer"):
            fn(np.ones((2, 2)), np.ones((2, 2)), axis=True)


@pytest.mark.parametrize("fn,kwargs,match", [
    (F.leaky_relu, {"alpha": "x"}, "alpha"), (F.elu, {"alpha": np.nan}, "alpha"),
    (F.softplus, {"beta": 0.0}, "beta"), (F.gelu, {"approximate": "erf"}, "approximate"),
    # an int beyond float64's range: Python's bare "OverflowError: int too large to convert to float" before
    (F.leaky_relu, {"alpha": 10**400}, "alpha must be finite"), (F.softplus, {"beta": -10**400}, "beta must be finite"),
    (F.softplus, {"threshold": 10**400}, "threshold must be finite"),
])
def test_activation_options_validated(fn, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fn(np.ones(3), **kwargs)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_elementwise_loss_errors(name):
    fn = getattr(F, name)
    with pytest.raises(ValueError, match="target must have the shape"):
        fn(np.full((2, 3), 0.5), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="must not be empty"):
        fn(np.ones((0,)), np.ones((0,)))
    with pytest.raises(ValueError, match="reduction"):
        fn(np.full(2, 0.5), np.full(2, 0.5), reduction="avg")
    with pytest.raises(TypeError):
        fn(np.ones(2, dtype=complex), np.ones(2))


def test_bce_ranges():
    with pytest.raises(ValueError, match=r"prob must lie in \[0, 1\]"):
        F.binary_cross_entropy(np.array([1.5]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        F.binary_cross_entropy(np.array([0.5]), np.array([-0.1]))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        F.binary_cross_entropy_with_logits(np.array([0.5]), np.array([2.0]))
    with pytest.raises(ValueError, match="huber|delta"):
        F.huber(np.ones(2), np.ones(2), delta=0)


def test_softmax_cross_entropy_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        F.softmax_cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        F.softmax_cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        F.softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        F.softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="target must have the shape of logits"):
        F.softmax_cross_entropy(logits, np.full((3, 5), 0.2))
    with pytest.raises(ValueError, match="logits must be 2-D"):
        F.softmax_cross_entropy(np.zeros(4), np.array([1]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.softmax_cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="logits must not be empty"):
        F.softmax_cross_entropy(np.zeros((0, 4)), np.array([], dtype=int))


def test_dense_errors():
    x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.ones(4)
    with pytest.raises(ValueError, match=r"W must have shape \(3, n_out\)"):
        F.dense_forward(x, np.ones((4, 4)), b)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        F.dense_forward(x, W, np.ones(3))
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.dense_forward(np.ones(3), W, b)
    with pytest.raises(ValueError, match="activation must be one of"):
        F.dense_forward(x, W, b, activation="swishy")
    with pytest.raises(ValueError, match="takes options"):
        F.dense_forward(x, W, b, activation="relu", alpha=0.1)
    with pytest.raises(ValueError, match="z must have shape"):
        F.dense_backward(x, W, np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_y must have the shape of z"):
        F.dense_backward(x, W, np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="x must not be empty"):
        F.dense_forward(np.ones((0, 3)), W, b)


# --- issue 10.6: small shape and type gaps ---------------------------------------

ELEMENTWISE = sorted(set(F.ACTIVATIONS) - {"softmax", "log_softmax"})


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_0d_keeps_shape(name):
    fwd, bwd = F.ACTIVATIONS[name]
    z = np.array(-2.0)
    a = fwd(z)
    assert a.shape == () and a == fwd(np.array([-2.0]))[0]
    g = bwd(z, np.array(1.5))
    assert g.shape == () and g == bwd(np.array([-2.0]), np.array([1.5]))[0]


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_loss_0d_keeps_shape(name):
    loss, grad = getattr(F, name)(np.array(0.25), np.array(1.0))
    loss1, grad1 = getattr(F, name)(np.array([0.25]), np.array([1.0]))
    assert grad.shape == () and loss == loss1 and grad == grad1[0]


def test_dense_without_bias():
    rng = np.random.default_rng(3)
    x, W = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    y, z = F.dense_forward(x, W, None, activation="tanh", return_preactivation=True)
    np.testing.assert_allclose(z, x @ W, rtol=1e-12)
    np.testing.assert_allclose(y, np.tanh(x @ W), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    gx, gW, gb = F.dense_backward(x, W, z, g, activation="tanh", bias=False)
    assert gb is None
    rx, rW, rb = R.dense_backward(x, W, z, g, activation="tanh", bias=False)
    assert rb is None
    np.testing.assert_allclose(gx, rx, rtol=1e-12)
    np.testing.assert_allclose(gW, rW, rtol=1e-12)
    np.testing.assert_allclose(R.dense_forward(x, W, None), x @ W, rtol=1e-12)
    with pytest.raises(TypeError, match="bias"):
        F.dense_backward(x, W, z, g, bias="no")


def test_float16_computed_in_float32_returned_as_float16():
    z16 = np.array([-1.5, 0.0, 0.7, 3.0], np.float16)
    for name in ELEMENTWISE + ["softmax", "log_softmax"]:
        fwd, bwd = F.ACTIVATIONS[name]
        a = fwd(z16)
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, fwd(z16.astype(np.float32)).astype(np.float16))
        g = bwd(z16, np.ones(4, np.float16))
        assert g.dtype == np.float16
    loss, grad = F.mse(z16, np.zeros(4, np.float16))
    assert grad.dtype == np.float16 and loss == F.mse(z16.astype(np.float32), np.zeros(4, np.float32))[0]
    loss, grad = F.softmax_cross_entropy(z16.reshape(2, 2), np.array([0, 1]))
    assert grad.dtype == np.float16
    x16 = np.ones((2, 4), np.float16)
    y = F.dense_forward(x16, np.ones((4, 3)), np.zeros(3), activation="relu")
    assert y.dtype == np.float16 and (y == 4).all()
    grads = F.dense_backward(x16, np.ones((4, 3)), np.ones((2, 3)), np.ones((2, 3)))
    assert all(gr.dtype == np.float16 for gr in grads)


def test_pandas_nullable_columns_are_converted():
    pd = pytest.importorskip("pandas")
    s = pd.Series([-1.0, None, 2.0], dtype="Float64")
    a = F.relu(s)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, [0.0, np.nan, 2.0])
    a32 = F.relu(pd.array([-1.0, 2.0], dtype="Float32"))
    assert a32.dtype == np.float32 and a32.tolist() == [0.0, 2.0]
    np.testing.assert_array_equal(F.sigmoid(pd.Series([0, None], dtype="Int64")), [0.5, np.nan])
    loss, grad = F.mse(pd.Series([1.0, 2.0], dtype="Float64"), pd.Series([1.0, None], dtype="Float64"))
    assert np.isnan(loss) and grad[0] == 0 and np.isnan(grad[1])
    obj = np.array([-1.0, pd.NA, 2], dtype=object)  # what older pandas gives for a Float64 column
    np.testing.assert_array_equal(F.relu(obj), [0.0, np.nan, 2.0])
    df = pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64"), "b": [2.0, 3.0]})
    np.testing.assert_array_equal(F.relu(df), [[1.0, 2.0], [np.nan, 3.0]])


# Options valid as float64 but not in the inputs' float32 (issue 10's kind: a value checked in float64
# and used after rounding): inf or 0 there gave NaN for finite input, with NumPy's cast warning only.
Z32 = np.array([-1.0, -0.0, 0.0, 2.0], np.float32)
OPTION_CASES = [
    (lambda: F.softplus(Z32, beta=1e300), "^beta must be finite in z's dtype float32"),
    (lambda: F.softplus_backward(Z32, Z32, beta=1e300), "^beta must be finite in z's dtype float32"),
    (lambda: F.softplus(Z32, beta=1e-46), "^beta must be > 0 in z's dtype float32"),
    (lambda: F.softplus(Z32, threshold=1e39), "^threshold must be finite in z's dtype float32"),
    (lambda: F.leaky_relu(Z32, alpha=1e300), "^alpha must be finite in z's dtype float32"),
    (lambda: F.leaky_relu_backward(Z32, Z32, alpha=-1e300), "^alpha must be finite in z's dtype float32"),
    (lambda: F.elu(Z32, alpha=1e300), "^alpha must be finite in z's dtype float32"),
    (lambda: F.elu_backward(Z32, Z32, alpha=1e-50), "^alpha must be > 0 in z's dtype float32"),
    (lambda: F.huber(Z32, Z32, delta=1e39), "^delta must be finite in pred's dtype float32"),
    (lambda: F.binary_cross_entropy(np.float32([.5, 1, 0]), np.float32([0, 1, 1]), eps=1e-46),
     "^eps must be > 0 in pred's dtype float32"),
    (lambda: F.layer_norm(np.ones((2, 3), np.float32), eps=1e39), "^eps must be finite in x's dtype float32"),
    (lambda: F.batch_norm(np.ones((2, 3), np.float32), training=True, eps=1e-50), "^eps must be > 0 in x's dtype float32"),
]


@pytest.mark.parametrize("call,match", OPTION_CASES)
def test_options_must_keep_their_value_in_the_inputs_dtype(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_same_options_are_fine_in_float64():
    z = Z32.astype(np.float64)
    np.testing.assert_allclose(F.softplus(z, beta=1e300), [0.0, np.log(2) / 1e300, np.log(2) / 1e300, 2.0], rtol=1e-15)
    assert np.isfinite(F.leaky_relu(z, alpha=1e300)).all() and np.isfinite(F.elu_backward(z, z, alpha=1e-50)).all()
    assert np.isfinite(F.binary_cross_entropy(np.array([.5, 1, 0]), np.array([0.0, 1, 1]), eps=1e-46)[0])


@pytest.mark.parametrize("layers,match", [
    (lambda: [Dense(3, 4), Activation("softplus", beta=1e300), Dense(4, 1)], "^beta of layer 1 must be finite"),
    (lambda: [Dense(3, 4, activation="leaky_relu", alpha=1e300), Dense(4, 1)], "^alpha of layer 0 must be finite"),
    (lambda: [Dense(3, 4), BatchNorm1d(4, eps=1e-50), Dense(4, 1)], "^eps of layer 1 must be > 0"),
    (lambda: [Dense(3, 4), LayerNorm(4, eps=1e39), Dense(4, 1)], "^eps of layer 1 must be finite"),
])
def test_a_float32_model_refuses_options_that_float32_cannot_hold(layers, match):
    with pytest.raises(ValueError, match=match + " in the model's dtype float32"):
        Sequential(layers(), loss="mse", dtype="float32")
    Sequential(layers(), loss="mse", dtype="float64")   # representable there


def test_an_integer_beyond_float64_is_named_in_every_scalar_option():
    from fastgrad.optim import SGD
    with pytest.raises(ValueError, match="label_smoothing must be finite"):
        F.softmax_cross_entropy(np.ones((2, 2)), np.array([0, 1]), label_smoothing=10**400)
    with pytest.raises(ValueError, match="lr must be finite"):
        SGD(lr=10**400)


"""Bad input to the functional API raises a clear error naming the argument, never a crash."""
import numpy as np
import pytest

import fastgrad.functional as F


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


@pytest.mark.parametrize("fn,kwargs,match", [
    (F.leaky_relu, {"alpha": "x"}, "alpha"), (F.elu, {"alpha": np.nan}, "alpha"),
    (F.softplus, {"beta": 0.0}, "beta"), (F.gelu, {"approximate": "erf"}, "approximate"),
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
        F.dense_forward(x, W, b, activation="swish")
    with pytest.raises(ValueError, match="takes options"):
        F.dense_forward(x, W, b, activation="relu", alpha=0.1)
    with pytest.raises(ValueError, match="z must have shape"):
        F.dense_backward(x, W, np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_y must have the shape of z"):
        F.dense_backward(x, W, np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="x must not be empty"):
        F.dense_forward(np.ones((0, 3)), W, b)

"""Initializers: variances of large draws against the formulas, seeds, gains, fans."""
import math

import numpy as np
import pytest

from fastgrad import init

SHAPE = (400, 600)  # 240_000 draws: the sample variance is within ~1% of the truth


@pytest.mark.parametrize("name, variance", [
    ("xavier_uniform", 2 / (400 + 600)), ("xavier_normal", 2 / (400 + 600)),
    ("he_uniform", 2 / 400), ("he_normal", 2 / 400), ("lecun_normal", 1 / 400),
])
def test_variance_matches_the_formula(name, variance):
    w = init.INITIALIZERS[name](SHAPE, gain=1.5, rng=0)
    assert w.shape == SHAPE and w.dtype == np.float64
    assert w.var() == pytest.approx(1.5 ** 2 * variance, rel=0.02)
    assert abs(w.mean()) < 0.01 * math.sqrt(variance)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= 1.5 * math.sqrt(3 * variance)


def test_seed_reproduces_draws_and_generator_advances(dtype):
    a = init.he_normal((30, 20), rng=42, dtype=dtype)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, init.he_normal((30, 20), rng=42, dtype=dtype))
    np.testing.assert_array_equal(a, init.he_normal((30, 20), rng=42).astype(dtype))
    rng = np.random.default_rng(7)
    b, c = init.xavier_uniform((5, 5), rng=rng), init.xavier_uniform((5, 5), rng=rng)
    assert not np.array_equal(b, c)
    np.testing.assert_array_equal(b, init.xavier_uniform((5, 5), rng=np.random.default_rng(7)))


def test_fans_and_one_dimensional_shapes():
    assert init.fans((3, 5)) == (3, 5) and init.fans(7) == (7, 7) and init.fans((7,)) == (7, 7)
    assert init.lecun_normal(50_000, rng=1).var() == pytest.approx(1 / 50_000, rel=0.03)
    np.testing.assert_array_equal(init.zeros((2, 3), dtype=np.float32), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(init.ones(4), np.ones(4))


def test_calculate_gain():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("selu") == 0.75
    for name in ("identity", "linear", "sigmoid", "elu", "gelu", "softplus", "silu", "softmax", "log_softmax"):
        assert init.calculate_gain(name) == 1.0


@pytest.mark.parametrize("call, name", [
    (lambda: init.calculate_gain("swish"), "activation"), (lambda: init.he_normal((2, 3, 4)), "shape"),
    (lambda: init.he_normal((0, 3)), r"shape\[0\]"), (lambda: init.xavier_normal((2, 2), gain=-1), "gain"),
    (lambda: init.ones(3, dtype=np.int32), "dtype"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()

"""Derivatives of any order (issue 16): Fornberg stencils of selectable accuracy, Richardson
extrapolation with an error estimate, against closed forms and numdifftools."""
import math

import numba  # a user's compiled function, exactly as a user writes it
import numpy as np
import pytest
from hypothesis import given, settings, strategies as hst

from fastgrad import _stencils as st, diff
from fastgrad.reference import diff as R


@numba.njit
def sin_jit(t):
    return np.sin(t)


def sin_derivative(k, x):
    return np.sin(x + k * np.pi / 2)


def test_fornberg_weights_known_tables():
    assert st.fd_weights((-1, 1), 1) == (-0.5, 0.5)
    assert st.fd_weights((-2, -1, 0, 1, 2), 4) == (1, -4, 6, -4, 1)
    assert st.stencil(3, "central", 2) == ((-2.0, -1.0, 1.0, 2.0), (-0.5, 1.0, -1.0, 0.5))
    assert st.stencil(3, "central", 4)[1] == (0.125, -1.0, 1.625, -1.625, 1.0, -0.125)
    assert st.stencil(2, "central", 6)[1] == pytest.approx((1 / 90, -3 / 20, 3 / 2, -49 / 18, 3 / 2, -3 / 20, 1 / 90))
    assert st.stencil(3, "forward", 1) == ((0.0, 1.0, 2.0, 3.0), (-1.0, 3.0, -3.0, 1.0))
    with pytest.raises(ValueError, match="cannot give derivative order"):
        st.fd_weights((0, 1), 2)


@settings(max_examples=30)
@given(order=hst.integers(1, 6), half=hst.integers(1, 4), method=hst.sampled_from(st.METHODS))
def test_weights_reproduce_monomials_exactly(order, half, method):
    """``sum_k w_k o_k^j = j! [j == order]`` for ``j < len(stencil)``: exact on polynomials of that degree."""
    accuracy = 2 * half if method == "central" else half
    offsets = st.offsets_for(order, method, accuracy)
    weights = st.fd_weights(offsets, order)
    degree = order + accuracy - 1 if method != "central" else len(offsets) - 1
    for j in range(degree + 1):
        moment = sum(w * o ** j for w, o in zip(weights, offsets))
        assert moment == (math.factorial(order) if j == order else 0)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("accuracy", [2, 4, 6])
def test_sin_derivatives_of_any_order(order, accuracy):
    x = np.linspace(-2.0, 2.0, 9)
    d = diff.derivative(np.sin, x, order=order, accuracy=accuracy)
    # truncation and round-off both shrink with accuracy: a loose bound for every combination
    bound = {2: 1e-4, 4: 1e-6, 6: 1e-7}[accuracy] * 10 ** (order - 1)
    np.testing.assert_allclose(d, sin_derivative(order, x), atol=bound)


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_one_sided_higher_orders(method):
    for order in (1, 2, 3):
        d = diff.derivative(np.exp, 0.5, order=order, method=method, accuracy=3)
        assert d == pytest.approx(np.exp(0.5), rel=1e-5 * 10 ** order)


def test_richardson_full_output_error_estimate_covers_the_error():
    x = np.linspace(-3.0, 3.0, 13)
    for order in range(1, 7):
        value, error = diff.derivative(np.sin, x, order=order, richardson=True, full_output=True)
        actual = np.abs(value - sin_derivative(order, x))
        assert value.shape == error.shape == x.shape and np.all(error > 0)
        assert np.all(actual <= error), (order, actual.max(), error.min())
        assert np.max(error) < 1e-3 * 10 ** (order - 4)  # and it is not vacuous
    # the plain stencil's estimate (one extra level at h/2) covers its larger error too
    value, error = diff.derivative(np.exp, 1.0, order=3, full_output=True)
    assert isinstance(value, float) and isinstance(error, float)
    assert abs(value - np.e) <= error < 1e-3
    assert value == diff.derivative(np.exp, 1.0, order=3)  # the same value with or without its error


def test_richardson_beats_the_plain_stencil():
    plain = abs(diff.derivative(np.exp, 1.0, order=2) - np.e)
    rich = abs(diff.derivative(np.exp, 1.0, order=2, richardson=True) - np.e)
    assert rich < plain / 100


def test_compiled_and_python_paths_agree_for_any_order():
    x = np.linspace(-1, 1, 7)
    for order, accuracy in ((3, 2), (4, 4), (5, 2)):
        np.testing.assert_array_equal(diff.derivative(sin_jit, x, order=order, accuracy=accuracy),
                                      diff.derivative(np.sin, x, order=order, accuracy=accuracy))
    a = diff.derivative(sin_jit, x, order=3, richardson=True, full_output=True)
    b = diff.derivative(np.sin, x, order=3, richardson=True, full_output=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(diff.derivative(np.sin, x, order=3), R.derivative(np.sin, x, order=3),
                               rtol=1e-12, atol=1e-12)


def test_float32_any_order():
    x = np.linspace(-1, 1, 5).astype(np.float32)
    d = diff.derivative(lambda t: np.sin(t), x, order=3)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, sin_derivative(3, x.astype(np.float64)), atol=2e-2)


def test_against_numdifftools():
    nd = pytest.importorskip("numdifftools")
    for order in (1, 2, 3, 4):
        ours, err = diff.derivative(np.exp, 0.7, order=order, richardson=True, full_output=True)
        result = nd.Derivative(np.exp, n=order, full_output=True)(0.7)  # (value, error estimate, ...)
        theirs = float(np.asarray(result[0]))
        assert ours == pytest.approx(theirs, rel=1e-6)
        assert abs(ours - np.exp(0.7)) <= err


def test_bad_orders_and_accuracies():
    with pytest.raises(ValueError, match="order must be >= 1"):
        diff.derivative(np.sin, 1.0, order=0)
    with pytest.raises(ValueError, match="order must be <= 16"):
        diff.derivative(np.sin, 1.0, order=17)
    with pytest.raises(ValueError, match="accuracy must be an even integer"):
        diff.derivative(np.sin, 1.0, order=3, accuracy=5)
    with pytest.raises(TypeError, match="order must be an integer"):
        diff.derivative(np.sin, 1.0, order=2.5)

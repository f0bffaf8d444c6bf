"""Activations: kernels vs the NumPy references, references vs finite differences, stability."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from cases import ACTIVATION_CASES, KINKED, ROWWISE, case_id, random_z
from conftest import assert_close, vjp_central_diff

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))
CASES = pytest.mark.parametrize("case", ACTIVATION_CASES, ids=[case_id(c) for c in ACTIVATION_CASES])


def _pair(name):
    return F.ACTIVATIONS[name], (getattr(R, name), getattr(R, name + "_backward"))


@CASES
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_matches_reference(case, dtype, shape, seed):
    name, options = case
    (fwd, bwd), (ref_fwd, ref_bwd) = _pair(name)
    rng = np.random.default_rng(seed)
    z = random_z(rng, shape, dtype, name)
    g = rng.standard_normal(shape).astype(dtype)
    a = fwd(z, **options)
    assert a.dtype == dtype and a.shape == z.shape
    assert_close(a, ref_fwd(z, **options), dtype)
    gz = bwd(z, g, **options)
    assert gz.dtype == dtype and gz.shape == z.shape
    assert_close(gz, ref_bwd(z, g, **options), dtype)


@CASES
@pytest.mark.parametrize("shape", [(300, 500), (1, 70001), (4097, 13)], ids=str)
def test_matches_reference_on_parallel_path(case, dtype, shape):
    """Inputs above the serial threshold take the parallel block path."""
    name, options = case
    (fwd, bwd), (ref_fwd, ref_bwd) = _pair(name)
    rng = np.random.default_rng(1)
    z = random_z(rng, shape, dtype, name)
    g = rng.standard_normal(shape).astype(dtype)
    assert_close(fwd(z, **options), ref_fwd(z, **options), dtype)
    assert_close(bwd(z, g, **options), ref_bwd(z, g, **options), dtype)


@CASES
@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_backward_matches_finite_differences(case, impl):
    name, options = case
    (fwd, bwd), (ref_fwd, ref_bwd) = _pair(name)
    if impl == "reference":
        fwd, bwd = ref_fwd, ref_bwd
    rng = np.random.default_rng(7)
    z = random_z(rng, (3, 5), np.float64, name, scale=2.0)
    g = rng.standard_normal((3, 5))
    fd = vjp_central_diff(lambda x: fwd(x, **options), z, g, h=1e-6)
    analytic = bwd(z, g, **options)
    rel = np.max(np.abs(fd - analytic)) / max(np.max(np.abs(analytic)), 1e-300)
    assert rel < 1e-6, (name, rel)


def test_known_values():
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(F.relu(z), [0, 0, 2])
    np.testing.assert_allclose(F.leaky_relu(z, alpha=0.1), [-0.1, 0, 2])
    np.testing.assert_allclose(F.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(F.elu(z), [np.exp(-1) - 1, 0, 2], rtol=1e-15)
    np.testing.assert_allclose(F.gelu(np.array([1.0])), [0.8413447460685429], rtol=1e-14)
    np.testing.assert_allclose(F.gelu(np.array([1.0]), approximate="tanh"), [0.8411919906082768], rtol=1e-14)
    np.testing.assert_allclose(F.softplus(np.array([0.0, 30.0])), [np.log(2), 30.0], rtol=1e-15)
    np.testing.assert_allclose(F.silu(np.array([1.0])), [1 / (1 + np.exp(-1))], rtol=1e-15)
    np.testing.assert_allclose(F.softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(F.relu_backward(np.array([0.0]), np.array([5.0])), [0.0])


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "tanh", "gelu", "elu", "softmax", "log_softmax"])
def test_stable_at_extreme_inputs(name, dtype):
    (fwd, bwd), _ = _pair(name)
    z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    a = fwd(z)
    gz = bwd(z, np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(gz)), (a, gz)
    if name == "sigmoid":
        np.testing.assert_array_equal(a[0, [0, -1]], [0.0, 1.0])
    if name == "softplus":
        np.testing.assert_array_equal(a[0, [0, -1]], [0.0, 1e4])
    if name == "softmax":
        np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-6)
    if name == "log_softmax":
        assert a[0, 0] == pytest.approx(-2e4, rel=1e-6)


def test_softmax_with_infinite_logits():
    z = np.array([[np.inf, 0.0, -np.inf], [np.inf, np.inf, 1.0]])
    np.testing.assert_allclose(F.softmax(z), [[1, 0, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(F.log_softmax(z)[1, :2], [-np.log(2)] * 2)


@pytest.mark.parametrize("k", [3, 31, 32, 100])  # short rows, and rows of whole and partial lane chunks
def test_softmax_family_with_special_values_equals_reference(k, dtype):
    """Rows holding +inf, -inf, NaN and finite values, short and long (the lane reductions of
    kernels/softmax.py end in a masked partial chunk unless k is a multiple of 16): equal to the
    NumPy twins."""
    rng = np.random.default_rng(k)
    z = (rng.standard_normal((6, k)) * 4).astype(dtype)
    z[0, 1] = np.inf
    z[1, [0, 2]] = np.inf
    z[2, 1] = -np.inf
    z[3, :] = -np.inf
    z[4, 2] = np.nan
    z[5, 0], z[5, 2] = np.inf, np.nan
    g = rng.standard_normal((6, k)).astype(dtype)
    labels = np.arange(6) % k
    with np.errstate(invalid="ignore"):
        for name in ("softmax", "log_softmax"):
            assert_close(getattr(F, name)(z), getattr(R, name)(z), dtype)
            assert_close(getattr(F, name + "_backward")(z, g), getattr(R, name + "_backward")(z, g), dtype)
        for got, want in zip(F.softmax_cross_entropy(z, labels, reduction="none"),
                             R.softmax_cross_entropy(z, labels, reduction="none")):
            assert_close(got, want, dtype)
    a = F.softmax(z)
    np.testing.assert_array_equal(np.isnan(a).all(axis=1), [False, False, False, True, True, True])
    assert a[0, 1] == 1 and a[1, 0] == a[1, 2] == 0.5 and a[2, 1] == 0


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_softmax_axis(axis, dtype):
    z = np.random.default_rng(3).standard_normal((4, 6)).astype(dtype)
    g = np.random.default_rng(4).standard_normal((4, 6)).astype(dtype)
    assert_close(F.softmax(z, axis=axis), R.softmax(z, axis=axis), dtype)
    assert_close(F.log_softmax_backward(z, g, axis=axis), R.log_softmax_backward(z, g, axis=axis), dtype)
    assert_close(F.softmax(z[0], axis=0), R.softmax(z[0], axis=0), dtype)


def test_nan_propagates():
    z = np.array([1.0, np.nan, -1.0])
    for name in ["sigmoid", "tanh", "gelu", "silu", "softplus"]:
        assert np.isnan(F.ACTIVATIONS[name][0](z)[1])
    assert np.all(np.isnan(F.softmax(z)))


def test_dtype_rules():
    assert F.relu(np.array([1, -2])).dtype == np.float64
    assert F.sigmoid(np.array([True, False])).dtype == np.float64
    z = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # non-contiguous
    np.testing.assert_array_equal(F.relu(z), z)
    assert F.tanh_backward(np.zeros(3, np.float32), np.ones(3, np.float64)).dtype == np.float32

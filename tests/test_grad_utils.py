"""Gradient clipping and statistics: kernels vs references, PyTorch's semantics, lists vs flat buffers."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close
from fastgrad.kernels import grad_utils as K
from fastgrad.optim import clip_grad_norm, clip_grad_value, grad_stats
from fastgrad.reference import grad_utils as R

NORMS = [1.0, 2.0, 3.0, math.inf]


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("n", [7, 50_000])
def test_clip_grad_norm_kernel_matches_reference(norm_type, n, dtype):
    g = np.random.default_rng(0).standard_normal(n).astype(dtype)
    g_ref = g.copy()
    total = K.clip_grad_norm(g, 1.0, norm_type)
    total_ref = R.clip_grad_norm(g_ref, 1.0, norm_type)
    assert total == pytest.approx(total_ref, rel=1e-12)
    assert_close(g, g_ref, dtype)


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=300), st.sampled_from(NORMS))
def test_power_sum_and_stats_match_reference(values, norm_type):
    g = np.array(values)
    assert K.power_sum(g, norm_type) == pytest.approx(R.power_sum(g, norm_type), rel=1e-12, abs=1e-300)
    out, out_ref = np.empty(K.N_STATS), np.empty(K.N_STATS)
    K.grad_stats_sums(g, out)
    R.grad_stats_sums(g, out_ref)
    np.testing.assert_allclose(out, out_ref, rtol=1e-12)


def test_clip_grad_norm_semantics():
    g = np.array([3.0, 4.0])
    assert clip_grad_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g, np.array([3.0, 4.0]) * (1.0 / (5.0 + 1e-6)), rtol=1e-15)
    small = np.array([0.3, 0.4])
    assert clip_grad_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small, [0.3, 0.4])  # factor clamped at 1
    g = np.array([1.0, -7.0, 2.0])
    assert clip_grad_norm(g, 3.5, norm_type="inf") == 7.0
    np.testing.assert_allclose(g, np.array([1.0, -7.0, 2.0]) * 3.5 / (7.0 + 1e-6))


def test_clip_grad_norm_of_a_list_equals_the_flat_buffer(dtype):
    rng = np.random.default_rng(2)
    flat = rng.standard_normal(40_010).astype(dtype)
    parts = [flat[:10].copy().reshape(2, 5), flat[10:].copy()]
    for p in NORMS:
        a, b = flat.copy(), [x.copy() for x in parts]
        ta, tb = clip_grad_norm(a, 0.5, p), clip_grad_norm(b, 0.5, p)
        assert ta == pytest.approx(tb, rel=1e-12)
        assert_close(np.concatenate([x.ravel() for x in b]), a, dtype)


def test_nonfinite_norm_propagates_as_in_pytorch():
    g = np.array([1.0, np.nan])
    assert math.isnan(clip_grad_norm(g, 1.0))
    assert np.isnan(g).all()
    g = np.array([1.0, np.inf])
    assert clip_grad_norm(g, 1.0) == math.inf
    assert g[0] == 0.0 and np.isnan(g[1])  # scaled by 1 / inf = 0
    assert math.isnan(clip_grad_norm([np.array([np.nan]), np.array([2.0])], 1.0, math.inf))


def test_clip_grad_value(dtype):
    g = np.array([-3.0, -0.5, 0.0, 0.7, 9.0, np.nan, -np.inf, np.inf, -0.0], dtype=dtype)
    clip_grad_value(g, 1.0)
    np.testing.assert_array_equal(g, np.array([-1.0, -0.5, 0.0, 0.7, 1.0, np.nan, -1.0, 1.0, -0.0], dtype=dtype))
    assert np.signbit(g[-1]) and not np.signbit(g[2])   # -0.0 and 0.0 kept, as np.clip
    big = np.random.default_rng(3).standard_normal(60_000).astype(dtype)
    ref = np.clip(big, -0.5, 0.5)
    clip_grad_value([big], 0.5)
    np.testing.assert_array_equal(big, ref)


def test_grad_stats_values():
    g = np.array([0.0, 0.0, 3.0, -4.0, np.nan, np.inf, 0.0, 1.0])
    s = grad_stats([g[:4].reshape(2, 2), g[4:]])
    assert s == {"size": 8, "l2_norm": math.sqrt(26.0), "max_abs": 4.0, "mean_abs": 8.0 / 6,
                 "frac_zero": 3 / 8, "frac_nonfinite": 2 / 8}
    big = np.random.default_rng(4).standard_normal(100_000).astype(np.float32)
    s = grad_stats(big)
    assert s["l2_norm"] == pytest.approx(np.linalg.norm(big.astype(np.float64)), rel=1e-12)
    assert s["max_abs"] == np.abs(big).max() and s["frac_nonfinite"] == 0.0


def test_count_nonfinite():
    g = np.zeros(70_000)
    g[[5, 40_000]] = [np.nan, -np.inf]
    assert K.count_nonfinite(g) == R.count_nonfinite(g) == 2


@pytest.mark.parametrize("call, name", [
    (lambda: clip_grad_norm(np.zeros(3), -1.0), "max_norm"),
    (lambda: clip_grad_norm(np.zeros(3), 1.0, norm_type=0), "norm_type"),
    (lambda: clip_grad_norm(np.zeros(3, dtype=int), 1.0), "grads"),
    (lambda: clip_grad_value([np.zeros(3), np.zeros((3, 3))[:, 0]], 1.0), r"grads\[1\]"),
    (lambda: clip_grad_value(np.zeros(3), -1.0), "clip_value"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()

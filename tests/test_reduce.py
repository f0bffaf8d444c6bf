"""The fixed-order sums of kernels.reduce against their NumPy twins: bit-identical."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgrad.kernels import reduce as K
from fastgrad.reference import reduce as R


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 41), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_sums_equal_their_twins_bit_for_bit(n, seed, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    assert K.sum_in_order(x) == R.sum_in_order(x)
    assert K.sum_lanes(x) == R.sum_lanes(x)
    assert K.dot_lanes(x, y) == R.dot_lanes(x, y)


def test_lane_order_is_the_documented_one():
    x = np.array([1e16, 1.0, -1e16, 1.0, 3.0])
    # lanes: (1e16 + 3) + 1 and (-1e16) + 1 -> ((1e16 + 3) + 1.0) + (-1e16 + 1.0)
    assert K.sum_lanes(x) == ((1e16 + 3.0) + 1.0) + (-1e16 + 1.0)
    assert np.isnan(K.sum_lanes(np.array([1.0, np.nan, 2.0])))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 700), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]),
       norm_type=st.sampled_from([1.0, 2.0, 3.0]))
def test_wide_lane_power_sums_equal_their_twin_bit_for_bit(n, seed, dtype, norm_type):
    from fastgrad.kernels.grad_utils import power_sum
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype)
    terms = np.abs(x.astype(np.float64))
    terms = terms * terms if norm_type == 2.0 else terms if norm_type == 1.0 else terms ** norm_type
    assert power_sum(x, norm_type) == R.wide_lane_terms(terms)


def test_fold_lanes_adds_the_halves_pairwise():
    acc = np.arange(1.0, R.LANES + 1.0)
    acc[0] = 1e16
    acc[R.LANES // 2] = -1e16
    # 1e16 and -1e16 meet in the first fold, before any small lane is added to them
    expected = float(np.arange(1.0, R.LANES + 1.0).sum() - 1.0 - (R.LANES // 2 + 1.0))
    assert K.fold_lanes(acc.copy()) == R.fold_lanes(acc.copy()) == expected

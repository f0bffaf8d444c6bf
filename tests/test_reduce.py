"""The fixed-order sums of kernels.reduce against their NumPy twins: bit-identical."""
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastgrad.kernels import reduce as K
from fastgrad.reference import reduce as R


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 80), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_sums_equal_their_twins_bit_for_bit(n, seed, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    assert K.sum_in_order(x) == R.sum_in_order(x)
    # rows of a 2-D array, addressed by their offsets: the middle row of three
    x3, y3 = (np.stack([np.roll(v, 1), v, v[::-1]]) for v in (x, y))
    assert K.sum_row(x3, 1) == R.sum_row(x3, 1) == R.sum_row(x[None], 0)
    assert K.dot_row(x3, y3, 1) == R.dot_row(x3, y3, 1)
    assert K.sum_row(x3, 2) == R.sum_row(x3, 2)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 70), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]),
       n_nan=st.integers(0, 3))
def test_row_max_over_lanes(k, seed, dtype, n_nan):
    """kernels.softmax.row_max (``_jit.lane_max``, the last chunk masked): the max of the row's
    non-NaN entries, -inf when there are none; NaN entries anywhere are passed over."""
    from fastgrad.kernels.softmax import row_max
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((3, k)) * 10.0 ** rng.integers(-3, 4, (3, k))).astype(dtype)
    z[1, rng.integers(0, k, n_nan)] = np.nan
    for r in range(3):
        finite = z[r][~np.isnan(z[r])]
        assert row_max(z, r) == (finite.max() if finite.size else -np.inf)


def test_lane_order_is_the_documented_one():
    # 16 lanes (entry j to lane j mod 16), folded upper half onto lower half, then the tail in
    # order: 1e16 (lane 0) and -1e16 (lane 8) cancel in the first fold, before the 1 of lane 1 and
    # the tail's 3 reach them; left to right, the 1 at x[1] is lost against 1e16
    x = np.zeros(35)
    x[0], x[8], x[1], x[33] = 1e16, -1e16, 1.0, 3.0
    rows = np.stack([x[::-1], x])
    assert R.ROW_LANES == 16
    assert K.sum_row(rows, 1) == R.sum_row(rows, 1) == ((1e16 + -1e16) + 1.0) + 3.0 == 4.0
    assert R.sum_in_order(x) == 3.0
    assert K.dot_row(rows, np.ones_like(rows), 1) == 4.0
    for row in ([1.0, np.nan, 2.0], np.r_[np.ones(20), np.nan], np.r_[np.nan, np.ones(20)]):
        assert np.isnan(K.sum_row(np.array([row]), 0))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 700), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]),
       norm_type=st.sampled_from([1.0, 2.0, 3.0]))
@example(n=244, seed=244, dtype=np.float64, norm_type=2.0)  # a fused square-add differed here by an ulp
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

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

"""Dropout: the counter-based generator (known answers, bit-identical twin, reproducible in a
fresh process), the mask's statistics, p = 0 and p = 1, PyTorch's semantics, errors."""
import importlib
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from conftest import vjp_central_diff
from fastgrad.kernels import dropout as K

# ``fastgrad.reference.dropout`` is also the public function of that name: import the module by path.
RK = importlib.import_module("fastgrad.reference.dropout")
INT64 = st.integers(-2**63, 2**63 - 1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_kernels_have_same_named_twins():
    compiled = {name: obj for name, obj in vars(K).items()
                if hasattr(obj, "py_func") and not name.startswith("_") and obj.__module__ == K.__name__}
    assert {"dropout_forward", "dropout_backward", "uniform", "mix64"} <= set(compiled)
    for name, obj in compiled.items():
        twin = getattr(RK, name)
        assert list(inspect.signature(twin).parameters) == list(inspect.signature(obj.py_func).parameters), name


@pytest.mark.parametrize("module", [K, RK], ids=["kernel", "reference"])
def test_splitmix64_known_answers(module):
    """Element i of the stream with key 0 is SplitMix64's (i+1)-th output from state 0
    (Vigna's splitmix64.c: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f)."""
    for i, h in enumerate([0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]):
        assert module.uniform_at(np.uint64(0), i) == (h >> 11) * 2.0 ** -53
    assert int(module.mix64(np.uint64(0))) == 0


@given(seed=INT64, step=INT64, op=INT64, i=st.integers(0, 2**40))
def test_uniform_kernel_equals_reference(seed, step, op, i):
    u = K.uniform(np.int64(seed), np.int64(step), np.int64(op), np.int64(i))
    assert u == RK.uniform(seed, step, op, i)
    assert 0.0 <= u < 1.0


@given(m=st.integers(1, 20), n=st.integers(1, 40), p=st.floats(0.0, 1.0), seed=INT64, step=INT64,
       op=st.integers(-5, 5), data_seed=st.integers(0, 2**31 - 1))
def test_kernel_bit_identical_to_reference(dtype, m, n, p, seed, step, op, data_seed):
    rng = np.random.default_rng(data_seed)
    x = rng.standard_normal((m, n)).astype(dtype)
    keys = (np.float64(p), np.int64(seed), np.int64(step), np.int64(op))
    got, want = np.full_like(x, np.nan), np.full_like(x, np.nan)
    K.dropout_forward(x, got, *keys)
    RK.dropout_forward(x, want, *keys)
    np.testing.assert_array_equal(got, want)
    K.dropout_backward(x, got, *keys)
    RK.dropout_backward(x, want, *keys)
    np.testing.assert_array_equal(got, want)


def _mask(x_shape=(30, 50), dtype=np.float64, **keys):
    return F.dropout(np.ones(x_shape, dtype), 0.5, True, **keys) != 0


def test_mask_reproducible_and_keyed():
    a = _mask(seed=7, step=3)
    np.testing.assert_array_equal(a, _mask(seed=7, step=3))
    np.testing.assert_array_equal(a, _mask(dtype=np.float32, seed=7, step=3))
    assert not np.array_equal(a, _mask(seed=7, step=4))
    assert not np.array_equal(a, _mask(seed=8, step=3))
    x = np.ones((30, 50))
    masks = []
    for op in (0, 1):
        out = np.empty_like(x)
        K.dropout_forward(x, out, np.float64(0.5), np.int64(7), np.int64(3), np.int64(op))
        masks.append(out != 0)
    np.testing.assert_array_equal(masks[0], a)
    assert not np.array_equal(masks[0], masks[1])
    # element (r, j) depends on r * n + j only: a longer array extends the stream
    np.testing.assert_array_equal(_mask((1, 1500), seed=7, step=3).reshape(30, 50), a)


def test_mask_identical_in_a_fresh_single_thread_process():
    code = ("import numpy as np, fastgrad.functional as F; "
            "x = np.arange(1, 601, dtype=np.float32).reshape(20, 30); "
            "print(F.dropout(x, 0.3, True, seed=-12345, step=2**40).tobytes().hex())")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    x = np.arange(1, 601, dtype=np.float32).reshape(20, 30)
    assert out.stdout.strip() == F.dropout(x, 0.3, True, seed=-12345, step=2**40).tobytes().hex()


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_kept_fraction_within_binomial_band(p):
    n = 200 * 100
    for seed in range(3):
        kept = np.count_nonzero(F.dropout(np.ones((200, 100)), p, True, seed=seed))
        assert abs(kept - n * (1 - p)) <= 5 * np.sqrt(n * p * (1 - p))


def test_scaling_p0_p1_and_nan(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 9)).astype(dtype)
    out = F.dropout(x, 0.25, True, seed=1)
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x[kept] * (dtype.type(1) / dtype.type(0.75)))
    np.testing.assert_array_equal(F.dropout(x, 0.0, True), x)
    np.testing.assert_array_equal(F.dropout(x, 0.7, False), x)
    np.testing.assert_array_equal(F.dropout(x, 1.0, True), np.zeros_like(x))
    np.testing.assert_array_equal(F.dropout_backward(x, 1.0), np.zeros_like(x))
    np.testing.assert_array_equal(F.dropout_backward(x, 0.0), x)
    special = np.array([[np.nan, np.inf, -np.inf, 1.0]] * 8, dtype)
    for p in (0.5, 1.0):
        out = F.dropout(special, p, True, seed=2)
        assert np.isnan(out[:, 0]).all()  # NaN * 0 and NaN * scale: NaN, as PyTorch
        assert not (out[:, 1:3] == 0).any()  # a dropped inf gives inf * 0 = NaN, never 0
        assert np.all(np.isnan(out[:, 1:3]) | np.isinf(out[:, 1:3]))


def test_backward_uses_the_forward_mask_and_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6))
    G = rng.standard_normal((4, 6))
    for module in (F, R):
        analytic = module.dropout_backward(G, 0.4, seed=5, step=9)
        fd = vjp_central_diff(lambda v: module.dropout(v, 0.4, True, seed=5, step=9), x, G)
        np.testing.assert_allclose(analytic, fd, rtol=1e-8, atol=1e-9)
        np.testing.assert_array_equal(analytic != 0, F.dropout(x, 0.4, True, seed=5, step=9) != 0)


@given(m=st.integers(1, 10), n=st.integers(1, 10), p=st.floats(0, 1), training=st.booleans(),
       seed=INT64, step=INT64)
def test_functional_matches_reference(dtype, m, n, p, training, seed, step):
    x = np.random.default_rng(abs(seed) % 2**32).standard_normal((m, n)).astype(dtype)
    np.testing.assert_array_equal(F.dropout(x, p, training, seed, step), R.dropout(x, p, training, seed, step))
    np.testing.assert_array_equal(F.dropout_backward(x, p, seed, step), R.dropout_backward(x, p, seed, step))


def test_torch_semantics(dtype):
    """Same scale factor in the same dtype, zeros at p = 1, NaN where a NaN is dropped."""
    torch = pytest.importorskip("torch")
    tdtype = getattr(torch, dtype.name)
    ones = torch.ones(64, 64, dtype=tdtype)
    for p in (0.1, 0.3, 0.77):
        t = torch.nn.functional.dropout(ones, p, training=True).numpy()
        ours = F.dropout(np.ones((64, 64), dtype), p, True)
        assert np.unique(t[t != 0]).tolist() == np.unique(ours[ours != 0]).tolist()
    nan = np.full((8, 8), np.nan, dtype)
    for p in (0.5, 1.0):
        t = torch.nn.functional.dropout(torch.from_numpy(nan), p, training=True).numpy()
        assert np.isnan(t).all() and np.isnan(F.dropout(nan, p, True)).all()
    t1 = torch.nn.functional.dropout(torch.from_numpy(np.ones((3, 3), dtype)), 1.0, training=True).numpy()
    np.testing.assert_array_equal(t1, F.dropout(np.ones((3, 3), dtype), 1.0, True))


def test_errors():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.dropout(np.ones(4))
    with pytest.raises(ValueError, match="grad_out must be 2-D"):
        F.dropout_backward(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="x must not be empty"):
        F.dropout(np.ones((3, 0)))
    for p in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="p must"):
            F.dropout(x, p)
        with pytest.raises(ValueError, match="p must"):
            F.dropout_backward(x, p)
    with pytest.raises(TypeError, match="p must be a real number"):
        F.dropout(x, "0.5")
    with pytest.raises(TypeError, match="seed must be an integer"):
        F.dropout(x, seed=1.5)
    with pytest.raises(ValueError, match="step must fit in a signed 64-bit integer"):
        F.dropout(x, step=2**63)
    with pytest.raises(TypeError, match="training"):
        F.dropout(x, training=1)
    with pytest.raises(TypeError, match="x"):
        F.dropout(np.array([["a"]]))


def test_float16_input():
    x = np.arange(1, 13, dtype=np.float16).reshape(3, 4)
    out = F.dropout(x, 0.5, True, seed=3)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, F.dropout(x.astype(np.float32), 0.5, True, seed=3).astype(np.float16))

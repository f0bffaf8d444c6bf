"""The dense layer: kernels vs references, backward vs finite differences."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from cases import ACTIVATION_CASES, case_id, random_z
from conftest import assert_close, central_diff

CASES = pytest.mark.parametrize("case", ACTIVATION_CASES, ids=[case_id(c) for c in ACTIVATION_CASES])


def _layer(rng, n, n_in, n_out, dtype):
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return x, W, b


@CASES
@given(n=st.integers(1, 40), n_in=st.integers(1, 30), n_out=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_matches_reference(case, dtype, n, n_in, n_out, seed):
    name, options = case
    rng = np.random.default_rng(seed)
    x, W, b = _layer(rng, n, n_in, n_out, dtype)
    y, z = F.dense_forward(x, W, b, name, return_preactivation=True, **options)
    ry, rz = R.dense_forward(x, W, b, name, return_preactivation=True, **options)
    assert y.dtype == dtype and y.shape == (n, n_out)
    assert_close(z, rz, dtype)
    assert_close(y, ry, dtype)
    g = rng.standard_normal((n, n_out)).astype(dtype)
    for got, want in zip(F.dense_backward(x, W, z, g, name, **options),
                         R.dense_backward(x, W, z, g, name, **options)):
        assert got.dtype == dtype
        assert_close(got, want, dtype)


@pytest.mark.parametrize("n,n_in,n_out", [(256, 784, 256), (64, 300, 700)], ids=str)
@pytest.mark.parametrize("activation", ["relu", "tanh", "softmax"])
def test_large_layers_parallel_path(n, n_in, n_out, activation, dtype):
    rng = np.random.default_rng(0)
    x, W, b = _layer(rng, n, n_in, n_out, dtype)
    y, z = F.dense_forward(x, W, b, activation, return_preactivation=True)
    assert_close(y, R.dense_forward(x, W, b, activation), dtype, rtol=1e-4 if dtype == np.float32 else None)
    g = rng.standard_normal(z.shape).astype(dtype)
    for got, want in zip(F.dense_backward(x, W, z, g, activation), R.dense_backward(x, W, z, g, activation)):
        assert_close(got, want, dtype, rtol=1e-4 if dtype == np.float32 else None)


@pytest.mark.parametrize("n,n_out", [(1000, 10), (97, 64), (5, 4096), (3, 1)], ids=str)
@pytest.mark.parametrize("activation", ["relu", "tanh", "log_softmax"])
def test_op_kernels_match_their_twins_over_row_chunks(n, n_out, activation, dtype):
    """The Dense op of the training loop (kernels.dense.dense_layer_forward/backward) against its
    twin: the forward takes rows in chunks of 4096 // n_out (views made by ``_jit.matrix_view`` at
    each chunk's offset), the products take flat views (``_jit.flat_view``); with and without bias."""
    from fastgrad.kernels import activation_layer as KL, activations as KA, dense as KD
    from fastgrad.kernels.slots import ACT_BACKWARD, ACT_FORWARD
    from fastgrad.reference import dense as RD
    rng = np.random.default_rng(n * n_out)
    x, W, b = _layer(rng, n, 7, n_out, dtype)
    code = {"relu": KA.RELU, "tanh": KA.TANH, "log_softmax": KA.LOG_SOFTMAX}[activation]
    g = rng.standard_normal((n, n_out)).astype(dtype)
    zero = np.dtype(dtype).type(0)
    # the kernel takes the activation's compiled functions by address, the twin its code
    acts = {"kernel": (ACT_FORWARD.address(KL.FORWARD[code], dtype), ACT_BACKWARD.address(KL.BACKWARD[code], dtype)),
            "twin": (code, code)}
    for bias in (b, b[:0]):
        out = {}
        for name, mod in (("kernel", KD), ("twin", RD)):
            z, a = np.full((n, n_out), np.nan, dtype), np.full((n, n_out), np.nan, dtype)
            mod.dense_layer_forward(x, W, bias, z, a, acts[name][0], zero, zero, 2)
            delta, grad_x = np.empty_like(z), np.full_like(x, np.nan)
            grad_W, grad_b = np.full_like(W, np.nan), np.full_like(bias, np.nan)
            mod.dense_layer_backward(x, W, z, g, acts[name][1], zero, zero, delta, grad_x, grad_W, grad_b, True, 2)
            out[name] = (z, a, grad_x, grad_W, grad_b)
        for got, want in zip(out["kernel"], out["twin"]):
            assert np.isfinite(got).all()
            assert_close(got, want, dtype, rtol=1e-4 if dtype == np.float32 else None)


@CASES
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_backward_matches_finite_differences(case, module):
    name, options = case
    rng = np.random.default_rng(11)
    x, W, b = _layer(rng, 3, 4, 5, np.float64)
    x = random_z(rng, (3, 4), np.float64)
    G = rng.standard_normal((3, 5))
    W = W + 0.0
    # keep pre-activations away from kinks
    z = x @ W + b
    b = np.where(np.abs(z).min(0) < 1e-2, b + 0.05, b)

    def loss(x_, W_, b_):
        return float(np.sum(module.dense_forward(x_, W_, b_, name, **options) * G))

    _, z = module.dense_forward(x, W, b, name, return_preactivation=True, **options)
    grad_x, grad_W, grad_b = module.dense_backward(x, W, z, G, name, **options)
    for analytic, fd in [(grad_x, central_diff(lambda v: loss(v, W, b), x)),
                         (grad_W, central_diff(lambda v: loss(x, v, b), W)),
                         (grad_b, central_diff(lambda v: loss(x, W, v), b))]:
        assert np.max(np.abs(fd - analytic)) / np.max(np.abs(analytic)) < 1e-6


def test_identity_forward_is_affine():
    x = np.array([[1.0, 2.0]])
    W = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    b = np.array([0.5, -0.5, 0.0])
    np.testing.assert_array_equal(F.dense_forward(x, W, b), [[1.5, 1.5, 4.0]])
    y, z = F.dense_forward(x, W, b, return_preactivation=True)
    assert y is not z

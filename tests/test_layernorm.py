"""Layer normalisation: kernels vs NumPy twins, backward vs finite differences, PyTorch parity, errors."""
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from conftest import assert_close, vjp_central_diff
from fastgrad.kernels import layernorm as K
from fastgrad.reference import layernorm as RK


def _buffers(m, n, dtype, affine):
    """Output arrays pre-filled with NaN, so that a value not written (or accumulated) shows."""
    k = n if affine else 0
    def nan(*shape):
        return np.full(shape, np.nan, dtype=dtype)
    return dict(out=nan(m, n), xhat=nan(m, n), rstd=nan(m), grad_x=nan(m, n), grad_gamma=nan(k), grad_beta=nan(k))


def _run(module, x, gamma, beta, eps, grad_out, need_grad_x):
    b = _buffers(*x.shape, x.dtype, gamma.size > 0)
    module.layer_norm_forward(x, gamma, beta, eps, b["out"], b["xhat"], b["rstd"])
    module.layer_norm_backward(grad_out, b["xhat"], b["rstd"], gamma, b["grad_x"], b["grad_gamma"],
                               b["grad_beta"], need_grad_x)
    return b


def test_kernels_have_same_named_twins():
    compiled = {name: obj for name, obj in vars(K).items()
                if hasattr(obj, "py_func") and not name.startswith("_") and obj.__module__ == K.__name__}
    assert {"layer_norm_forward", "layer_norm_backward", "affine_row"} <= set(compiled)
    for name, obj in compiled.items():
        twin = getattr(RK, name)
        assert list(inspect.signature(twin).parameters) == list(inspect.signature(obj.py_func).parameters), name


@given(m=st.integers(1, 12), n=st.integers(1, 40), affine=st.booleans(), need_grad_x=st.booleans(),
       shift=st.sampled_from([0.0, 5.0, -300.0]), seed=st.integers(0, 2**31 - 1))
def test_kernel_matches_reference(dtype, m, n, affine, need_grad_x, shift, seed):
    rng = np.random.default_rng(seed)
    x = (shift + rng.standard_normal((m, n)) * rng.uniform(0.1, 3.0)).astype(dtype)
    gamma = rng.standard_normal(n if affine else 0).astype(dtype)
    beta = rng.standard_normal(n if affine else 0).astype(dtype)
    grad_out = rng.standard_normal((m, n)).astype(dtype)
    eps = dtype.type(1e-5)
    got = _run(K, x, gamma, beta, eps, grad_out, need_grad_x)
    want = _run(RK, x, gamma, beta, eps, grad_out, need_grad_x)
    for key in ("out", "xhat", "rstd", "grad_gamma", "grad_beta") + (("grad_x",) if need_grad_x else ()):
        assert got[key].dtype == dtype
        assert_close(got[key], want[key], dtype)
    if not need_grad_x:
        assert np.isnan(got["grad_x"]).all()
    if not affine:
        np.testing.assert_array_equal(got["out"], got["xhat"])


def test_known_values():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    out = F.layer_norm(x, eps=0.0)
    mean, std = 3.0, np.sqrt(3.5)
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-15)
    out = F.layer_norm(x, np.array([1.0, 2.0, 0.0, 1.0]), np.array([0.5, 0.0, 0.0, -1.0]), eps=0.0)
    np.testing.assert_allclose(out, (x - mean) / std * [1, 2, 0, 1] + [0.5, 0, 0, -1], rtol=1e-15)


@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
@pytest.mark.parametrize("affine", [True, False])
def test_backward_matches_finite_differences(module, affine):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)) * 2 + 1
    w = rng.standard_normal(5) if affine else None
    b = rng.standard_normal(5) if affine else None
    G = rng.standard_normal((4, 5))
    grad_x, grad_w, grad_b = module.layer_norm_backward(x, G, w, eps=1e-3)
    pairs = [(grad_x, vjp_central_diff(lambda v: module.layer_norm(v, w, b, 1e-3), x, G))]
    if affine:
        pairs += [(grad_w, vjp_central_diff(lambda v: module.layer_norm(x, v, b, 1e-3), w, G)),
                  (grad_b, vjp_central_diff(lambda v: module.layer_norm(x, w, v, 1e-3), b, G))]
    else:
        assert grad_w is None and grad_b is None
    for analytic, fd in pairs:
        assert np.max(np.abs(fd - analytic)) / np.max(np.abs(analytic)) < 1e-7


@given(m=st.integers(1, 10), n=st.integers(1, 20), weight=st.booleans(), bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_functional_matches_reference(dtype, m, n, weight, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n)).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if weight else None
    b = rng.standard_normal(n).astype(dtype) if bias else None
    G = rng.standard_normal((m, n)).astype(dtype)
    assert_close(F.layer_norm(x, w, b), R.layer_norm(x, w, b), dtype)
    got, want = F.layer_norm_backward(x, G, w), R.layer_norm_backward(x, G, w)
    assert (got[1] is None, got[2] is None) == (not weight, not weight)
    for a, e in zip(got, want):
        if e is not None:
            assert a.dtype == dtype
            assert_close(a, e, dtype)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(7, 33), (1, 5), (64, 256)], ids=str)
def test_torch_parity(dtype, affine, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    m, n = shape
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    G = rng.standard_normal(shape).astype(dtype)
    layer = torch.nn.LayerNorm(n, eps=1e-5, elementwise_affine=affine, dtype=getattr(torch, dtype.name))
    w = b = None
    if affine:
        w, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = layer(xt)
    out_t.backward(torch.from_numpy(G))
    assert_close(F.layer_norm(x, w, b), out_t.detach().numpy(), dtype)
    grad_x, grad_w, grad_b = F.layer_norm_backward(x, G, w)
    assert_close(grad_x, xt.grad.numpy(), dtype)
    if affine:
        assert_close(grad_w, layer.weight.grad.numpy(), dtype)
        assert_close(grad_b, layer.bias.grad.numpy(), dtype)


def test_float16_and_integer_input():
    x = np.arange(12, dtype=np.float16).reshape(3, 4)
    out = F.layer_norm(x)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, F.layer_norm(x.astype(np.float32)), rtol=1e-3)
    assert F.layer_norm(np.arange(6).reshape(2, 3)).dtype == np.float64


def test_errors():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.layer_norm(np.ones(4))
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.layer_norm(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="x must not be empty"):
        F.layer_norm(np.ones((0, 4)))
    with pytest.raises(TypeError, match="x"):
        F.layer_norm(np.ones((2, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.layer_norm(x, np.ones(3))
    with pytest.raises(ValueError, match="bias must be 1-D"):
        F.layer_norm(x, np.ones(4), np.ones((4, 1)))
    with pytest.raises(ValueError, match="eps"):
        F.layer_norm(x, eps=-1.0)
    with pytest.raises(TypeError, match="eps"):
        F.layer_norm(x, eps="small")
    with pytest.raises(ValueError, match="grad_out must have the shape of x"):
        F.layer_norm_backward(x, np.ones((4, 3)))

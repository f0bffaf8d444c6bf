"""Batch normalisation: kernels vs NumPy twins, backward vs finite differences, PyTorch parity, errors."""
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from conftest import assert_close, vjp_central_diff
from fastgrad.kernels import batchnorm as K
from fastgrad.reference import batchnorm as RK


def test_kernels_have_same_named_twins():
    compiled = {name: obj for name, obj in vars(K).items()
                if hasattr(obj, "py_func") and not name.startswith("_") and obj.__module__ == K.__name__}
    assert set(compiled) == {"batch_norm_forward", "batch_norm_backward"}
    for name, obj in compiled.items():
        twin = getattr(RK, name)
        assert list(inspect.signature(twin).parameters) == list(inspect.signature(obj.py_func).parameters), name


def _run(module, x, gamma, beta, eps, momentum, rm, rv, batch_stats, update, grad_out, need_grad_x):
    m, n = x.shape
    k = gamma.size
    out, xhat, grad_x = (np.full((m, n), np.nan, x.dtype) for _ in range(3))
    rstd = np.full(n, np.nan, x.dtype)
    grad_gamma, grad_beta = np.full(k, np.nan, x.dtype), np.full(k, np.nan, x.dtype)
    rm, rv = rm.copy(), rv.copy()
    module.batch_norm_forward(x, gamma, beta, eps, momentum, rm, rv, batch_stats, update, out, xhat, rstd)
    module.batch_norm_backward(grad_out, xhat, rstd, gamma, batch_stats, grad_x, grad_gamma, grad_beta, need_grad_x)
    return dict(out=out, xhat=xhat, rstd=rstd, rm=rm, rv=rv, grad_x=grad_x, grad_gamma=grad_gamma,
                grad_beta=grad_beta)


@given(m=st.integers(1, 12), n=st.integers(1, 30), affine=st.booleans(), tracked=st.booleans(),
       batch_stats=st.booleans(), need_grad_x=st.booleans(), shift=st.sampled_from([0.0, -40.0]),
       seed=st.integers(0, 2**31 - 1))
def test_kernel_matches_reference(dtype, m, n, affine, tracked, batch_stats, need_grad_x, shift, seed):
    if not tracked:
        batch_stats = True  # without running statistics only batch statistics exist
    update = batch_stats and tracked and m >= 2
    rng = np.random.default_rng(seed)
    x = (shift + rng.standard_normal((m, n)) * rng.uniform(0.1, 3.0)).astype(dtype)
    k = n if affine else 0
    gamma, beta = rng.standard_normal(k).astype(dtype), rng.standard_normal(k).astype(dtype)
    rm = rng.standard_normal(n if tracked else 0).astype(dtype)
    rv = rng.uniform(0.5, 2.0, n if tracked else 0).astype(dtype)
    grad_out = rng.standard_normal((m, n)).astype(dtype)
    args = (x, gamma, beta, dtype.type(1e-5), np.float64(0.3), rm, rv, batch_stats, update, grad_out, need_grad_x)
    got, want = _run(K, *args), _run(RK, *args)
    for key in ("out", "xhat", "rstd", "rm", "rv", "grad_gamma", "grad_beta") + (("grad_x",) if need_grad_x else ()):
        assert got[key].dtype == dtype
        assert_close(got[key], want[key], dtype)
    if not need_grad_x:
        assert np.isnan(got["grad_x"]).all()
    if tracked and not update:
        np.testing.assert_array_equal(got["rm"], rm)
        np.testing.assert_array_equal(got["rv"], rv)


def test_known_values_and_running_update():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    rm, rv = np.zeros(2), np.ones(2)
    out = F.batch_norm(x, rm, rv, training=True, momentum=0.5, eps=0.0)
    mean, var = np.array([3.0, 12.0]), np.array([8 / 3, 8.0])
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var), rtol=1e-15)
    np.testing.assert_allclose(rm, 0.5 * mean, rtol=1e-15)
    np.testing.assert_allclose(rv, 0.5 + 0.5 * var * 3 / 2, rtol=1e-15)
    out = F.batch_norm(x, rm, rv, np.array([2.0, 1.0]), np.array([0.0, 1.0]), training=False, eps=0.0)
    np.testing.assert_allclose(out, (x - rm) / np.sqrt(rv) * [2, 1] + [0, 1], rtol=1e-15)


@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
@pytest.mark.parametrize("affine", [True, False])
def test_backward_matches_finite_differences(module, training, affine):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3)) * 2 + 1
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    w = rng.standard_normal(3) if affine else None
    b = rng.standard_normal(3) if affine else None
    G = rng.standard_normal((5, 3))

    def f(x_, w_, b_):
        return module.batch_norm(x_, rm.copy(), rv.copy(), w_, b_, training=training, eps=1e-3)

    grad_x, grad_w, grad_b = module.batch_norm_backward(x, G, rm, rv, w, training=training, eps=1e-3)
    pairs = [(grad_x, vjp_central_diff(lambda v: f(v, w, b), x, G))]
    if affine:
        pairs += [(grad_w, vjp_central_diff(lambda v: f(x, v, b), w, G)),
                  (grad_b, vjp_central_diff(lambda v: f(x, w, v), b, G))]
    else:
        assert grad_w is None and grad_b is None
    for analytic, fd in pairs:
        assert np.max(np.abs(fd - analytic)) / np.max(np.abs(analytic)) < 1e-7


@given(m=st.integers(2, 10), n=st.integers(1, 12), weight=st.booleans(), bias=st.booleans(),
       tracked=st.booleans(), training=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_functional_matches_reference(dtype, m, n, weight, bias, tracked, training, seed):
    if not tracked:
        training = True
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n)).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if weight else None
    b = rng.standard_normal(n).astype(dtype) if bias else None
    G = rng.standard_normal((m, n)).astype(dtype)
    rm = rng.standard_normal(n).astype(dtype) if tracked else None
    rv = rng.uniform(0.5, 2, n).astype(dtype) if tracked else None
    stats = [(None, None), (None, None)] if not tracked else [(rm.copy(), rv.copy()), (rm.copy(), rv.copy())]
    assert_close(F.batch_norm(x, *stats[0], w, b, training), R.batch_norm(x, *stats[1], w, b, training), dtype)
    if tracked:
        assert_close(stats[0][0], stats[1][0], dtype)
        assert_close(stats[0][1], stats[1][1], dtype)
    got, want = F.batch_norm_backward(x, G, rm, rv, w, training), R.batch_norm_backward(x, G, rm, rv, w, training)
    assert (got[1] is None, got[2] is None) == (not weight, not weight)
    for a, e in zip(got, want):
        if e is not None:
            assert a.dtype == dtype
            assert_close(a, e, dtype)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_torch_parity_over_several_steps(dtype, affine, track):
    """torch.nn.BatchNorm1d in training mode for three batches (outputs, gradients, running
    statistics), then in evaluation mode (output and gradients)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    n = 9
    layer = torch.nn.BatchNorm1d(n, eps=1e-5, momentum=0.1, affine=affine, track_running_stats=track,
                                 dtype=getattr(torch, dtype.name))
    w = b = None
    if affine:
        w, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    rm = np.zeros(n, dtype) if track else None
    rv = np.ones(n, dtype) if track else None

    def check(training, m):
        x = (rng.standard_normal((m, n)) * 2 + 3).astype(dtype)
        G = rng.standard_normal((m, n)).astype(dtype)
        layer.train(training)
        if affine:
            layer.weight.grad = layer.bias.grad = None
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        out_t = layer(xt)
        out_t.backward(torch.from_numpy(G))
        # the backward first: batch_norm updates the running statistics in place
        grads = F.batch_norm_backward(x, G, rm, rv, w, training=training or not track)
        out = F.batch_norm(x, rm, rv, w, b, training=training or not track, momentum=0.1)
        assert_close(out, out_t.detach().numpy(), dtype)
        assert_close(grads[0], xt.grad.numpy(), dtype)
        if affine:
            assert_close(grads[1], layer.weight.grad.numpy(), dtype)
            assert_close(grads[2], layer.bias.grad.numpy(), dtype)
        if track:
            assert_close(rm, layer.running_mean.numpy(), dtype)
            assert_close(rv, layer.running_var.numpy(), dtype)

    for m in (16, 5, 2):
        check(True, m)
    check(False, 7)


def test_errors():
    x = np.ones((3, 4))
    rm, rv = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.batch_norm(np.ones(4), rm, rv)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(np.ones((1, 4)), rm, rv, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm_backward(np.ones((1, 4)), np.ones((1, 4)), training=True)
    F.batch_norm(np.ones((1, 4)), rm, rv, training=False)  # evaluation needs no batch statistics
    with pytest.raises(ValueError, match=r"running_mean must have shape \(4,\)"):
        F.batch_norm(x, np.zeros(3), rv)
    with pytest.raises(ValueError, match=r"running_var must have shape \(4,\)"):
        F.batch_norm(x, rm, np.ones((4, 1)))
    with pytest.raises(TypeError, match="running_mean must have x's dtype float64"):
        F.batch_norm(x, rm.astype(np.float32), rv, training=True)
    with pytest.raises(TypeError, match="running_var must be a NumPy array"):
        F.batch_norm(x, rm, [1.0] * 4, training=True)
    with pytest.raises(ValueError, match="running_mean must be C-contiguous"):
        F.batch_norm(x, np.zeros(8)[::2], rv, training=True)
    with pytest.raises(ValueError, match="running_mean must be writeable"):
        ro = np.zeros(4)
        ro.flags.writeable = False
        F.batch_norm(x, ro, rv, training=True)
    with pytest.raises(ValueError, match="given together"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(ValueError, match="required when training=False"):
        F.batch_norm(x)
    with pytest.raises(ValueError, match="momentum"):
        F.batch_norm(x, rm, rv, training=True, momentum=1.5)
    with pytest.raises(TypeError, match="momentum"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)
    with pytest.raises(TypeError, match="training"):
        F.batch_norm(x, rm, rv, training="yes")
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, rm, rv, eps=-1e-5)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.batch_norm(x, rm, rv, np.ones(5))
    with pytest.raises(ValueError, match="grad_out must have the shape of x"):
        F.batch_norm_backward(x, np.ones((3, 5)), rm, rv)
    np.testing.assert_array_equal(rm, 0.0)  # nothing above touched the running statistics
    np.testing.assert_array_equal(rv, 1.0)


def test_float16_input_uses_float32_running_statistics():
    x = np.arange(12, dtype=np.float16).reshape(4, 3)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    out = F.batch_norm(x, rm, rv, training=True)
    assert out.dtype == np.float16
    rm32, rv32 = np.zeros(3, np.float32), np.ones(3, np.float32)
    np.testing.assert_allclose(out, F.batch_norm(x.astype(np.float32), rm32, rv32, training=True), rtol=1e-3)
    np.testing.assert_array_equal(rm, rm32)
    np.testing.assert_array_equal(rv, rv32)
    with pytest.raises(TypeError, match="running_mean must have x's dtype float32"):
        F.batch_norm(x, rm.astype(np.float16), rv.astype(np.float16), training=True)

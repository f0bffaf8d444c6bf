"""Optimizers: kernels vs the NumPy references, hand-computed steps, the public classes, bad input.

The table ``CASES`` holds every option combination of the issue; it also drives
tests/test_optim_torch.py (trajectories against torch.optim).
"""
import inspect
import itertools
import tracemalloc

import numpy as np
import pytest

from conftest import assert_close
from fastgrad.kernels import grad_utils as KG
from fastgrad.kernels import optim as K
from fastgrad.kernels import stream as KS
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from fastgrad.reference import grad_utils as RG
from fastgrad.reference import optim as R
from fastgrad.reference import stream as RS

def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def _sgd_cases():
    cases = []
    for kw in _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                    weight_decay=[0.0, 0.05], maximize=[False, True]):
        if kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0):
            continue
        cases.append(dict(kw, lr=0.05))
    return cases


CASES = (
    [(SGD, kw) for kw in _sgd_cases()]
    + [(RMSprop, dict(kw, lr=0.01)) for kw in _grid(momentum=[0.0, 0.5], centered=[False, True],
                                                    weight_decay=[0.0, 0.05], maximize=[False, True])]
    + [(Adagrad, dict(kw, lr=0.1)) for kw in _grid(lr_decay=[0.0, 0.1], initial_accumulator_value=[0.0, 0.5],
                                                   weight_decay=[0.0, 0.05], maximize=[False, True])]
    + [(Adam, dict(kw, lr=0.01)) for kw in _grid(amsgrad=[False, True], weight_decay=[0.0, 0.05],
                                                 maximize=[False, True])]
    + [(AdamW, dict(kw, lr=0.01)) for kw in _grid(amsgrad=[False, True], weight_decay=[0.0, 0.05],
                                                  maximize=[False, True])]
)


def case_id(case):
    cls, kw = case
    return cls.__name__ + "-" + ",".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


def _problem(n, dtype, seed=0, steps=100):
    """Parameters and a sequence of gradients of a noisy quadratic, reproducible."""
    rng = np.random.default_rng(seed)
    params = rng.standard_normal(n).astype(dtype)
    grads = [(0.5 * rng.standard_normal(n) + 0.1 * k / steps).astype(dtype) for k in range(steps)]
    return params, grads


# -- kernels vs references ---------------------------------------------------------------------

def test_every_kernel_has_a_reference_twin():
    for kern, ref in ((K, R), (KG, RG), (KS, RS)):
        compiled = {name for name, obj in vars(kern).items()
                    if hasattr(obj, "py_func") and not name.startswith("_")
                    and obj.py_func.__module__ == kern.__name__}
        assert compiled, kern
        for name in compiled:
            assert hasattr(ref, name), f"{ref.__name__} lacks {name}"
            assert (inspect.signature(getattr(kern, name).py_func).parameters.keys()
                    == inspect.signature(getattr(ref, name)).parameters.keys())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_kernel_trajectory_matches_reference_float64(case):
    cls, kw = case
    code, hyper, _ = cls(**kw).kernel_spec()
    params, grads = _problem(257, np.float64)
    p_ref = params.copy()
    state = K.new_state(code, hyper, params.size, params.dtype)
    s_ref = state.copy()
    for t, g in enumerate(grads, start=1):
        K.optimizer_step(code, params, g, state, hyper, t)
        R.optimizer_step(code, p_ref, g, s_ref, hyper, t)
    assert_close(params, p_ref, rtol=1e-12)
    assert_close(state, s_ref, rtol=1e-12)


@pytest.mark.parametrize("cls", [SGD, RMSprop, Adagrad, Adam, AdamW])
@pytest.mark.parametrize("n", [1, 33, 40_000])
def test_kernel_step_matches_reference_each_dtype(cls, n, dtype):
    """Step by step from identical inputs, on the serial and the parallel path."""
    kw = {SGD: dict(momentum=0.9, nesterov=True, weight_decay=0.01), RMSprop: dict(momentum=0.5, centered=True),
          Adagrad: dict(lr_decay=0.1), Adam: dict(amsgrad=True, weight_decay=0.01), AdamW: {}}[cls]
    code, hyper, _ = cls(**kw).kernel_spec()
    params, grads = _problem(n, dtype, steps=5)
    state = K.new_state(code, hyper, n, dtype)
    for t, g in enumerate(grads, start=1):
        p_ref, s_ref = params.copy(), state.copy()
        K.optimizer_step(code, params, g, state, hyper, t)
        R.optimizer_step(code, p_ref, g, s_ref, hyper, t)
        assert params.dtype == dtype and state.dtype == dtype
        assert_close(params, p_ref, dtype)
        assert_close(state, s_ref, dtype)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
@pytest.mark.parametrize("n", [33, 40_000])
def test_out_of_place_step_equals_in_place_and_leaves_params(case, n):
    """optimizer_step_into writes what optimizer_step writes in place, bit for bit, and leaves
    its input parameters as they were (the epoch loop's rollback depends on both)."""
    cls, kw = case
    code, hyper, _ = cls(**kw).kernel_spec()
    params, grads = _problem(n, np.float64, steps=3)
    state_in, state_out = (K.new_state(code, hyper, n, params.dtype) for _ in range(2))
    p_in, p_out = params.copy(), params.copy()
    s_ref, p_ref = state_out.copy(), params.copy()
    for t, g in enumerate(grads, start=1):
        K.optimizer_step(code, p_in, g, state_in, hyper, t)
        before = p_out.copy()
        out = np.full_like(p_out, np.nan)
        K.optimizer_step_into(code, p_out, g, state_out, hyper, t, out)
        np.testing.assert_array_equal(p_out, before)
        np.testing.assert_array_equal(out, p_in)
        np.testing.assert_array_equal(state_out, state_in)
        p_out = out
        ref_out = np.empty_like(p_ref)
        R.optimizer_step_into(code, p_ref, g, s_ref, hyper, t, ref_out)
        p_ref = ref_out
    assert_close(p_out, p_ref, rtol=1e-12)
    assert_close(state_out, s_ref, rtol=1e-12)


@pytest.mark.parametrize("n", [5, 40_000])
def test_triad_matches_reference(n, dtype):
    b, c = np.arange(n, dtype=dtype), np.linspace(-1, 1, n, dtype=dtype)
    a, a_ref = np.empty_like(b), np.empty_like(b)
    KS.triad(a, b, c, 0.5)
    RS.triad(a_ref, b, c, 0.5)
    np.testing.assert_array_equal(a, a_ref)


def test_slot_counts_follow_the_options():
    for cls, kw in CASES:
        opt = cls(**kw)
        code, hyper, n_slots = opt.kernel_spec()
        if cls is SGD:
            expected = int(kw["momentum"] != 0)
        elif cls is RMSprop:
            expected = 1 + kw["centered"] + (kw["momentum"] > 0)
        else:
            expected = 1 if cls is Adagrad else 2 + kw["amsgrad"]
        assert n_slots == expected == len(opt.slot_names)


# -- one step computed by hand (as scikit-learn's test_stochastic_optimizers) --------------------

P0 = np.array([1.0, -2.0])
G0 = np.array([0.5, 0.25])


def _one_step(opt, state_rows=None, step_count=0):
    params = P0.copy()
    if state_rows is not None:
        opt.state = [np.array(state_rows, dtype=float)]
        opt.step_count = step_count
    opt.step(params, G0.copy())
    return params


def test_sgd_hand_step():
    # first step: buf = g + wd p; nesterov: p - lr (g + mu buf)
    g = G0 + 0.1 * P0
    np.testing.assert_allclose(_one_step(SGD(lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.1)),
                               P0 - 0.5 * (g + 0.9 * g), rtol=1e-15)
    # later step from a known buffer: buf = 0.9 * b + (1 - 0.2) g
    b = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(_one_step(SGD(lr=0.5, momentum=0.9, dampening=0.2), b, 3),
                               P0 - 0.5 * (0.9 * b[0] + 0.8 * G0), rtol=1e-15)


def test_rmsprop_hand_step():
    v0, ga0, b0 = np.array([0.1, 0.2]), np.array([0.05, -0.1]), np.array([0.3, 0.0])
    v = 0.9 * v0 + 0.1 * G0 ** 2
    ga = 0.9 * ga0 + 0.1 * G0
    buf = 0.5 * b0 + G0 / (np.sqrt(v - ga ** 2) + 1e-8)
    got = _one_step(RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True), [v0, ga0, b0], 4)
    np.testing.assert_allclose(got, P0 - 0.01 * buf, rtol=1e-14)


def test_adagrad_hand_step():
    s0 = np.array([1.0, 4.0])
    clr = 0.1 / (1 + 2 * 0.5)  # third step
    s = s0 + G0 ** 2
    got = _one_step(Adagrad(lr=0.1, lr_decay=0.5), [s0], 2)
    np.testing.assert_allclose(got, P0 - clr * G0 / (np.sqrt(s) + 1e-10), rtol=1e-15)
    np.testing.assert_allclose(_one_step(Adagrad(lr=0.1, initial_accumulator_value=3.0)),
                               P0 - 0.1 * G0 / (np.sqrt(3.0 + G0 ** 2) + 1e-10), rtol=1e-15)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_hand_step(amsgrad):
    m0, v0, vmax0 = np.array([0.1, -0.1]), np.array([0.01, 0.2]), np.array([0.02, 0.1])
    t, b1, b2, lr, wd = 3, 0.9, 0.999, 0.01, 0.1
    g = G0 + wd * P0
    m = b1 * m0 + (1 - b1) * g
    v = b2 * v0 + (1 - b2) * g ** 2
    v_hat = np.maximum(vmax0, v) if amsgrad else v
    expected = P0 - lr / (1 - b1 ** t) * m / (np.sqrt(v_hat) / np.sqrt(1 - b2 ** t) + 1e-8)
    rows = [m0, v0, vmax0] if amsgrad else [m0, v0]
    got = _one_step(Adam(lr=lr, weight_decay=wd, amsgrad=amsgrad), rows, t - 1)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_adamw_hand_step():
    lr, wd = 0.01, 0.1
    m = 0.1 * G0
    v = 0.001 * G0 ** 2
    expected = P0 * (1 - lr * wd) - lr / 0.1 * m / (np.sqrt(v) / np.sqrt(0.001) + 1e-8)
    np.testing.assert_allclose(_one_step(AdamW(lr=lr, weight_decay=wd)), expected, rtol=1e-14)
    # first Adam step is lr * sign(g) up to eps
    np.testing.assert_allclose(_one_step(Adam(lr=lr)), P0 - lr * np.sign(G0), rtol=1e-7)


# -- the public classes ------------------------------------------------------------------------

def test_step_on_list_equals_step_on_flat_buffer(dtype):
    rng = np.random.default_rng(1)
    flat = rng.standard_normal(12).astype(dtype)
    views = [flat[:6].reshape(2, 3), flat[6:]]
    flat2 = flat.copy()
    a, b = Adam(lr=0.1, amsgrad=True), Adam(lr=0.1, amsgrad=True)
    for _ in range(5):
        g = rng.standard_normal(12).astype(dtype)
        a.step(views, [g[:6].reshape(2, 3), g[6:]])
        b.step(flat2, g)
    np.testing.assert_array_equal(flat, flat2)
    assert [s.shape for s in a.state] == [(3, 6), (3, 6)] and a.step_count == 5


def test_state_dict_round_trip_is_exact():
    params, grads = _problem(50, np.float64, steps=10)
    a = RMSprop(lr=0.01, momentum=0.5, centered=True)
    for g in grads[:5]:
        a.step(params, g)
    saved = a.state_dict()
    p_saved = params.copy()
    for g in grads[5:]:
        a.step(params, g)
    b = RMSprop(lr=0.5)
    b.load_state_dict(saved)
    assert b.hyperparameters() == a.hyperparameters() and b.step_count == 5
    for g in grads[5:]:
        b.step(p_saved, g)
    np.testing.assert_array_equal(p_saved, params)
    assert saved["state"][0] is not a.state[0]


def test_lr_is_read_every_step():
    opt = SGD(lr=0.1)
    p = np.zeros(3)
    opt.step(p, np.ones(3))
    opt.lr = 0.01
    opt.step(p, np.ones(3))
    np.testing.assert_allclose(p, -0.11)


def test_steps_after_the_first_allocate_nothing():
    params, grads = _problem(100_000, np.float32, steps=4)
    for cls in (SGD, RMSprop, Adagrad, Adam, AdamW):
        opt = cls(**({"momentum": 0.9} if cls is SGD else {}))
        opt.step(params, grads[0])
        tracemalloc.start()
        for g in grads[1:]:
            opt.step(params, g)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 16_384, (cls.__name__, peak)  # one buffer is 400 kB


def test_kernel_spec_drives_a_compiled_loop_like_step():
    """The protocol of fastgrad.optim's docstring gives the same result as ``step``."""
    params, grads = _problem(64, np.float64, steps=6)
    a, b = Adam(lr=0.01, amsgrad=True), Adam(lr=0.01, amsgrad=True)
    p_b = params.copy()
    code, hyper, n_slots = a.kernel_spec()
    state = a._ensure_state([params], hyper)[0]
    assert state.shape == (n_slots, 64)
    for k, g in enumerate(grads, start=1):
        K.optimizer_step(code, params, g, state, hyper, a.step_count + k)
        b.step(p_b, g)
    a.step_count += len(grads)
    np.testing.assert_array_equal(params, p_b)
    np.testing.assert_array_equal(a.state_dict()["state"][0], b.state[0])


def test_skip_nonfinite():
    g = np.array([1.0, np.nan])
    p = np.zeros(2)
    opt = Adam(lr=0.1, skip_nonfinite=True)
    opt.step(p, g)
    assert opt.step_count == 0 and opt.n_skipped == 1 and opt.state is None
    np.testing.assert_array_equal(p, 0.0)
    opt.step(p, np.ones(2))
    assert opt.step_count == 1
    plain = Adam(lr=0.1)  # default: the math is applied, NaN included
    plain.step(p, g)
    assert np.isnan(p[1]) and np.isfinite(p[0])


def test_repr_shows_hyperparameters():
    assert repr(SGD(lr=0.1, momentum=0.9)) == ("SGD(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, "
                                               "weight_decay=0.0, maximize=False)")
    assert "betas=(0.9, 0.999)" in repr(AdamW()) and "weight_decay=0.01" in repr(AdamW())


def test_defaults_are_pytorchs():
    assert SGD().hyperparameters() == dict(lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                                           weight_decay=0.0, maximize=False)
    assert RMSprop().hyperparameters() == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                                               centered=False, maximize=False)
    assert Adagrad().hyperparameters() == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                               initial_accumulator_value=0.0, eps=1e-10, maximize=False)
    assert Adam().hyperparameters() == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                            amsgrad=False, maximize=False)
    assert AdamW().hyperparameters()["weight_decay"] == 1e-2


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kw, name", [
    (SGD, dict(lr=-0.1), "lr"), (SGD, dict(momentum=-0.1), "momentum"),
    (SGD, dict(nesterov=True), "nesterov"), (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    (SGD, dict(weight_decay=-1), "weight_decay"), (RMSprop, dict(eps=0.0), "eps"),
    (RMSprop, dict(alpha=1.5), "alpha"), (Adagrad, dict(lr_decay=-1), "lr_decay"),
    (Adagrad, dict(eps=-1e-10), "eps"), (Adam, dict(betas=(1.0, 0.999)), "betas[0]"),
    (Adam, dict(betas=(0.9, -0.1)), "betas[1]"), (AdamW, dict(eps=0), "eps"),
    (Adam, dict(betas=0.9), "betas"), (Adam, dict(lr=float("nan")), "lr"),
])
def test_bad_hyperparameters_name_the_argument(cls, kw, name):
    with pytest.raises(ValueError, match=rf"^{name.replace('[', '.').replace(']', '.')}"):
        cls(**kw)


def test_negative_lr_set_later_is_rejected():
    opt = Adam()
    with pytest.raises(ValueError, match="^lr"):
        opt.lr = -1.0


@pytest.mark.parametrize("params, grads, name", [
    (np.zeros(3), np.zeros(4), "grads"),
    (np.zeros(3, dtype=np.int64), np.zeros(3), "params"),
    ([np.zeros(3)], [np.zeros(3), np.zeros(3)], "grads"),
    ([np.zeros((2, 2))], [np.zeros(4)], "grads"),
    (np.zeros(3), [np.zeros(3)], "grads"),
    (np.zeros((4, 4))[:, 0], np.zeros(4), "params"),
])
def test_mismatched_or_unsuitable_arrays(params, grads, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        Adam().step(params, grads)


def test_read_only_params():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="^params.*writeable"):
        SGD().step(p, np.zeros(3))


def test_params_that_do_not_match_the_saved_state():
    opt = Adam()
    opt.step(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="saved state"):
        opt.step(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="saved state"):
        opt.step(np.zeros(3, dtype=np.float32), np.ones(3))
    opt.amsgrad = True  # now needs 3 slots
    with pytest.raises(ValueError, match="saved state"):
        opt.step(np.zeros(3), np.ones(3))
    bad = Adam().state_dict() | {"state": [np.zeros((5, 3))]}
    with pytest.raises(ValueError, match="state_dict"):
        Adam().load_state_dict(bad)


# -- state validated whenever it is set (issue 10.1) ---------------------------------------------

@pytest.mark.parametrize("cls, name, value, error", [
    (Adam, "betas", (1.0, 0.999), ValueError), (Adam, "betas", (0.9,), ValueError),
    (AdamW, "betas", (0.9, float("nan")), ValueError), (RMSprop, "alpha", 2, ValueError),
    (SGD, "weight_decay", float("nan"), ValueError), (SGD, "momentum", -0.5, ValueError),
    (SGD, "dampening", 1.5, ValueError), (RMSprop, "eps", 0.0, ValueError), (Adam, "eps", -1e-8, ValueError),
    (Adagrad, "lr_decay", float("inf"), ValueError), (Adagrad, "initial_accumulator_value", -1, ValueError),
    (Adam, "lr", float("inf"), ValueError), (SGD, "lr", "0.1", TypeError),
    (SGD, "maximize", "False", TypeError), (SGD, "nesterov", 1, TypeError), (Adam, "amsgrad", "yes", TypeError),
    (RMSprop, "centered", 1.0, TypeError), (Adagrad, "skip_nonfinite", None, TypeError),
])
def test_hyperparameter_assigned_later_is_validated(cls, name, value, error):
    opt = cls()
    before = getattr(opt, name)
    with pytest.raises(error, match=rf"^{name}"):
        setattr(opt, name, value)
    assert getattr(opt, name) == before  # unchanged by the failed assignment
    p = np.ones(4)
    opt.step(p, np.ones(4))
    assert np.isfinite(p).all()


@pytest.mark.parametrize("cls, kw", [
    (SGD, dict(maximize="False")), (SGD, dict(nesterov="True", momentum=0.9)), (Adam, dict(amsgrad=0)),
    (AdamW, dict(amsgrad="False")), (RMSprop, dict(centered="False")), (Adagrad, dict(maximize=None)),
    (Adam, dict(skip_nonfinite="yes")), (SGD, dict(skip_nonfinite=1)),
])
def test_flags_accept_only_booleans(cls, kw):
    name = next(iter(kw))  # the flag under test comes first
    with pytest.raises(TypeError, match=rf"^{name} must be True or False"):
        cls(**kw)


def test_numpy_bools_are_flags():
    opt = SGD(lr=0.1, maximize=np.bool_(True), momentum=0.9, nesterov=np.True_)
    assert opt.maximize is True and opt.nesterov is True
    p = np.zeros(2)
    opt.step(p, np.ones(2))
    assert (p > 0).all()  # maximize climbs


def test_nesterov_relation_checked_on_assignment_and_restored():
    opt = SGD(momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="^nesterov=True requires"):
        opt.momentum = 0.0
    with pytest.raises(ValueError, match="^nesterov=True requires"):
        opt.dampening = 0.5
    assert (opt.momentum, opt.dampening) == (0.9, 0.0)
    opt.nesterov = False
    opt.dampening = 0.5
    with pytest.raises(ValueError, match="^nesterov=True requires"):
        opt.nesterov = True
    assert opt.nesterov is False


@pytest.mark.parametrize("make, label", [
    (lambda: Adam(lr=1e39), "^lr must be finite in the parameters' dtype float32"),
    (lambda: SGD(lr=0.1, weight_decay=1e39), "^weight_decay must be finite"),
    (lambda: SGD(lr=0.1, momentum=1e39), "^momentum must be finite"),
    (lambda: Adam(lr=1e38, betas=(0.9, 0.999)), r"^lr / \(1 - betas\[0\]\)"),
    (lambda: AdamW(lr=1e20, weight_decay=1e20), r"^lr \* weight_decay"),
    (lambda: RMSprop(eps=1e-50), "^eps must be > 0 in the parameters' dtype float32"),
    (lambda: Adagrad(initial_accumulator_value=1e39), "^initial_accumulator_value must be finite"),
])
def test_hyperparameters_must_fit_the_params_dtype(make, label):
    opt = make()
    p32 = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match=label):
        opt.step(p32, np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(p32, 1.0)
    assert opt.state is None and opt.step_count == 0
    with pytest.raises(ValueError, match=label):  # the compiled loop's entry checks it too
        opt._ensure_state([p32], opt.kernel_spec()[1])
    p64 = np.ones(3)
    opt.step(p64, np.ones(3))  # representable in float64


def test_lr_set_after_construction_is_checked_in_the_dtype():
    opt = SGD(lr=0.1)
    p = np.ones(3, dtype=np.float32)
    opt.step(p, np.ones(3, dtype=np.float32))
    opt.lr = 1e39
    with pytest.raises(ValueError, match="^lr must be finite"):
        opt.step(p, np.ones(3, dtype=np.float32))
    assert np.isfinite(p).all()


@pytest.mark.parametrize("make_args, name", [
    (lambda buf: (buf[:-1], buf[1:]), "grads"),
    (lambda buf: (buf[1:], buf[:-1]), "params"),
    (lambda buf: (buf, buf), "(params|grads)"),
    (lambda buf: ([buf[:4], buf[4:8]], [np.ones(4), buf[5:9]]), "grads.1."),
    (lambda buf: ([buf[:4], buf[2:6]], [np.ones(4), np.ones(4)]), "params.1."),
    (lambda buf: ([buf[:4], buf[:4]], [np.ones(4), np.ones(4)]), "params.1."),
])
def test_overlapping_or_repeated_arrays_are_rejected(make_args, name):
    buf = np.arange(10.0)
    params, grads = make_args(buf)
    before = buf.copy()
    with pytest.raises(ValueError, match=rf"^{name}.* shares memory with"):
        SGD(lr=0.1).step(params, grads)
    np.testing.assert_array_equal(buf, before)


def test_repeated_params_and_grads_as_in_the_issue():
    p, g = np.zeros(3), np.ones(3)
    opt = SGD(lr=0.1)
    with pytest.raises(ValueError, match="shares memory"):
        opt.step([p, p], [g, g])
    np.testing.assert_array_equal(p, 0.0)


def test_gradients_may_share_memory_with_each_other():
    a, b, g = np.zeros(3), np.zeros(3), np.ones(3)
    SGD(lr=0.1).step([a, b], [g, g])
    np.testing.assert_allclose(a, -0.1)
    np.testing.assert_allclose(b, -0.1)
    # a gradient of another dtype is a copy: no sharing
    buf = np.arange(10.0)
    SGD(lr=0.1).step(buf[:5], buf[5:].astype(np.float32))


@pytest.mark.parametrize("bad, error, key", [
    (5, TypeError, "state_dict must be a dict"),
    ({"state": 5}, ValueError, r"state_dict lacks the key\(s\) \['step', 'hyperparameters'\]"),
    ({"step": 0, "state": 5, "hyperparameters": {}}, TypeError, r"state_dict\['state'\] must be None or"),
    ({"step": 0, "state": None, "hyperparameters": 3}, TypeError, r"state_dict\['hyperparameters'\]"),
    ({"step": 0, "state": None, "hyperparameters": {"momentum": 0.9}}, ValueError, "'momentum'"),
    ({"step": 0, "state": None, "hyperparameters": {"betas": (1.0, 0.9)}}, ValueError,
     r"state_dict\['hyperparameters'\]: betas\[0\]"),
    ({"step": 0, "state": None, "hyperparameters": {"amsgrad": "no"}}, TypeError, "amsgrad"),
    ({"step": -1, "state": None, "hyperparameters": {}}, ValueError, r"state_dict\['step'\]"),
    ({"step": 1.5, "state": None, "hyperparameters": {}}, TypeError, r"state_dict\['step'\]"),
    ({"step": 1, "state": None, "hyperparameters": {}, "n_skipped": -2}, ValueError, "n_skipped"),
    ({"step": 1, "state": None, "hyperparameters": {}, "extra": 1}, ValueError, "unknown key.*'extra'"),
    ({"step": 1, "state": [[1.0, 2.0]], "hyperparameters": {}}, TypeError, r"state_dict\['state'\]\[0\]"),
    ({"step": 1, "state": [np.zeros((3, 4))], "hyperparameters": {}}, ValueError,
     r"state_dict\['state'\]\[0\] must have shape \(2, size\)"),
    ({"step": 1, "state": [np.zeros((2, 4), np.int64)], "hyperparameters": {}}, ValueError, "float32 or float64"),
    ({"step": 1, "state": [np.zeros((2, 4)), np.zeros(8)], "hyperparameters": {}}, ValueError,
     r"state_dict\['state'\]\[1\]"),
    ({"step": 1, "state": None, "hyperparameters": {}, "slots": ("a", "b")}, ValueError, "slots"),
])
def test_load_state_dict_names_the_bad_key_and_changes_nothing(bad, error, key):
    opt = Adam(lr=0.5)
    opt.step(np.zeros(4), np.ones(4))
    before = opt.state_dict()
    with pytest.raises(error, match=key):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"] and after["step"] == before["step"]
    np.testing.assert_array_equal(after["state"][0], before["state"][0])


def test_load_state_dict_checks_sizes_at_the_next_step():
    saved = Adam().state_dict() | {"step": 1, "state": [np.zeros((2, 5))]}
    opt = Adam()
    opt.load_state_dict(saved)
    with pytest.raises(ValueError, match="saved state"):
        opt.step(np.zeros(4), np.ones(4))


def test_state_and_counts_assigned_by_hand_are_checked():
    opt = Adam()
    opt.state = "abc"
    with pytest.raises(ValueError, match="state holds str"):
        opt.step(np.zeros(3), np.ones(3))
    opt.state = [np.zeros((2, 3), dtype=np.float32)]
    with pytest.raises(ValueError, match="saved state"):
        opt.step(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="^step_count must be an integer >= 0"):
        opt.step_count = -1
    with pytest.raises(TypeError, match="^n_skipped"):
        opt.n_skipped = 1.5
    assert opt.step_count == 0


# Cases that would reach the kernel with the wrong memory (out-of-bounds writes, races) if a
# check were missing: each runs in its own interpreter, so a crash fails one test.
HOSTILE = {
    "state_too_short": "opt = Adam(); opt.state = [np.zeros((2, 3))]; opt.step(np.zeros(50_000), np.ones(50_000))",
    "state_too_few_rows": "opt = Adam(); opt.state = [np.zeros((1, 100))]; opt.step(np.zeros(100), np.ones(100))",
    "state_not_contiguous": "opt = Adam(); opt.state = [np.zeros((2, 200))[:, ::2]]; opt.step(np.zeros(100), np.ones(100))",
    "state_is_the_params": "p = np.zeros((2, 100)); opt = Adam(); opt.state = [p]; opt.step(p[0], np.ones(100))",
    "loaded_state_too_short": ("opt = Adam(); opt.load_state_dict({'step': 1, 'state': [np.zeros((2, 3))], "
                               "'hyperparameters': {}}); opt.step(np.zeros(50_000), np.ones(50_000))"),
    "overlap_parallel_path": "buf = np.ones(100_001); SGD(momentum=0.9).step(buf[:-1], buf[1:])",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_state_raises_in_a_fresh_process(name):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import numpy as np\nfrom fastgrad.optim import SGD, Adam\n"
            f"try:\n    {HOSTILE[name]}\nexcept (TypeError, ValueError) as exc:\n"
            "    print('raised', type(exc).__name__, exc)\nelse:\n    print('no error')\n")
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("raised ValueError"), out.stdout + out.stderr[-2000:]


def test_checks_skipped_between_steps_still_see_every_change():
    """_ensure_state skips its checks for the same arrays and settings; every change that
    could make the kernel unsafe is still caught at the next step."""
    p = np.zeros(8, np.float32)
    g = np.ones(8, np.float32)
    opt = Adam(lr=1e-3)
    opt.step(p, g)
    opt.step(p, g)                      # checks skipped: same arrays, same settings
    opt.lr = 1e39                       # a hyperparameter set since: overflows float32
    with pytest.raises(ValueError, match="finite in the parameters' dtype float32"):
        opt.step(p, g)
    opt.lr = 1e-3
    opt.step(p, g)
    opt.state[0] = np.zeros((2, 7), np.float32)   # the list mutated in place
    with pytest.raises(ValueError, match="does not match its saved state"):
        opt.step(p, g)
    opt.reset()
    opt.step(p, g)
    opt.state[0].shape = (16,)          # an array reshaped in place
    with pytest.raises(ValueError, match="does not match its saved state"):
        opt.step(p, g)
    opt.reset()
    opt.step(p, g)
    opt.state[0].flags.writeable = False
    with pytest.raises(ValueError, match="does not match its saved state"):
        opt.step(p, g)
    opt.reset()
    opt.step(p, g)
    with pytest.raises(ValueError, match="does not match its saved state"):
        opt.step(p[:4], g[:4])          # other params arrays: checked afresh
    opt.state = [np.zeros((2, 16), np.float32)[:, ::2]]   # a new list: a strided state
    with pytest.raises(ValueError, match="does not match its saved state"):
        opt.step(p, g)
    opt.state = [np.zeros((2, 8), np.float32)]
    opt.step(p, g)
    np.testing.assert_array_less(p, 0.0)  # the steps above that passed did update p

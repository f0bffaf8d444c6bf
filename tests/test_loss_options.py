"""PyTorch's loss options: reduction="none", softmax_cross_entropy's weight and ignore_index, the
BCE losses' weight and pos_weight. Kernels vs references, references and kernels vs finite
differences, both vs PyTorch (skipped without it), invariants, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad.functional as F
import fastgrad.reference as R
from cases import loss_inputs as _inputs
from conftest import assert_close, central_diff

ELEMENTWISE = [("mse", {}), ("mae", {}), ("huber", {"delta": 0.3}), ("binary_cross_entropy", {}),
               ("binary_cross_entropy_with_logits", {})]
ELEMENTWISE_IDS = [name for name, _ in ELEMENTWISE]
shapes = st.tuples(st.integers(1, 40), st.integers(1, 12))


def _rtol(dtype):
    return 1e-11 if dtype == np.float64 else 1e-5


def _bce_options(rng, shape, dtype, kind, logits):
    """weight (and pos_weight with logits) of one broadcastable shape: full, per column, per row, scalar."""
    n, k = shape
    wshape = {"full": (n, k), "column": (k,), "row": (n, 1), "scalar": ()}[kind]
    options = {"weight": rng.uniform(0, 3, wshape).astype(dtype)}
    if logits:
        options["pos_weight"] = rng.uniform(0, 4, wshape[-1:] if kind != "row" else (k,)).astype(dtype)
    return options


def _ce_inputs(rng, n, k, dtype, probs, ignored=0.0):
    logits = (rng.standard_normal((n, k)) * 3).astype(dtype)
    if probs:
        t = rng.uniform(size=(n, k))
        return logits, (t / t.sum(1, keepdims=True)).astype(dtype)
    labels = rng.integers(0, k, n)
    labels[rng.uniform(size=n) < ignored] = -100
    return logits, labels


def _check_pair(got, want, reduction, dtype):
    loss, grad = got
    ref_loss, ref_grad = want
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype and loss.shape == ref_loss.shape
        assert_close(loss, ref_loss, dtype)
    else:
        assert isinstance(loss, float)
        assert loss == pytest.approx(ref_loss, rel=_rtol(dtype), abs=1e-6 if dtype == np.float32 else 1e-12) \
            or (np.isnan(loss) and np.isnan(ref_loss))
    assert grad.dtype == dtype and grad.shape == ref_grad.shape
    assert_close(grad, ref_grad, dtype)


# --- kernels vs references -------------------------------------------------------------------

@pytest.mark.parametrize("case", ELEMENTWISE, ids=ELEMENTWISE_IDS)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_elementwise_none_matches_reference(case, dtype, shape, seed):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(seed), shape, dtype)
    got = getattr(F, name)(pred, target, reduction="none", **options)
    _check_pair(got, getattr(R, name)(pred, target, reduction="none", **options), "none", dtype)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("kind", ["full", "column", "row", "scalar"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_bce_weights_match_reference(name, kind, reduction, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    pred, target = _inputs(name, rng, shape, dtype)
    options = _bce_options(rng, shape, dtype, kind, name.endswith("logits"))
    got = getattr(F, name)(pred, target, reduction=reduction, **options)
    _check_pair(got, getattr(R, name)(pred, target, reduction=reduction, **options), reduction, dtype)


CE_OPTIONS = [{}, {"weight": True}, {"ignored": 0.3}, {"weight": True, "ignored": 0.3},
              {"weight": True, "ignored": 1.0}]


def _ce_case(rng, n, k, dtype, probs, case):
    logits, target = _ce_inputs(rng, n, k, dtype, probs, 0.0 if probs else case.get("ignored", 0.0))
    options = {"weight": rng.uniform(0.1, 3, k).astype(dtype)} if case.get("weight") else {}
    return logits, target, options


@pytest.mark.parametrize("case", CE_OPTIONS, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(n=st.integers(1, 40), k=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_softmax_ce_labels_options_match_reference(case, smoothing, reduction, dtype, n, k, seed):
    logits, labels, options = _ce_case(np.random.default_rng(seed), n, k, dtype, False, case)
    got = F.softmax_cross_entropy(logits, labels, smoothing, reduction, **options)
    _check_pair(got, R.softmax_cross_entropy(logits, labels, smoothing, reduction, **options), reduction, dtype)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(n=st.integers(1, 40), k=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_softmax_ce_probs_weight_matches_reference(smoothing, reduction, dtype, n, k, seed):
    logits, probs, options = _ce_case(np.random.default_rng(seed), n, k, dtype, True, {"weight": True})
    got = F.softmax_cross_entropy(logits, probs, smoothing, reduction, **options)
    _check_pair(got, R.softmax_cross_entropy(logits, probs, smoothing, reduction, **options), reduction, dtype)


def test_parallel_blocks_mix_plain_and_option_paths(dtype):
    """(4096, 10) runs in blocks of 819 rows: only the third holds ignored rows, so the other
    blocks take the plain ce_rows; the results equal the reference's all the same."""
    rng = np.random.default_rng(4)
    logits, labels = _ce_inputs(rng, 4096, 10, dtype, False)
    labels[1700:1720] = -100
    for reduction in ("mean", "sum", "none"):
        got = F.softmax_cross_entropy(logits, labels, 0.1, reduction)
        _check_pair(got, R.softmax_cross_entropy(logits, labels, 0.1, reduction), reduction, dtype)
    weight = rng.uniform(0.5, 2, 10).astype(dtype)
    got = F.softmax_cross_entropy(logits, labels, 0.1, weight=weight)
    _check_pair(got, R.softmax_cross_entropy(logits, labels, 0.1, weight=weight), "mean", dtype)
    assert np.all(got[1][1700:1720] == 0)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_parallel_path_with_options(case, dtype):
    name, options = case
    rng = np.random.default_rng(0)
    pred, target = _inputs(name, rng, (300, 400), dtype)
    if name.startswith("binary"):
        options = _bce_options(rng, (300, 400), dtype, "column", name.endswith("logits"))
    for reduction in ("mean", "none"):
        got = getattr(F, name)(pred, target, reduction=reduction, **options)
        _check_pair(got, getattr(R, name)(pred, target, reduction=reduction, **options), reduction, dtype)


def test_options_do_not_depend_on_thread_count():
    from fastgrad._jit import get_numba_threads, set_numba_threads
    rng = np.random.default_rng(8)
    logits, labels = _ce_inputs(rng, 4096, 10, np.float32, False, ignored=0.1)
    weight = rng.uniform(0.5, 2, 10).astype(np.float32)
    pred, target = _inputs("binary_cross_entropy_with_logits", rng, (300, 400), np.float32)
    bce = _bce_options(rng, (300, 400), np.float32, "column", True)
    before = get_numba_threads()
    results = []
    try:
        for threads in (1, before):
            set_numba_threads(threads)
            results.append((F.softmax_cross_entropy(logits, labels, 0.1, weight=weight),
                            F.softmax_cross_entropy(logits, labels, reduction="none"),
                            F.binary_cross_entropy_with_logits(pred, target, **bce)))
    finally:
        set_numba_threads(before)
    for (l1, g1), (l2, g2) in zip(*results):
        np.testing.assert_array_equal(l1, l2)
        np.testing.assert_array_equal(g1, g2)


# --- gradients vs central differences (float64) ---------------------------------------------

def _fd_check(fn, x, reduction):
    """grad (of the mean/sum, or of the sum of the "none" losses) vs central differences."""
    def total(z):
        loss = fn(z)[0]
        return float(np.sum(loss)) if reduction == "none" else loss
    fd = central_diff(total, x)
    grad = fn(x)[1]
    assert np.max(np.abs(fd - grad)) / np.max(np.abs(grad)) < 1e-6


@pytest.mark.parametrize("case", ELEMENTWISE, ids=ELEMENTWISE_IDS)
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_elementwise_none_grad_is_grad_of_sum(case, module):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(5), (4, 3), np.float64)
    _fd_check(lambda p: getattr(module, name)(p, target, reduction="none", **options), pred, "none")


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_bce_weights_grad_matches_finite_differences(name, reduction, module):
    rng = np.random.default_rng(6)
    pred, target = _inputs(name, rng, (4, 3), np.float64)
    options = _bce_options(rng, (4, 3), np.float64, "column", name.endswith("logits"))
    _fd_check(lambda p: getattr(module, name)(p, target, reduction=reduction, **options), pred, reduction)


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("module", [F, R], ids=["kernel", "reference"])
def test_softmax_ce_options_grad_matches_finite_differences(probs, smoothing, reduction, module):
    rng = np.random.default_rng(9)
    logits, target = _ce_inputs(rng, 5, 4, np.float64, probs)
    if not probs:
        target[[1, 3]] = -100
    weight = rng.uniform(0.2, 3, 4)
    _fd_check(lambda z: module.softmax_cross_entropy(z, target, smoothing, reduction, weight=weight),
              logits, reduction)


# --- invariants with known values ------------------------------------------------------------

@pytest.mark.parametrize("case", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_none_sums_to_sum_and_keeps_the_gradient(case, dtype):
    name, options = case
    pred, target = _inputs(name, np.random.default_rng(2), (7, 5), dtype)
    fn = getattr(F, name)
    losses, grad_none = fn(pred, target, reduction="none", **options)
    total, grad_sum = fn(pred, target, reduction="sum", **options)
    assert losses.shape == pred.shape and losses.dtype == dtype
    assert float(np.sum(losses, dtype=np.float64)) == pytest.approx(total, rel=_rtol(dtype))
    np.testing.assert_array_equal(grad_none, grad_sum)
    mean, _ = fn(pred, target, **options)
    assert mean == pytest.approx(total / pred.size, rel=_rtol(dtype))


def test_known_values():
    losses, grad = F.mse(np.array([1.0, 2.0]), np.zeros(2), reduction="none")
    assert losses.tolist() == [1.0, 4.0] and grad.tolist() == [2.0, 4.0]
    # two rows of zero logits: each row's loss is log 2, weighted 1 and 3
    z = np.zeros((2, 2))
    loss, grad = F.softmax_cross_entropy(z, np.array([0, 1]), weight=np.array([1.0, 3.0]))
    assert loss == pytest.approx(np.log(2), rel=1e-15)  # (1 log 2 + 3 log 2) / (1 + 3)
    np.testing.assert_allclose(grad, [[-0.125, 0.125], [0.375, -0.375]], rtol=1e-15)
    losses, _ = F.softmax_cross_entropy(z, np.array([0, 1]), weight=np.array([1.0, 3.0]), reduction="none")
    np.testing.assert_allclose(losses, [np.log(2), 3 * np.log(2)], rtol=1e-15)
    # the ignored row counts nowhere: mean over the one row left
    loss, grad = F.softmax_cross_entropy(np.array([[0.0, 0.0], [5.0, -5.0]]), np.array([1, -100]))
    assert loss == pytest.approx(np.log(2), rel=1e-15) and grad[1].tolist() == [0.0, 0.0]
    # pos_weight 3 on a logit 0: 3 t log 2 + (1 - t) log 2
    losses, grad = F.binary_cross_entropy_with_logits(np.zeros(2), np.array([1.0, 0.0]), reduction="none",
                                                      pos_weight=np.array(3.0))
    np.testing.assert_allclose(losses, [3 * np.log(2), np.log(2)], rtol=1e-15)
    np.testing.assert_allclose(grad, [-1.5, 0.5], rtol=1e-15)


def test_ignored_rows_equal_dropped_rows(dtype):
    rng = np.random.default_rng(11)
    logits, labels = _ce_inputs(rng, 30, 6, dtype, False, ignored=0.4)
    kept = labels != -100
    weight = rng.uniform(0.5, 2, 6).astype(dtype)
    for options in ({}, {"weight": weight}, {"label_smoothing": 0.1, "weight": weight}):
        loss, grad = F.softmax_cross_entropy(logits, labels, **options)
        loss_kept, grad_kept = F.softmax_cross_entropy(logits[kept], labels[kept], **options)
        assert loss == pytest.approx(loss_kept, rel=_rtol(dtype))
        assert_close(grad[kept], grad_kept, dtype)
        assert np.all(grad[~kept] == 0)


def test_integer_class_weights_equal_repeated_rows():
    rng = np.random.default_rng(12)
    logits, labels = _ce_inputs(rng, 12, 4, np.float64, False)
    weight = np.array([1.0, 2.0, 3.0, 0.0])
    repeats = weight[labels].astype(int)
    for reduction in ("sum", "mean"):
        loss, grad = F.softmax_cross_entropy(logits, labels, reduction=reduction, weight=weight)
        loss_rep, grad_rep = F.softmax_cross_entropy(np.repeat(logits, repeats, axis=0), np.repeat(labels, repeats),
                                                     reduction=reduction)
        assert loss == pytest.approx(loss_rep, rel=1e-13)
        # a row repeated r times gets r times one copy's gradient
        starts = np.concatenate([[0], np.cumsum(repeats)[:-1]])
        np.testing.assert_allclose(grad[repeats > 0], repeats[repeats > 0, None] * grad_rep[starts[repeats > 0]],
                                   rtol=1e-12, atol=1e-15)
        assert np.all(grad[repeats == 0] == 0)


def test_unit_weights_are_bit_identical_with_labels(dtype):
    """Without label smoothing, weight=ones takes the weighted rows and gives the plain path's bits."""
    logits, labels = _ce_inputs(np.random.default_rng(13), 50, 7, dtype, False)
    plain = F.softmax_cross_entropy(logits, labels)
    weighted = F.softmax_cross_entropy(logits, labels, weight=np.ones(7, dtype))
    assert plain[0] == weighted[0]
    np.testing.assert_array_equal(plain[1], weighted[1])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_rows_bits_do_not_depend_on_the_path_its_block_takes(dtype, smoothing):
    """Labels without class weights: a block holding an ignored row, or asked for reduction="none",
    takes the options path; each kept row's loss and gradient there are the plain path's bits
    (the options path summed the smoothed q of a row instead of taking 1, and the loss's terms in
    another order: float64 gradients moved by 1e-16, and an ignored row changed other rows)."""
    logits, labels = _ce_inputs(np.random.default_rng(14), 40, 7, dtype, False)
    plain_loss, plain = F.softmax_cross_entropy(logits, labels, label_smoothing=smoothing, reduction="sum")
    row_losses, none = F.softmax_cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
    np.testing.assert_array_equal(none, plain)
    for r in (0, 17, 39):
        one, _ = F.softmax_cross_entropy(logits[r:r + 1], labels[r:r + 1], label_smoothing=smoothing, reduction="sum")
        assert row_losses[r] == np.asarray(one, dtype)
    with_ignored = np.insert(labels, [3, 20], -100)
    loss, grad = F.softmax_cross_entropy(np.insert(logits, [3, 20], 5.0, axis=0), with_ignored,
                                         label_smoothing=smoothing, reduction="sum")
    assert loss == plain_loss
    np.testing.assert_array_equal(grad[with_ignored != -100], plain)


def test_one_class_with_label_smoothing_has_zero_gradient(dtype):
    """One class: q = (1 - ls) + ls / 1 = 1 and softmax = 1, so the gradient is exactly 0 (float32
    gave 2.2e-8: ls / k was float64 against a float32 1 - ls)."""
    z = np.array([[0.0], [3.0], [-2.0]], dtype)
    for reduction in ("mean", "sum", "none"):
        loss, grad = F.softmax_cross_entropy(z, np.zeros(3, np.int64), label_smoothing=0.1, reduction=reduction)
        np.testing.assert_array_equal(grad, 0)
        np.testing.assert_array_equal(loss, 0)


def test_all_rows_ignored_give_nan_mean_and_zero_gradient(dtype):
    logits, labels = np.ones((3, 4), dtype), np.full(3, -100)
    for options in ({}, {"weight": np.ones(4)}, {"label_smoothing": 0.2}):
        loss, grad = F.softmax_cross_entropy(logits, labels, **options)
        assert np.isnan(loss) and grad.dtype == dtype and np.all(grad == 0)
        loss, grad = F.softmax_cross_entropy(logits, labels, reduction="sum", **options)
        assert loss == 0.0 and np.all(grad == 0)
        losses, grad = F.softmax_cross_entropy(logits, labels, reduction="none", **options)
        assert losses.tolist() == [0.0, 0.0, 0.0] and np.all(grad == 0)


def test_ignore_index_may_be_a_class():
    logits = np.random.default_rng(14).standard_normal((4, 3))
    loss, grad = F.softmax_cross_entropy(logits, np.array([0, 2, 2, 1]), ignore_index=2)
    want, want_grad = F.softmax_cross_entropy(logits[[0, 3]], np.array([0, 1]))
    assert loss == pytest.approx(want, rel=1e-14)
    np.testing.assert_allclose(grad[[0, 3]], want_grad, rtol=1e-14)
    assert np.all(grad[1:3] == 0)


def test_none_dtypes_and_shapes():
    z16 = np.array([[-1.5, 0.0], [0.7, 3.0]], np.float16)
    losses, grad = F.softmax_cross_entropy(z16, np.array([0, 1]), reduction="none")
    assert losses.dtype == grad.dtype == np.float16 and losses.shape == (2,)
    want = F.softmax_cross_entropy(z16.astype(np.float32), np.array([0, 1]), reduction="none")[0]
    np.testing.assert_array_equal(losses, want.astype(np.float16))
    losses, grad = F.mse(z16, np.zeros_like(z16), reduction="none")
    assert losses.dtype == np.float16 and losses.shape == (2, 2)
    losses, grad = F.huber(np.array(0.25), np.array(1.0), reduction="none")
    assert losses.shape == () and grad.shape == () and losses == pytest.approx(0.5 * 0.75**2)


def test_nan_propagates_with_options():
    logits = np.array([[np.nan, 1.0], [0.0, 1.0], [np.nan, 0.0]])
    losses, grad = F.softmax_cross_entropy(logits, np.array([0, 1, -100]), reduction="none",
                                           weight=np.array([1.0, 2.0]))
    assert np.isnan(losses[0]) and np.all(np.isnan(grad[0]))
    assert np.isfinite(losses[1]) and np.all(np.isfinite(grad[1]))
    assert losses[2] == 0 and np.all(grad[2] == 0)  # an ignored row is not read (as in torch)
    losses, grad = F.binary_cross_entropy_with_logits(np.array([np.nan, 1.0]), np.array([1.0, 0.0]),
                                                      reduction="none", pos_weight=np.array([2.0, 2.0]))
    assert np.isnan(losses[0]) and np.isnan(grad[0]) and np.isfinite(losses[1]) and np.isfinite(grad[1])


@pytest.mark.parametrize("x,t,expected", [(np.inf, 1.0, 0.0), (-np.inf, 0.0, 0.0), (-np.inf, 1.0, np.inf),
                                          (np.inf, 0.0, np.inf), (-1e4, 1.0, 2e4)])
def test_pos_weight_extremes(x, t, expected, dtype):
    losses, grad = F.binary_cross_entropy_with_logits(np.array([x], dtype), np.array([t], dtype),
                                                      reduction="none", pos_weight=np.array([2.0]))
    assert losses[0] == pytest.approx(expected, rel=1e-6) and np.all(np.isfinite(grad))


# --- PyTorch parity ----------------------------------------------------------------------------

def _torch_elementwise(name, pred, target, reduction, options):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = torch.tensor(pred, requires_grad=True)
    kwargs = {key: torch.tensor(value) for key, value in options.items() if key in ("weight", "pos_weight")}
    fn = {"mse": tF.mse_loss, "mae": tF.l1_loss, "huber": tF.huber_loss, "binary_cross_entropy": tF.binary_cross_entropy,
          "binary_cross_entropy_with_logits": tF.binary_cross_entropy_with_logits}[name]
    if name == "huber":
        kwargs["delta"] = options["delta"]
    out = fn(x, torch.tensor(target), reduction=reduction, **kwargs)
    out.sum().backward()
    loss = out.detach().numpy()
    return (loss if reduction == "none" else float(loss)), x.grad.numpy()


TORCH_ELEMENTWISE = [(name, options, False) for name, options in ELEMENTWISE] + [
    ("binary_cross_entropy", {}, True), ("binary_cross_entropy_with_logits", {}, True)]  # weight, pos_weight


@pytest.mark.parametrize("name,options,weighted", TORCH_ELEMENTWISE,
                         ids=[name + ("-weighted" if w else "") for name, _, w in TORCH_ELEMENTWISE])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_matches_torch(name, options, weighted, reduction, dtype):
    rng = np.random.default_rng(21)
    pred, target = _inputs(name, rng, (6, 5), dtype)
    if weighted:
        options = _bce_options(rng, (6, 5), dtype, "column", name.endswith("logits"))
    want = _torch_elementwise(name, pred, target, reduction, options)
    _check_pair(getattr(F, name)(pred, target, reduction=reduction, **options), want, reduction, dtype)


def _torch_ce(logits, target, smoothing, reduction, options):
    torch = pytest.importorskip("torch")
    z = torch.tensor(logits, requires_grad=True)
    kwargs = {"weight": torch.tensor(options["weight"])} if "weight" in options else {}
    if "ignore_index" in options:
        kwargs["ignore_index"] = options["ignore_index"]
    out = torch.nn.functional.cross_entropy(z, torch.tensor(target), label_smoothing=smoothing,
                                            reduction=reduction, **kwargs)
    out.sum().backward()
    loss = out.detach().numpy()
    return (loss if reduction == "none" else float(loss)), z.grad.numpy()


TORCH_CE = [{}, {"ignored": 0.3}, {"ignored": 1.0}, {"weight": True}, {"weight": True, "ignored": 0.3},
            {"weight": True, "ignored": 1.0}]


@pytest.mark.parametrize("case", TORCH_CE, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_ce_labels_match_torch(case, smoothing, reduction, dtype):
    logits, labels, options = _ce_case(np.random.default_rng(22), 9, 5, dtype, False, case)
    got = F.softmax_cross_entropy(logits, labels, smoothing, reduction, **options)
    want = _torch_ce(logits, labels, smoothing, reduction, options)
    if case.get("ignored") == 1.0 and reduction == "mean":
        assert np.isnan(want[0]) and np.isnan(got[0])
    _check_pair(got, want, reduction, dtype)


@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_ce_probs_weight_match_torch(smoothing, reduction, dtype):
    logits, probs, options = _ce_case(np.random.default_rng(23), 9, 5, dtype, True, {"weight": True})
    got = F.softmax_cross_entropy(logits, probs, smoothing, reduction, **options)
    _check_pair(got, _torch_ce(logits, probs, smoothing, reduction, options), reduction, dtype)


def test_softmax_ce_ignore_index_class_and_zero_weights_match_torch():
    """ignore_index naming a class; class weights summing to 0 over the rows kept (torch: NaN
    loss, NaN gradient in those rows, 0 in the ignored ones); NaN logits in an ignored row."""
    rng = np.random.default_rng(24)
    logits = rng.standard_normal((6, 4))
    labels = np.array([0, 2, 1, 2, 3, 0])
    for smoothing in (0.0, 0.2):
        options = {"ignore_index": 2}
        _check_pair(F.softmax_cross_entropy(logits, labels, smoothing, **options),
                    _torch_ce(logits, labels, smoothing, "mean", options), "mean", np.float64)
        options = {"ignore_index": 2, "weight": np.array([0.0, 0.0, 1.0, 0.0])}
        loss, grad = F.softmax_cross_entropy(logits, labels, smoothing, **options)
        want_loss, want_grad = _torch_ce(logits, labels, smoothing, "mean", options)
        assert np.isnan(loss) and np.isnan(want_loss)
        np.testing.assert_array_equal(np.isnan(grad), np.isnan(want_grad))
        np.testing.assert_array_equal(grad[labels == 2], want_grad[labels == 2])
    # NaN logits in an ignored row: the same loss as torch, whose gradient there is NaN (its
    # log_softmax backward multiplies the row's zero gradient by exp(NaN)); fastgrad never reads
    # an ignored row, whose gradient stays 0
    nan_row = logits.copy()
    nan_row[1] = np.nan
    for smoothing in (0.0, 0.2):
        loss, grad = F.softmax_cross_entropy(nan_row, labels, smoothing, ignore_index=2)
        want_loss, want_grad = _torch_ce(nan_row, labels, smoothing, "mean", {"ignore_index": 2})
        assert loss == pytest.approx(want_loss, rel=1e-12)
        assert np.all(grad[1] == 0) and np.all(np.isnan(want_grad[1]))
        rest = labels != 2
        np.testing.assert_allclose(grad[rest], want_grad[rest], rtol=1e-12, atol=1e-15)


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weight,error,match", [
    (np.ones(3), ValueError, r"weight must have shape \(4,\).*got \(3,\)"),
    (np.ones((1, 4)), ValueError, "weight must be 1-D"),
    (np.array([1.0, -1.0, 1.0, 1.0]), ValueError, "weight must be >= 0, got a minimum of -1"),
    (np.array([1.0, np.nan, 1.0, 1.0]), ValueError, "weight must be finite, got nan"),
    (np.array([1.0, np.inf, 1.0, 1.0]), ValueError, "weight must be finite, got inf"),
    (np.ones(4, dtype=complex), TypeError, "weight must hold real numbers"),
    ("balanced", TypeError, "weight must be a float array"),
])
def test_softmax_ce_weight_errors(weight, error, match):
    with pytest.raises(error, match=match):
        F.softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 1, 2]), weight=weight)


@pytest.mark.parametrize("ignore_index,error,match", [
    (1.0, TypeError, "ignore_index must be an integer, got float 1.0"),
    (True, TypeError, "ignore_index must be an integer, got bool"),
    ("-100", TypeError, "ignore_index must be an integer"),
    (2**70, ValueError, "ignore_index must fit in int64"),
])
def test_ignore_index_errors(ignore_index, error, match):
    with pytest.raises(error, match=match):
        F.softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 1, 2]), ignore_index=ignore_index)


def test_labels_outside_range_still_raise_with_ignore_index():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) or equal ignore_index \(-100\), "
                                         r"got values in \[-1, -1\]"):
        F.softmax_cross_entropy(logits, np.array([0, -1, -100]))
    with pytest.raises(ValueError, match=r"or equal ignore_index \(-1\), got values in \[4, 4\]"):
        F.softmax_cross_entropy(logits, np.array([4, -1, 0]), ignore_index=-1)
    with pytest.raises(ValueError, match=r"ignore_index applies to integer labels only"):
        F.softmax_cross_entropy(logits, np.full((3, 4), 0.25), ignore_index=0)
    # a negative ignore_index cannot match a class: accepted and unused with probabilities, as in torch
    assert F.softmax_cross_entropy(logits, np.full((3, 4), 0.25))[0] == pytest.approx(np.log(4))


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                                  "softmax_cross_entropy"])
def test_reduction_errors_list_the_choices(name):
    args = (np.zeros((2, 2)), np.array([0, 1])) if name == "softmax_cross_entropy" else (np.full(2, 0.5), np.full(2, 0.5))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'; got 'avg'"):
        getattr(F, name)(*args, reduction="avg")


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("option", ["weight", "pos_weight"])
def test_bce_weight_errors(name, option):
    if option == "pos_weight" and name == "binary_cross_entropy":
        with pytest.raises(TypeError, match="pos_weight"):
            F.binary_cross_entropy(np.full((2, 3), 0.5), np.full((2, 3), 0.5), pos_weight=np.ones(3))
        return
    fn = getattr(F, name)
    p = np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=rf"{option} must broadcast to the shape of \w+ \(2, 3\), got shape \(2,\)"):
        fn(p, p, **{option: np.ones(2)})
    with pytest.raises(ValueError, match=rf"{option} must broadcast .* got shape \(4, 2, 3\)"):
        fn(p, p, **{option: np.ones((4, 2, 3))})
    with pytest.raises(ValueError, match=rf"{option} must be >= 0"):
        fn(p, p, **{option: np.array([1.0, -0.5, 1.0])})
    with pytest.raises(ValueError, match=rf"{option} must be finite"):
        fn(p, p, **{option: np.array([1.0, np.inf, 1.0])})
    with pytest.raises(TypeError, match=option):
        fn(p, p, **{option: np.ones(3, dtype=complex)})


def test_new_options_are_keyword_only():
    """torch's positional order (weight third) would land on label_smoothing/eps here: refused."""
    with pytest.raises(TypeError):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), 0.0, "mean", np.ones(3))
    with pytest.raises(TypeError, match="label_smoothing must be a real number"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), np.ones(3))

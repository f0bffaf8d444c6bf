"""Package-level promises: lazy compilation, the reference twins, warmup, thread policy."""
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastgrad
import fastgrad.functional as F
import fastgrad.reference as R


def test_every_public_function_has_a_reference_twin():
    public = {name for name in F.__all__ if callable(getattr(F, name)) and not name.isupper()}
    public.discard("activation_spec")
    assert public == set(R.__all__)


def test_kernel_files_have_reference_files():
    import pathlib
    kernels = {p.stem for p in pathlib.Path(fastgrad.__file__).parent.joinpath("kernels").glob("*.py")}
    references = {p.stem for p in pathlib.Path(fastgrad.__file__).parent.joinpath("reference").glob("*.py")}
    # softmax's twins are in reference.activations; util holds block helpers only;
    # testfunctions' NumPy twins are the public fastgrad.testfunctions; program holds the
    # program's constants and named tuples (nothing compiled), which both training paths import;
    # slots and dispatch say which compiled kernels the loop calls by address (nothing compiled);
    # ops' op kinds are twinned by reference.train's _op_forward/_op_backward
    missing = kernels - references - {"__init__", "util", "softmax", "testfunctions", "program", "slots", "dispatch",
                                      "ops"}
    assert not missing, f"kernel files without a reference twin: {sorted(missing)}"


@pytest.mark.parametrize("module", ["optim", "grad_utils", "train", "finite_diff", "stream", "mathfns",
                                    "activation_layer", "residual", "layernorm", "batchnorm", "dropout"])
def test_kernel_modules_called_by_compiled_code_have_same_named_twins(module):
    """Kernels other compiled code calls directly are twinned one to one, by name and signature.
    (The functional kernels are twinned at the public level: fastgrad.functional vs reference.)"""
    import importlib
    import inspect
    kernels = importlib.import_module(f"fastgrad.kernels.{module}")
    reference = importlib.import_module(f"fastgrad.reference.{module}")
    compiled = {name: obj for name, obj in vars(kernels).items()
                if hasattr(obj, "py_func") and not name.startswith("_") and obj.__module__ == kernels.__name__}
    assert compiled
    for name, obj in compiled.items():
        twin = getattr(reference, name, None)
        assert callable(twin), f"fastgrad.reference.{module} lacks {name}"
        assert list(inspect.signature(twin).parameters) == list(inspect.signature(obj.py_func).parameters), name


def test_dense_op_kernels_have_same_named_twins():
    """kernels/dense.py's functional kernels are twinned at the public level; its two op kernels,
    which the training loop calls, one to one."""
    import inspect
    from fastgrad.kernels import dense as K
    from fastgrad.reference import dense as R
    for name in ("dense_layer_forward", "dense_layer_backward"):
        assert list(inspect.signature(getattr(R, name)).parameters) == \
            list(inspect.signature(getattr(K, name).py_func).parameters), name


def test_import_compiles_nothing_and_loads_nothing_heavy():
    """`import fastgrad` stays fast (~0.6 s here, mostly Numba) because it compiles no kernel and
    defers the slow imports; checked by what it loads, not by a timing."""
    code = ("import sys, fastgrad; from fastgrad.kernels import activations as a, train; "
            "heavy = [m for m in ('scipy.linalg', 'scipy.special', 'tqdm', 'threadpoolctl', 'sklearn', 'torch') "
            "if m in sys.modules]; "
            "print(len(a.activation_forward.signatures) + len(train.train_epoch.signatures), ','.join(heavy) or '-')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0", "import fastgrad compiled a kernel"
    assert out[1] == "-", f"import fastgrad imported {out[1]}"


def test_warmup_reports_each_kernel():
    times = fastgrad.warmup(dtypes=("float32", "float64"), families=["activations", "dense"])
    assert "dense.dense_forward[float64]" in times and "activations.softmax_backward[float32]" in times
    assert all(t >= 0 for t in times.values())
    with pytest.raises(ValueError, match="families"):
        fastgrad.warmup(families=["nope"])
    with pytest.raises(ValueError, match="dtypes"):
        fastgrad.warmup(dtypes=("int32",))
    # one name alone, as the command line's --dtype takes it, is one name, not its letters
    assert set(fastgrad.warmup(dtypes="float64", families="dense")) == {"dense.dense_forward[float64]",
                                                                     "dense.dense_backward[float64]"}


def test_import_with_numbas_compiler_off_says_what_to_do():
    """NUMBA_DISABLE_JIT=1 (a common way to debug a user's function) gave an AttributeError from
    inside fastgrad/_jit; now an ImportError says why and what to do instead."""
    import os
    done = subprocess.run([sys.executable, "-c", "import fastgrad"], capture_output=True, text=True,
                          env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    assert done.returncode != 0
    assert "ImportError: fastgrad's kernels need Numba's compiler" in done.stderr
    assert "backend='reference'" in done.stderr


def test_threading_layer_is_thread_safe():
    assert fastgrad.thread_info()["numba_threading_layer"] in ("omp", "tbb")


def test_concurrent_calls_from_python_threads_agree():
    """Parallel kernels entered from several Python threads at once (workqueue would abort)."""
    z = np.random.default_rng(0).standard_normal((400, 300))
    expected = fastgrad.reference.tanh(z)
    errors, results = [], []

    def work():
        try:
            for _ in range(20):
                results.append(np.max(np.abs(F.tanh(z) - expected)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80 and max(results) < 1e-12


def test_set_num_threads_limits_numba_and_blas():
    before = fastgrad.get_num_threads()
    try:
        fastgrad.set_num_threads(1)
        assert fastgrad.get_num_threads() == {"numba": 1, "blas": 1}
        z = np.linspace(-3, 3, 100000)
        np.testing.assert_allclose(F.sigmoid(z), R.sigmoid(z), rtol=1e-12)
    finally:
        fastgrad.set_num_threads(before["numba"])
    assert fastgrad.get_num_threads()["numba"] == before["numba"]
    with pytest.raises(ValueError, match="n must be in"):
        fastgrad.set_num_threads(0)
    with pytest.raises(TypeError):
        fastgrad.set_num_threads(1.5)
    assert "numba" in fastgrad.describe_threads()


def test_blas_phase_runs_the_blas_on_one_thread_and_restores():
    """Inside: every BLAS on one thread, Numba at most its own count; after: both as before."""
    before = fastgrad.get_num_threads()
    with fastgrad.blas_phase():
        inside = fastgrad.get_num_threads()
        assert inside["blas"] in (1, None) and 1 <= inside["numba"] <= before["numba"]
        z = np.linspace(-3, 3, 100000)
        np.testing.assert_allclose(F.tanh(z), R.tanh(z), rtol=1e-12)
    assert fastgrad.get_num_threads() == before


def test_kernel_cache_is_stamped_with_all_kernel_sources(tmp_path):
    """Numba checks a cached function against its own file only; fastgrad stamps every kernel
    with a digest of all kernel sources, so a change to a callee's file invalidates callers."""
    from fastgrad import _jit
    from fastgrad.kernels import train
    (tmp_path / "a.py").write_text("x = 1\n")
    first = _jit.kernel_sources_digest(str(tmp_path))
    assert _jit.kernel_sources_digest(str(tmp_path)) == first
    (tmp_path / "b.py").write_text("y = 2\n")
    assert _jit.kernel_sources_digest(str(tmp_path)) != first
    locator = train.train_epoch._cache._impl.locator
    assert locator.get_source_stamp() == _jit.SOURCES_DIGEST == _jit.kernel_sources_digest()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorizable_exp_matches_numpy(dtype):
    """kernels.mathfns.exp: ~1 ulp over the normal range, inf/NaN/underflow as documented."""
    from fastgrad.kernels.mathfns import exp_array
    top = 88.3 if dtype == np.float32 else 709.4
    x = np.concatenate([np.linspace(-80 if dtype == np.float32 else -700, top, 100001),
                        np.linspace(-1, 1, 10001)]).astype(dtype)
    got = np.empty_like(x)
    exp_array(x, got)
    want = np.exp(x.astype(np.float64))
    ulps = np.max(np.abs(got - want) / want) / np.finfo(dtype).eps
    assert ulps < 3, ulps
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -1e4], dtype=dtype)
    out = np.empty_like(special)
    exp_array(special, out)
    assert out[0] == np.inf and out[1] == 0 and np.isnan(out[2]) and out[3] == 1 and out[4] == 0
    assert exp_array(np.array([dtype(1.0)]), np.empty(1, dtype)) is None  # writes in place


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_of_nonpositive_arguments_is_exp_bit_for_bit(dtype):
    """kernels.mathfns.exp_nonpos (softmax's exp(z - max)) leaves out exp's upper limit: on every
    argument <= 0, -inf and NaN it gives exp's bits, down to and past the underflow bound; its
    NumPy twin is np.exp."""
    from fastgrad.kernels.mathfns import exp_array, exp_nonpos_array
    from fastgrad.reference.mathfns import exp_nonpos_array as twin
    lo = -90.0 if dtype == np.float32 else -710.0
    x = np.concatenate([np.linspace(lo, 0, 200_001), -np.geomspace(1e-30, 1, 1001), [-0.0, 0.0, -np.inf, np.nan],
                        -np.abs(np.random.default_rng(0).standard_normal(999) * 30)]).astype(dtype)
    got, want, numpy = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    exp_nonpos_array(x, got)
    exp_array(x, want)
    np.testing.assert_array_equal(got, want)
    twin(x, numpy)
    normal = numpy >= np.finfo(dtype).tiny
    assert np.max(np.abs(got[normal] - numpy[normal]) / numpy[normal]) < 3 * np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_muladd_rounds_once_where_the_cpu_fuses(dtype):
    """_jit.muladd (the mathfns polynomials' and the optimizers' a * b + c): when Numba compiles for
    a CPU with FMA, the exact a * b + c rounded once (Fractions), in a vectorized loop too;
    otherwise (no FMA, or NUMBA_CPU_NAME=generic) the twin's two roundings.
    (1 + 2^-m)^2 - (1 + 2^(1-m)) = 2^-2m is lost entirely by the unfused form."""
    from fractions import Fraction
    from fastgrad import _jit
    from fastgrad.kernels.mathfns import muladd_array
    from fastgrad.reference.mathfns import muladd_array as twin
    rng = np.random.default_rng(0)
    m = 12 if dtype == np.float32 else 27
    a = np.concatenate([[1 + 2.0 ** -m], rng.standard_normal(999)]).astype(dtype)
    b = np.concatenate([[1 + 2.0 ** -m], rng.standard_normal(999)]).astype(dtype)
    near_cancel = -(a[1:] * b[1:]) + rng.standard_normal(999).astype(dtype) * dtype(1e-3)
    c = np.concatenate([[-(1 + 2.0 ** (1 - m))], near_cancel]).astype(dtype)
    got, unfused = np.empty_like(a), np.empty_like(a)
    muladd_array(a, b, c, got)
    twin(a, b, c, unfused)
    assert unfused[0] == 0
    if _jit.target_has_fma():
        exact = np.array([float(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
                          for x, y, z in zip(a, b, c)])
        want = exact.astype(dtype)  # float64 -> float32 may round twice; compare with an ulp of slack there
        assert got[0] == dtype(2.0 ** (-2 * m))
        np.testing.assert_allclose(got, want, rtol=np.finfo(dtype).eps if dtype == np.float32 else 0, atol=0)
    else:
        np.testing.assert_array_equal(got, unfused)
    special = np.array([np.nan, np.inf, 1.0, np.inf], dtype)
    out = np.empty_like(special)
    muladd_array(special, np.array([1.0, 0.0, np.nan, 1.0], dtype), np.array([1.0, 1.0, 1.0, -np.inf], dtype), out)
    assert np.isnan(out).all()  # NaN * 1, inf * 0, 1 * NaN, inf - inf: NaN as in NumPy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorizable_expm1_matches_mpmath(dtype):
    """kernels.mathfns.expm1 (ELU's): within 3 ulp of the exact value (mpmath, 40 digits) over
    [-40, 0.6], the tiny arguments near 0 included (where exp(x) - 1 would cancel); NaN, -inf, -0."""
    mp = pytest.importorskip("mpmath")
    from fastgrad.kernels.mathfns import expm1_array
    x = np.concatenate([np.linspace(-40, 0.6, 4001), np.linspace(-0.6, 0.6, 2001),
                        -np.geomspace(1e-30, 1, 2001), np.geomspace(1e-30, 0.6, 501)]).astype(dtype)
    got = np.empty_like(x)
    expm1_array(x, got)
    with mp.workdps(40):
        want = np.array([float(mp.expm1(mp.mpf(float(v)))) for v in x])
    ok = want != 0
    ulps = np.max(np.abs(got[ok] - want[ok]) / np.abs(want[ok])) / np.finfo(dtype).eps
    assert ulps < 3, ulps
    special = np.array([np.nan, -np.inf, -0.0, 0.0], dtype=dtype)
    out = np.empty_like(special)
    expm1_array(special, out)
    assert np.isnan(out[0]) and out[1] == -1 and out[2] == 0 and np.signbit(out[2]) and out[3] == 0
    from fastgrad.reference.mathfns import expm1_array as twin
    np.testing.assert_allclose(got, (twin(x, ref := np.empty_like(x)), ref)[1], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorizable_log1p_of_nonnegative_numbers(dtype):
    """kernels.mathfns.log1p_nonneg (softmax's log of each row's sum): relative error below 2 eps of
    mpmath (40 digits) from 1e-30 to the largest finite number, 0, NaN and inf as libm's."""
    mp = pytest.importorskip("mpmath")
    from fastgrad.kernels.mathfns import log1p_nonneg_array
    from fastgrad.reference.mathfns import log1p_nonneg_array as twin
    big = np.finfo(dtype).max
    x = np.concatenate([np.geomspace(1e-30, big, 8001), np.linspace(0, 100, 4001),
                        np.geomspace(0.9, 1.1, 2001), np.geomspace(1.9, 2.1, 2001)]).astype(dtype)
    got = np.empty_like(x)
    log1p_nonneg_array(x, got)
    with mp.workdps(40):
        want = np.array([float(mp.log1p(mp.mpf(float(v)))) for v in x])
    ok = want > 0
    assert np.max(np.abs(got[ok] - want[ok]) / want[ok]) / np.finfo(dtype).eps < 2
    special = np.array([0.0, np.nan, np.inf], dtype)
    out = np.empty_like(special)
    log1p_nonneg_array(special, out)
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == np.inf
    np.testing.assert_allclose(got, (twin(x, ref := np.empty_like(x)), ref)[1], rtol=3 * np.finfo(dtype).eps)


ERFC_ULPS = {np.float32: 4, np.float64: 8}  # relative error, in units of the type's eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorizable_erfc_matches_mpmath(dtype):
    """kernels.mathfns.erfc (GELU's): relative error within 4 eps (float32) / 8 eps (float64) of mpmath (40
    digits), relative, wherever erfc is a normal number: x from -6 (erfc = 2) through the tail up
    to the underflow (x ~ 9.2 / 26.5), tiny |x| included; NaN, +-inf and the limits beyond."""
    mp = pytest.importorskip("mpmath")
    from fastgrad.kernels.mathfns import erfc_array
    from fastgrad.reference.mathfns import erfc_array as twin
    top = 10.0 if dtype == np.float32 else 26.6
    x = np.concatenate([np.linspace(-6, top, 12001), np.geomspace(1e-30, 2, 1001),
                        -np.geomspace(1e-30, 2, 201)]).astype(dtype)
    got = np.empty_like(x)
    erfc_array(x, got)
    with mp.workdps(40):
        want = np.array([float(mp.erfc(mp.mpf(float(v)))) for v in x])
    normal = want >= np.finfo(dtype).tiny
    assert normal.sum() > 12000
    ulps = np.abs(got[normal] - want[normal]) / want[normal] / np.finfo(dtype).eps
    assert ulps.max() <= ERFC_ULPS[dtype], (x[normal][ulps.argmax()], ulps.max())
    assert np.all(got[~normal] <= 2 * np.finfo(dtype).tiny)  # flushed to 0 (or a subnormal)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], dtype)
    out = np.empty_like(special)
    erfc_array(special, out)
    assert np.isnan(out[0]) and list(out[1:]) == [0, 2, 1, 1, 0, 2]
    # the twin (SciPy's Cephes erfc) rounds x**2 in its tail: 258 eps off mpmath at x = 26
    twin_eps = 2 * ERFC_ULPS[dtype] if dtype == np.float32 else 300
    np.testing.assert_allclose(got, (twin(x, ref := np.empty_like(x)), ref)[1],
                               rtol=twin_eps * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorizable_log1p_on_the_unit_interval(dtype):
    from fastgrad.kernels.mathfns import log1p_unit_array
    e = np.concatenate([np.geomspace(1e-30, 1, 20001), np.linspace(0, 1, 20001)]).astype(dtype)
    got = np.empty_like(e)
    log1p_unit_array(e, got)
    want = np.log1p(e.astype(np.float64))
    assert got[e == 0].max() == 0
    ok = want > 0
    assert np.max(np.abs(got[ok] - want[ok]) / want[ok]) / np.finfo(dtype).eps < 3

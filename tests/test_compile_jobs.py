"""A cold first fit compiles its kernels in two processes (fastgrad/_compile_jobs.py).

The second process only saves time: the fits here must train exactly as in one process, the
loop compiled ahead from example arguments must be the one the fit then calls (no second
compile), and a second process that cannot start or fails changes nothing but the time.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastgrad._compile_jobs as jobs_mod
from fastgrad import Dense, Dropout, LayerNorm, Sequential
from fastgrad._jit.native import argtypes_of
from fastgrad.kernels import dispatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((64, 6)), rng.integers(0, 3, 64), rng.standard_normal((64, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_loops_compiled_ahead_are_the_ones_every_fit_calls(dtype):
    """Every way a fit calls the loops (labels or float targets, weights, validation, clipping,
    penalties, diagnostics, L-BFGS, train_step, evaluate, predict, forward, loss_and_grad) has
    the types of the examples they are compiled ahead from: otherwise a first fit would compile
    the loop twice."""
    X, labels, targets = _data()
    fits = [
        (Sequential([Dense(6, 8, "relu"), Dense(8, 3)], loss="softmax_cross_entropy", dtype=dtype, seed=0),
         labels, dict(sample_weight=np.linspace(0.5, 2, 64), validation_split=0.25)),
        (Sequential([Dense(6, 4, "tanh"), LayerNorm(4), Dropout(0.2), Dense(4, 2)], loss="mse", optimizer="sgd",
                    l1=1e-3, l2=1e-3, l1_mode="proximal", dtype=dtype, seed=0),
         targets, dict(clip_norm=0.5, diagnostics=True, validation_data=(X, targets))),
    ]
    from fastgrad.optim import LBFGS
    fits.append((Sequential([Dense(6, 4, "tanh"), Dense(4, 3)], loss="softmax_cross_entropy", optimizer=LBFGS(max_iter=2),
                            metrics=["accuracy"], dtype=dtype, seed=0), labels, dict(validation_split=0.25)))
    for model, y, options in fits:
        model.fit(X, y, epochs=1, batch_size=16, verbose=0, **options)
        if not isinstance(model.optimizer, LBFGS):
            model.train_step(X[:8], y[:8])
        model.evaluate(X, y)
        model.predict(X)
        model.forward(X[:4])
        model.loss_and_grad(X, y)
        model.loss_and_grad(X, y, sample_weight=np.linspace(0.5, 2, 64))
    for name, (kernel, example) in dispatch.LOOPS.items():
        expected = argtypes_of(example(np.dtype(dtype)))
        called = [sig for sig in kernel.signatures if dtype in str(sig[0])]
        assert called == [expected], name


def test_the_work_is_split_longest_first_to_the_process_that_finishes_it_soonest():
    jobs = [("op", 0), ("loss", 10), ("optimizer", 3), ("activation", 0), ("activation", 1), ("loop", "train")]
    mine, theirs = jobs_mod.split(jobs)
    assert sorted(mine + theirs) == sorted(jobs)
    load = [sum(map(jobs_mod.cost, mine)), jobs_mod.START_SECONDS + sum(map(jobs_mod.cost, theirs))]
    assert abs(load[0] - load[1]) <= max(map(jobs_mod.cost, jobs))
    assert mine[0] == ("op", 0)  # the longest job, to the process that starts at once
    assert jobs_mod.split([("clip",)]) == ([("clip",)], [])


def test_one_process_when_asked_in_a_frozen_application_or_without_the_cache(monkeypatch):
    monkeypatch.setenv("FASTGRAD_COMPILE_PROCESSES", "1")
    assert jobs_mod.processes() == 1
    monkeypatch.delenv("FASTGRAD_COMPILE_PROCESSES")
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # sys.executable -c would start the application
    assert jobs_mod.processes() == 1
    monkeypatch.delattr(sys, "frozen")
    monkeypatch.setattr("fastgrad._jit.CACHE", False)
    assert jobs_mod.processes() == 1


def _fit(dtype="float32"):
    X, labels, _ = _data(1)
    model = Sequential([Dense(6, 8, "relu"), Dense(8, 3)], loss="softmax_cross_entropy", dtype=dtype, seed=3)
    model.fit(X, labels, epochs=2, batch_size=16, verbose=0)
    return model.params


def test_a_second_process_that_cannot_start_or_fails_changes_nothing_but_the_time(monkeypatch):
    expected = _fit().copy()
    monkeypatch.setattr(jobs_mod, "processes", lambda: 2)
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: False)  # as if the cache were cold
    monkeypatch.setattr(jobs_mod, "_READY", set())
    monkeypatch.setattr(sys, "executable", os.path.join(ROOT, "no-such-python"))
    np.testing.assert_array_equal(_fit(), expected)
    monkeypatch.undo()
    failing = jobs_mod._start([("no such job",)], np.dtype("float32"))
    jobs_mod.wait(failing)
    assert failing.returncode != 0


def test_an_error_here_stops_the_other_process_instead_of_waiting_for_it(monkeypatch):
    started = []
    start = jobs_mod._start
    monkeypatch.setattr(jobs_mod, "_start", lambda jobs, dtype: started.append(start(jobs, dtype)) or started[-1])
    monkeypatch.setattr(jobs_mod, "processes", lambda: 2)
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: False)
    monkeypatch.setattr(jobs_mod, "_READY", set())

    def interrupted(job, dtype):
        raise KeyboardInterrupt
    monkeypatch.setattr(dispatch, "compile_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jobs_mod.compile_jobs([("op", 0), ("loss", 10), ("optimizer", 3)], np.dtype("float32"))
    (other,) = started
    assert other.returncode is not None  # stopped and reaped, not left running


CHILD = r"""
import numpy as np
import fastgrad._compile_jobs as C
from fastgrad.kernels import train
started = []
start = C._start
C._start = lambda jobs, dtype: started.append((jobs, start(jobs, dtype))) or started[-1][1]
from tests.test_compile_jobs import _fit
params = _fit()
(jobs, process), = started
print(process.returncode, len(jobs), len(train.train_epoch.signatures), params.tobytes().hex())
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_a_killed_fit_leaves_no_compiling_process_behind(signal_name):
    """SIGKILL/SIGTERM give the fit no chance to stop the other process: it must notice alone
    (it compiled on for about 45 s, orphaned, in a new-user trial)."""
    import signal
    import time
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from fastgrad._compile_jobs import start_python\n"
         "p = start_python('import time; time.sleep(120)', 'x')\nprint(p.pid, flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # (the child has started its watch)
    assert _alive(child)
    parent.send_signal(getattr(signal, signal_name))
    parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_a_cold_first_fit_compiles_in_two_processes_and_trains_as_one(tmp_path):
    """In a fresh process on an empty cache: the second process compiles its share (exit 0), the
    loop is compiled once, and the parameters are this process's bit for bit."""
    env = {k: v for k, v in os.environ.items() if k != "FASTGRAD_COMPILE_PROCESSES"}
    env.update(NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    code, n_jobs, n_loops, params = done.stdout.split()
    assert (code, n_loops) == ("0", "1") and int(n_jobs) >= 1
    assert params == _fit().tobytes().hex()


def test_a_fit_after_the_first_does_not_read_the_cache_index_again(monkeypatch):
    """Once a job is known ready in a process, later fits skip the check (~0.5 ms of index reads
    and example typing per fit otherwise)."""
    _fit()
    monkeypatch.setattr(jobs_mod, "processes", lambda: 2)
    _fit()  # marks this model's jobs ready

    def unexpected(job, dtype):
        raise AssertionError(f"checked {job} again")
    monkeypatch.setattr(dispatch, "is_ready", unexpected)
    _fit()


def _cold_warmup(monkeypatch):
    import fastgrad._warmup as warm
    monkeypatch.setattr(warm, "is_compiled", lambda dtype: False)
    monkeypatch.setattr(jobs_mod, "processes", lambda: 2)
    return warm


def test_warmup_on_a_cold_cache_hands_whole_families_to_a_second_process(monkeypatch):
    warm = _cold_warmup(monkeypatch)
    started = []
    start = jobs_mod.start_python
    monkeypatch.setattr(jobs_mod, "start_python", lambda *a, **k: started.append(start(*a, **k)) or started[-1])
    times = warm.warmup(dtypes=("float64", "float32"), families=("losses", "dense"))
    expected = [f"{family}.{kernel}[{dt}]" for dt in ("float64", "float32") for family in ("losses", "dense")
                for kernel in warm.FAMILIES[family](np.dtype(dt))]
    assert list(times) == expected and all(t >= 0 for t in times.values())
    (other,) = started
    assert other.returncode == 0


def test_warmup_compiles_a_failed_second_process_s_families_itself(monkeypatch):
    warm = _cold_warmup(monkeypatch)
    ran = []
    run = warm._run
    monkeypatch.setattr(warm, "_run", lambda dtypes, families: ran.append(list(families)) or run(dtypes, families))
    silent = lambda code, argument, capture=False: subprocess.Popen(  # noqa: E731 - exits at once, prints nothing
        [sys.executable, "-c", "pass"], stdout=subprocess.PIPE, text=True)
    monkeypatch.setattr(jobs_mod, "start_python", silent)
    times = warm.warmup(dtypes="float32", families=("losses", "dense"))
    assert sorted(sum(ran, [])) == ["dense", "losses"] and len(ran) == 2
    assert {key.split(".")[0] for key in times} == {"losses", "dense"}


# ----- the compile notice (issue 11: one line before the wait) ----------------------------------

def _missing(monkeypatch, *absent):
    """Pretend the jobs ``absent`` (and only they) are missing from the disk cache."""
    monkeypatch.setattr(jobs_mod, "_READY", set())
    monkeypatch.setattr(jobs_mod, "processes", lambda: 1)  # (nothing is started: only the notice is tested)
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: tuple(job) not in absent)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_verbose_fit_announces_a_compile_of_any_kernel_of_its_model(capsys, monkeypatch, dtype):
    """The notice follows this model's own kernels: a new layer kind, optimizer or option after
    a cached loop is a compile too (it was announced only when the loop was missing)."""
    from fastgrad.kernels.program import LAYER_NORM
    X, labels, _ = _data()
    model = Sequential([Dense(6, 4, "tanh"), LayerNorm(4), Dense(4, 3)], loss="softmax_cross_entropy",
                       dtype=dtype, seed=0)
    notice = jobs_mod.NOTICE.format(dtype=dtype)
    for absent, verbose, expected in [((("op", LAYER_NORM),), 1, True), ((("clip",),), 1, True),
                                      ((("op", LAYER_NORM),), 0, False), ((("op", 99),), 1, False), ((), 2, False)]:
        _missing(monkeypatch, *absent)
        model.fit(X, labels, epochs=1, batch_size=32, verbose=verbose, clip_norm=1.0)
        err = capsys.readouterr().err
        assert (notice in err) == expected, (absent, verbose)
        if expected:
            assert err.index(notice) < (err.index("Epoch") if "Epoch" in err else len(err))


def test_the_notice_before_lbfgs_and_scikit_learn_fits(capsys, monkeypatch):
    from fastgrad.optim import LBFGS
    from fastgrad.kernels.activations import TANH
    X, labels, targets = _data()
    notice = jobs_mod.NOTICE.split("{")[0]  # "compiling fastgrad's "
    model = Sequential([Dense(6, 4, "tanh"), Dense(4, 2)], loss="mse", optimizer=LBFGS(max_iter=2), seed=0)
    _missing(monkeypatch, ("activation", TANH))
    model.fit(X, targets, epochs=1, verbose=1)
    assert notice in capsys.readouterr().err
    sklearn = pytest.importorskip("sklearn")
    import sklearn.exceptions
    from fastgrad.sklearn import MLPRegressor
    for verbose, expected in [(True, True), (False, False)]:
        _missing(monkeypatch, ("activation", TANH))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)  # (2 iterations)
            MLPRegressor((4,), activation="tanh", max_iter=2, verbose=verbose, random_state=0).fit(X, targets[:, 0])
        assert (notice in capsys.readouterr().err) == expected


def test_warmup_is_cold_while_any_training_kernel_is_missing(monkeypatch):
    """After one model's fit the other layer kinds are still to compile: warmup must still split
    its families between two processes (it checked only the loop, which that fit had compiled)."""
    import fastgrad._warmup as warm
    from fastgrad.kernels.program import BATCH_NORM
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: True)
    assert warm.is_compiled("float32")
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: tuple(job) != ("op", BATCH_NORM))
    assert not warm.is_compiled("float32")
    monkeypatch.setattr(dispatch, "is_ready", lambda job, dtype: tuple(job) != ("loop", "evaluate"))
    assert not warm.is_compiled("float64")


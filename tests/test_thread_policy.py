"""The default thread policy: the BLAS's threads follow other processes' load (fastgrad._threads).

Each scenario runs in a fresh interpreter: the policy changes process-wide BLAS limits, and the
other processes' load is simulated by replacing fastgrad._cpu_load's measurement, so the tests do
not depend on what else runs on the machine.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from fastgrad._threads import blas_threads_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("others, cores, ceiling, want", [
    (0.0, 2, 2, 2), (0.3, 2, 2, 2), (0.49, 2, 2, 2), (0.5, 2, 2, 1), (1.0, 2, 2, 1), (2.5, 2, 2, 1),
    (0.0, 8, 8, 8), (2.4, 8, 8, 6), (2.6, 8, 8, 5), (0.0, 8, 4, 4), (20.0, 8, 8, 1), (0.0, 2, 1, 1)])
def test_blas_threads_leave_the_cores_others_use(others, cores, ceiling, want):
    assert blas_threads_for(others, cores, ceiling) == want


SCRIPT = textwrap.dedent("""
    import json, sys
    from threadpoolctl import threadpool_info, threadpool_limits
    import fastgrad
    from fastgrad import _cpu_load, _threads

    load = {"others": 0.0}
    _cpu_load.others_use = lambda start, end: load["others"]   # the simulated machine
    state = _threads._LOAD

    def look(others):
        load["others"] = others
        state.last = (0.0, 0.0, -1e9)      # the last look is long past
        with fastgrad.blas_phase():
            pass
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    fastgrad.set_num_threads("auto")
    out = {"quiet": look(0.0), "busy": look(1.6), "quiet again": look(0.1)}
    state.last = (0.0, 0.0, float("inf"))  # just looked: the next call does not look again
    load["others"] = 1.6
    with fastgrad.blas_phase():
        pass
    out["within 0.5 s"] = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    with threadpool_limits(1, user_api="blas"):   # a limit set by someone else is not raised
        out["user limit, quiet"] = look(0.0)
    out["after the user's block"] = look(0.0)
    fastgrad.set_num_threads(2)                   # a fixed count is kept, busy or not
    out["fixed 2, busy"] = look(1.6)
    fastgrad.set_num_threads("auto")
    out["auto again, busy"] = look(1.6)
    print(json.dumps(out))
""")


def test_blas_threads_follow_the_load_and_respect_fixed_counts():
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    env = dict(os.environ, PYTHONPATH=ROOT, FASTGRAD_FOLLOW_LOAD="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import json
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"quiet": 2, "busy": 1, "quiet again": 2, "within 0.5 s": 2, "user limit, quiet": 1,
                   "after the user's block": 2, "fixed 2, busy": 2, "auto again, busy": 1}


def test_the_policy_is_off_with_the_environment_switch():
    env = dict(os.environ, PYTHONPATH=ROOT, FASTGRAD_FOLLOW_LOAD="0")
    code = ("import fastgrad; from fastgrad import _threads; print(_threads._LOAD.enabled)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]


def test_set_num_threads_auto_and_bad_values():
    import fastgrad
    with pytest.raises(TypeError, match="'auto'"):
        fastgrad.set_num_threads("two")
    with pytest.raises(TypeError):
        fastgrad.set_num_threads(None)


def test_each_blas_is_named_by_the_package_that_ships_it():
    """Two OpenBLAS pools (NumPy's and SciPy's) used to print as "openblas x2, openblas x2"."""
    import fastgrad
    from fastgrad._threads import _owning_package, blas_label, thread_info
    from fastgrad.benchmarks.report import header_lines
    assert _owning_package("/site-packages/numpy.libs/libscipy_openblas64_-1.so") == "numpy"
    assert _owning_package("/site-packages/scipy.libs/libscipy_openblas-2.so") == "scipy"
    assert _owning_package("/usr/lib/x86_64-linux-gnu/libopenblas.so.0") is None
    assert blas_label({"library": "openblas", "threads": 2, "package": "numpy"}) == "openblas x2 (numpy)"
    assert blas_label({"library": "mkl", "threads": 4, "package": None}) == "mkl x4"
    for entry in thread_info()["blas"]:
        assert blas_label(entry) in fastgrad.describe_threads()
    run = {"machine": {"cpu": "x", "cores": 2, "platform": "p", "numba_threading_layer": "omp", "numba_threads": 2,
                       "blas": [{"library": "openblas", "version": "0.3", "threads": 2, "package": "scipy"},
                                {"library": "openblas", "version": "0.3", "threads": 2}],   # an older JSON
                       "versions": {}, "date": "2026-12-01"},
           "triad_gbps": None, "isolation": "process", "rounds": 1, "mode": "quick", "command": "c", "load": None}
    assert "BLAS openblas 0.3 x2 (scipy), openblas 0.3 x2" in "\n".join(header_lines(run))

"""The thread policy around fastgrad's calls (fastgrad._threads): every loaded BLAS on one thread,
Numba's threads at most the lowest BLAS count (a user's limit), and, by default, following other
processes' load.

Each scenario runs in a fresh interpreter: the policy changes process-wide BLAS limits, and the
other processes' load is simulated by replacing fastgrad._cpu_load's measurement, so the tests do
not depend on what else runs on the machine.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fastgrad._threads import threads_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("others, cores, want", [
    (0.0, 2, 2), (0.3, 2, 2), (0.49, 2, 2), (0.5, 2, 1), (1.0, 2, 1), (2.5, 2, 1),
    (0.0, 8, 8), (2.4, 8, 6), (2.6, 8, 5), (20.0, 8, 1)])
def test_threads_leave_the_cores_others_use(others, cores, want):
    assert threads_for(others, cores) == want


PRELUDE = textwrap.dedent("""
    import json, sys
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits
    import fastgrad
    from fastgrad import _cpu_load, _threads

    load = {"others": 0.0}
    _cpu_load.others_use = lambda start, end: load["others"]   # the simulated machine
    state = _threads._LOAD

    def counts():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    def now():
        return [numba.get_num_threads(), counts()]

    def call(others):
        \"\"\"[Numba's threads and the BLAS counts during a fastgrad call, after it], with others'
        load simulated.\"\"\"
        load["others"] = others
        state.last = (0.0, 0.0, -1e9)      # the last look is long past
        with fastgrad.blas_phase():
            inside = now()
        return [inside, now()]
""")

SCENARIOS = textwrap.dedent("""
    out = {"default, quiet": call(0.0), "default, busy": call(1.6)}   # following the load is the default
    state.last = (0.0, 0.0, float("inf"))              # just looked: the next call keeps the last choice
    load["others"] = 0.0
    with fastgrad.blas_phase():
        out["within 0.5 s"] = now()
    with threadpool_limits(1, user_api="blas"):        # a limit set by someone else holds, and is kept
        out["user limit, quiet"] = call(0.0)
    out["after the user's block"] = call(0.0)
    for bad in (0, 3, -1):
        try:
            fastgrad.set_num_threads(bad)
        except ValueError:
            pass
    out["after refused calls, busy"] = call(1.6)       # a refused call changes nothing
    fastgrad.set_num_threads(2)                        # a fixed count turns following off
    out["fixed 2, busy"] = call(1.6)
    fastgrad.set_num_threads("auto")                   # and "auto" turns it on again
    out["auto, busy"] = call(1.6)
    print(json.dumps(out))
""")


# what would fix the pools' sizes in the child (Dask's nanny sets OMP_NUM_THREADS=1 in the test
# process, for one): the scenarios start from the libraries' defaults
POOL_VARIABLES = ("FASTGRAD_FOLLOW_LOAD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMBA_NUM_THREADS", "BLIS_NUM_THREADS")


def run(code, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in POOL_VARIABLES}
    env.update(PYTHONPATH=ROOT, **env_extra)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_blas_thread_inside_calls_and_numba_threads_follow_the_load_and_limits():
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    got = run(PRELUDE + SCENARIOS)
    quiet = [[2, [1, 1]], [2, [2, 2]]]      # inside the call: the BLAS on one thread; after: as before
    busy = [[1, [1, 1]], [2, [2, 2]]]       # and Numba lowered for the call only
    assert got == {"default, quiet": quiet,
                   "default, busy": busy,
                   "within 0.5 s": [1, [1, 1]],
                   "user limit, quiet": [[1, [1, 1]], [2, [1, 1]]],
                   "after the user's block": quiet,
                   "after refused calls, busy": busy,
                   "fixed 2, busy": quiet,
                   "auto, busy": busy}


def test_a_limit_entered_before_scipys_blas_loaded_holds_for_compiled_products():
    """threadpool_limits entered before fastgrad's first call limits only numpy's BLAS (scipy's is
    not loaded yet); fastgrad's products (scipy's BLAS on Numba's threads) must keep to it."""
    code = textwrap.dedent("""
        import json, sys
        import numpy                                   # numpy's BLAS is loaded, scipy's is not yet
        from threadpoolctl import threadpool_limits, threadpool_info
        import fastgrad
        assert "scipy.linalg.cython_blas" not in sys.modules
        import numba
        with threadpool_limits(1, user_api="blas"):
            with fastgrad.blas_phase():
                inside = sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
                threads = numba.get_num_threads()
        print(json.dumps({"libraries": len(inside), "inside": inside, "threads": threads}))
    """)
    got = run(code)
    assert got["inside"] == [1] * got["libraries"] and got["libraries"] >= 1 and got["threads"] == 1


def test_the_holds_direct_count_readers_agree_with_threadpoolctl():
    """The hold reads each BLAS's thread count through the C function threadpoolctl finds
    (cheaper than its property); both must give the same count, at every setting."""
    code = textwrap.dedent("""
        import json
        import fastgrad
        from fastgrad import _threads
        from threadpoolctl import threadpool_limits
        libs = _threads._blas_libraries()
        seen = []
        for n in (1, 2, 1):
            with threadpool_limits(n, user_api="blas"):
                seen.append([[read(), lib.num_threads] for lib, read in libs])
        print(json.dumps({"libraries": len(libs), "seen": seen}))
    """)
    got = run(code)
    assert got["libraries"] >= 1
    assert all(direct == public for counts in got["seen"] for direct, public in counts)
    assert [counts[0][1] for counts in got["seen"]] == [1, min(2, os.cpu_count() or 1), 1]


def test_the_environment_switch_turns_following_off():
    code = "import fastgrad; from fastgrad import _threads; print('[%s]' % str(_threads._LOAD.enabled).lower())"
    assert run(code, FASTGRAD_FOLLOW_LOAD="0") == [False]
    assert run(code) == [True]


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


def test_set_num_threads_takes_numpy_integers():
    import numpy as np
    import fastgrad
    before = fastgrad.get_num_threads()["numba"]
    try:
        fastgrad.set_num_threads(np.int64(1))
        assert fastgrad.get_num_threads() == {"numba": 1, "blas": 1}
    finally:
        fastgrad.set_num_threads(before)


def test_fastgrad_sklearn_without_scikit_learn_says_how_to_install_it():
    code = ("import sys; sys.modules['sklearn'] = None\n"   # as if scikit-learn were not installed
            "try:\n    import fastgrad.sklearn\nexcept ModuleNotFoundError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "pip install 'fastgrad[sklearn]'" in done.stdout, done.stdout + done.stderr


def test_calls_from_other_python_threads_hold_the_blas_and_give_the_same_bits():
    """threadpoolctl (>= 3.6) changes OpenBLAS only from the first Python thread that used it; a
    call from another thread then ran its pieces on the BLAS's own threads (other bits, in both
    dtypes), and one thread's restore could land while another was in its products. The hold is
    process-wide now: the first thread in sets one BLAS thread, the last out gives them back."""
    code = textwrap.dedent("""
        import json, threading
        from concurrent.futures import ThreadPoolExecutor
        import numba, numpy as np
        import fastgrad, fastgrad.functional as F
        from fastgrad import Dense, Sequential
        rng = np.random.default_rng(0)
        out = {}
        for dt in ("float32", "float64"):
            x = rng.standard_normal((700, 784)).astype(dt)
            W = rng.standard_normal((784, 512)).astype(dt)
            first = ThreadPoolExecutor(1).submit(F.dense_forward, x, W, None).result()  # first call: a pool thread
            main = F.dense_forward(x, W, None)
            model = Sequential([Dense(784, 512, activation="relu"), Dense(512, 10)], loss="mse", dtype=dt, seed=0)
            want = model.predict(x)
            with ThreadPoolExecutor(4) as pool:
                many = list(pool.map(lambda i: F.dense_forward(x, W, None) if i % 2 else model.predict(x), range(16)))
            out[dt] = [np.array_equal(first, main)] + [np.array_equal(m, want if i % 2 == 0 else main)
                                                       for i, m in enumerate(many)]
        fastgrad.set_num_threads(1)             # fixed in the main thread: holds for calls from others
        seen = {}
        def inside():
            with fastgrad.blas_phase():
                seen["threads"] = numba.get_num_threads()
        t = threading.Thread(target=inside); t.start(); t.join()
        out["counts after"] = fastgrad.get_num_threads()
        out["threads in another thread"] = seen["threads"]
        print(json.dumps(out))
    """)
    got = run(code)
    assert got["float32"] == [True] * 17 and got["float64"] == [True] * 17
    assert got["threads in another thread"] == 1 and got["counts after"] == {"numba": 1, "blas": 1}


def test_set_num_threads_from_a_worker_thread_limits_the_blas():
    """The same kind as above: threadpoolctl's public setter, which set_num_threads used, does
    nothing to OpenBLAS outside the first Python thread that used it, so a worker thread got
    {'blas': 2} back after set_num_threads(1) once the main thread had set one."""
    code = textwrap.dedent("""
        import json
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        import fastgrad
        fastgrad.set_num_threads(2)                   # the main thread sets a count first
        def worker():
            fastgrad.set_num_threads(1)
            return fastgrad.get_num_threads()
        got = ThreadPoolExecutor(1).submit(worker).result()
        print(json.dumps({"worker": got, "main": fastgrad.get_num_threads()["blas"]}))
    """)
    got = run(code)
    assert got["worker"] == {"numba": 1, "blas": 1} and got["main"] == 1

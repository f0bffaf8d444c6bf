"""The kernel cache wherever it lives: stamped with the sources' digest, safe to fill from two processes.

Every case runs in fresh interpreters (the cache is a cross-process matter) on temporary
folders: a copy of the package, its own user-wide cache (``XDG_CACHE_HOME``) or
``NUMBA_CACHE_DIR``.
"""
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CALLEE = '''
from fastgrad._jit import inline


@inline
def probe_offset(x):
    return x + {offset}
'''
CALLER = '''
from fastgrad._jit import kernel
from fastgrad.kernels._probe_callee import probe_offset


@kernel
def probe(x):
    return probe_offset(x)
'''
RUN_PROBE = '''
from fastgrad.kernels._probe_caller import probe
value = probe(0.5)
locator = type(probe._cache._impl.locator).__name__
print(value, locator, len(probe.stats.cache_hits), flush=True)
'''


def _python(code, env_extra, cwd, pythonpath, timeout=900):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE_DIR", "FASTGRAD_CACHE"))}
    env.update(env_extra, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1].split()


@pytest.fixture
def readonly_install(tmp_path):
    """A copy of the package whose kernels folder cannot hold a __pycache__, and probe kernels:
    a caller in one file inlining a callee from another."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "fastgrad"), site / "fastgrad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    kernels = site / "fastgrad" / "kernels"
    (kernels / "_probe_callee.py").write_text(CALLEE.format(offset=1.0))
    (kernels / "_probe_caller.py").write_text(CALLER)
    (kernels / "__pycache__").write_text("not a folder: the package is read-only for this user")
    for folder in (kernels, site / "fastgrad"):
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)  # also read-only for non-root
    yield site
    for folder in (kernels, site / "fastgrad"):
        folder.chmod(stat.S_IRWXU)


def test_user_wide_cache_is_stamped_and_an_upgrade_of_a_callee_recompiles(tmp_path, readonly_install):
    site = readonly_install
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    value, locator, hits = _python(RUN_PROBE, env, tmp_path, str(site))
    assert (float(value), locator, hits) == (1.5, "KernelsUserWideCacheLocator", "0")
    assert any(name.startswith("_probe_caller.probe") for _, _, files in os.walk(tmp_path / "xdg") for name in files)
    value, locator, hits = _python(RUN_PROBE, env, tmp_path, str(site))
    assert (float(value), hits) == (1.5, "1")  # the second process loads the cached code
    kernels = site / "fastgrad" / "kernels"
    kernels.chmod(stat.S_IRWXU)
    (kernels / "_probe_callee.py").write_text(CALLEE.format(offset=2.0))  # the upgrade: another file changes
    value, locator, hits = _python(RUN_PROBE, env, tmp_path, str(site))
    assert (float(value), hits) == (2.5, "0")  # not the stale 1.5 compiled against the old callee


def test_in_tree_and_user_dir_caches_are_stamped(tmp_path, readonly_install):
    site = readonly_install
    value, locator, _ = _python(RUN_PROBE, {"NUMBA_CACHE_DIR": str(tmp_path / "nc")}, tmp_path, str(site))
    assert (float(value), locator) == (1.5, "KernelsUserProvidedCacheLocator")


TWO_WRITERS = '''
import multiprocessing as mp
import numpy as np


def compile_one(dtype, barrier):
    from fastgrad.kernels.stream import triad   # imported before the barrier: compiling starts together
    a, b, c = (np.arange(5, dtype=dtype) for _ in range(3))
    barrier.wait()
    triad(a, b, c, 2.0)
    assert np.array_equal(a, b + 2 * c)


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=compile_one, args=(dt, barrier)) for dt in ("float32", "float64")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(900)
    print(*[p.exitcode for p in procs])
'''
THIRD_LOADS = '''
import numpy as np
from fastgrad.kernels.stream import triad
for dt in ("float32", "float64"):
    a = np.zeros(40_000, dt)
    b = np.arange(40_000, dtype=dt)
    c = np.full(40_000, 3, dt)
    triad(a, b, c, 0.5)
    assert a.dtype == dt and np.array_equal(a, b + np.asarray(1.5, dt)), dt
print(len(triad.stats.cache_hits), len(triad.stats.cache_misses))
'''


def test_two_spawned_processes_fill_an_empty_cache_then_a_third_loads_it(tmp_path):
    cache = tmp_path / "cache"
    script = tmp_path / "two_writers.py"
    script.write_text(TWO_WRITERS)
    env = {"NUMBA_CACHE_DIR": str(cache)}
    assert _python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')", env,
                   tmp_path, ROOT) == ["0", "0"]
    assert _python(THIRD_LOADS, env, tmp_path, ROOT) == ["2", "0"]  # both signatures from cache, none compiled
    assert any(files and ".fastgrad-cache.lock" in files for _, _, files in os.walk(cache))


def test_index_and_data_are_written_under_an_exclusive_lock(tmp_path):
    """While one process holds the cache folder's lock, another cannot take it (and so cannot
    save an index or data file there)."""
    holder = '''
    import sys, time
    from fastgrad._cache import cache_lock
    with cache_lock(sys.argv[1], exclusive=True):
        print("locked", flush=True)
        time.sleep(30)
    '''
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(holder), str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        probe = '''
        import fcntl, os, sys
        from numba.core import caching
        import fastgrad._jit
        assert caching.IndexDataCacheFile.save._fastgrad_locked and caching.IndexDataCacheFile.load._fastgrad_locked
        fd = os.open(os.path.join(sys.argv[1], ".fastgrad-cache.lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            print("free")
        except BlockingIOError:
            print("held")
        '''
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(probe), str(tmp_path)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.stdout.strip() == "held", out.stderr[-2000:]
    finally:
        proc.kill()
        proc.wait()


def test_every_numba_locator_has_a_stamped_twin_tried_first():
    code = '''
    from numba.core import caching
    import fastgrad._jit
    classes = caching.CacheImpl._locator_classes
    stamped = [c for c in classes if getattr(c, "_fastgrad_stamped", False)]
    plain = [c for c in classes if not getattr(c, "_fastgrad_stamped", False)]
    assert classes == stamped + plain, classes
    assert [c.__mro__[2] for c in stamped] == plain, [c.__mro__ for c in stamped]
    import importlib
    importlib.reload(fastgrad._jit)              # installing twice does not stack twins or locks
    assert len(caching.CacheImpl._locator_classes) == 2 * len(plain)
    assert not getattr(caching.IndexDataCacheFile.save.__wrapped__, "_fastgrad_locked", False)
    print(len(plain))
    '''
    assert int(_python(code, {}, ROOT, ROOT)[0]) >= 5   # user dir, in-tree, user-wide, IPython, zip


NO_LOCATOR = '''
import warnings
from numba.core import caching
impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
impl._locator_classes[:] = []  # as where no folder is writable: Numba finds no place to cache
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import fastgrad
    from fastgrad import Dense, Sequential, _jit, functional as F
    from fastgrad._compile_jobs import processes
    model = Sequential([Dense(2, 1)], loss="mse", seed=0)
    history = model.fit(np.ones((4, 2)), np.ones(4), epochs=1, batch_size=2, verbose=0)
    print(F.relu(np.array([-1.0, 2.0])).tolist(), _jit.CACHE, processes(), len(history.history["loss"]))
print(sum("no writable folder for its kernel cache" in str(w.message) for w in caught))
'''


def test_no_writable_cache_folder_compiles_without_a_cache_and_says_so_once(tmp_path):
    """A read-only install run by a user without a writable home: ``import fastgrad`` failed
    with Numba's "cannot cache function ...: no locator available" (new-user trial)."""
    env = dict(os.environ, PYTHONPATH=ROOT, NUMBA_CACHE_DIR=str(tmp_path / "unused"))
    env.pop("FASTGRAD_CACHE", None)
    out = subprocess.run([sys.executable, "-c", NO_LOCATOR], env=env, capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["[0.0, 2.0] False 1 1", "1"]

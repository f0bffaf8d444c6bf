"""The on-disk kernel cache: stamped with the kernel sources' digest wherever it lives, and locked.

Two faults of Numba's cache are closed here, for fastgrad's kernels only (files under
``fastgrad/kernels/``); :mod:`fastgrad._jit` calls :func:`install` with Numba's
``numba.core.caching`` module, the only place that imports Numba.

* **Stale callees.** Numba stamps a cached function with its own file's content hash,
  not with the files of the functions it inlined. fastgrad stamps its kernels with a
  digest of *all* kernel sources instead. That stamp must hold in every place Numba can
  put the cache: ``NUMBA_CACHE_DIR``, the package's ``__pycache__``, and -- when the
  package folder is not writable (a system-wide or container install) and
  ``NUMBA_CACHE_DIR`` is unset -- the user-wide cache folder, plus the IPython and zip
  locators. So every locator class Numba tries is mirrored by a stamped twin, tried
  first, in Numba's own order.
* **Concurrent first compilation.** Numba writes each file by write-then-rename, so no
  file is read half-written; but choosing a data file's number, saving the index and
  saving the data are three steps. Two processes compiling *different* signatures of one
  kernel into an empty cache (Dask workers, ``pytest -n 2``) can both pick
  ``<name>.1.nbc``; the index then names one signature and the file holds the other's
  machine code, which a third process runs with the wrong types. Saving therefore takes
  an exclusive ``flock`` on ``.fastgrad-cache.lock`` in the cache folder, and loading a
  shared one, so an index and the data it names are always read as one writer left them.
  (Both processes may still compile the same kernel once each; the results agree.)
  Without ``fcntl`` (Windows) there is no lock.
"""
from __future__ import annotations

import contextlib
import functools
import os

LOCK_NAME = ".fastgrad-cache.lock"
_kernel_cache_dirs = set()   # cache folders holding fastgrad kernels, as the locators chose them


@contextlib.contextmanager
def cache_lock(folder: str, exclusive: bool):
    """An ``flock`` on ``folder``'s lock file (exclusive or shared); no lock where that is
    impossible (no ``fcntl``, or a read-only folder, where nobody can write either)."""
    try:
        import fcntl
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    except (ImportError, OSError):
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


def _locked(method, exclusive):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self._cache_path not in _kernel_cache_dirs:
            return method(self, *args, **kwargs)
        with cache_lock(self._cache_path, exclusive):
            return method(self, *args, **kwargs)
    wrapper._fastgrad_locked = True
    return wrapper


def install(caching, kernels_dir: str, source_stamp: str) -> None:
    """Put stamped twins of Numba's locator classes first, and lock the index/data files.

    Idempotent: a second call (a reloaded module) replaces the twins of the first.
    """
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    files = getattr(caching, "IndexDataCacheFile", None) or getattr(caching, "_IndexDataCacheFile")

    class _KernelSources:
        _fastgrad_stamped = True

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != kernels_dir:
                return None
            locator = super().from_function(py_func, py_file)
            if locator is not None:
                _kernel_cache_dirs.add(locator.get_cache_path())
            return locator

        def get_source_stamp(self):
            return source_stamp

    originals = [cls for cls in impl._locator_classes if not getattr(cls, "_fastgrad_stamped", False)]
    stamped = [type("Kernels" + cls.__name__.lstrip("_"), (_KernelSources, cls), {}) for cls in originals]
    impl._locator_classes[:] = stamped + originals
    if not getattr(files.save, "_fastgrad_locked", False):
        files.save = _locked(files.save, exclusive=True)
        files.load = _locked(files.load, exclusive=False)

"""Shared by every benchmark file: collection of bench_*.py, the thread counts, warm-up, ratios.

    pytest bench --benchmark-group-by=group -s                  # kernel and reference side by side
    pytest bench/bench_activations.py --benchmark-group-by=param:case,param:size,param:dtype
    pytest bench --benchmark-disable                            # smoke: every case runs once

The per-kernel files parametrize ``impl`` in ("fastgrad", "reference") and set
``benchmark.group`` to "<function> <size> <dtype>", so grouping by ``group`` or by every
parameter except ``impl`` puts a kernel next to its NumPy twin. At the end of a timed run
a table gives, per group, ``ratio = reference median / fastgrad median``.

Everything here runs in one process, so it compares fastgrad only with its own NumPy reference
(and NumPy baselines such as a GEMM floor). Other libraries' thread pools would fight fastgrad's
in this process and distort both sides: comparisons with PyTorch or JAX belong to
``python -m fastgrad bench``, which times each library in its own fresh process.
"""
from __future__ import annotations

import os
import sys

import pytest

import fastgrad
from fastgrad.benchmarks.runner import speedup

# tests/cases.py holds the case tables that tests and benchmarks share.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

IMPLS = ("fastgrad", "reference")
BASELINE = "fastgrad"


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` when pytest is pointed at the directory (pyproject's
    ``python_files`` is for tests/; files named on the command line are collected anyway)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session", autouse=True)
def thread_counts(request):
    """Print the cores, Numba's threading layer and threads, and the BLAS pools, once
    (past output capture, so that it shows with -q too; the summary repeats it)."""
    line = f"bench threads: {fastgrad.describe_threads()}"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    else:
        print(line)
    return line


@pytest.fixture
def timed(benchmark):
    """``timed(group, impl, func)``: time ``func`` in ``group`` after one untimed call (compiles
    the kernel, touches the pages). In smoke mode (``--benchmark-disable``) the reference skips
    that call: it has nothing to compile, and the smoke run stays short."""
    def run(group, impl, func):
        benchmark.group = group
        benchmark.extra_info["threads"] = fastgrad.describe_threads()
        if impl == "fastgrad" or not benchmark.disabled:
            func()
        return benchmark(func)
    return run


def _competitor(meta) -> str:
    params = meta.params or {}
    for key in ("impl", "competitor", "name"):
        if key in params:
            return str(params[key])
    return meta.name


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    """Per group: the fastgrad median and ``other median / fastgrad median`` for each other competitor."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    groups: dict = {}
    for meta in session.benchmarks:
        if meta.stats and meta.stats.rounds:
            groups.setdefault(meta.group, {})[_competitor(meta)] = meta.stats.median
    lines = []
    for group, medians in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if BASELINE not in medians or len(medians) < 2:
            continue
        others = "  ".join(f"{name} {speedup(t, medians[BASELINE]):6.2f}x"
                           for name, t in sorted(medians.items()) if name != BASELINE)
        lines.append(f"{str(group):48s} fastgrad {1e3 * medians[BASELINE]:10.4f} ms  {others}")
    if lines:
        terminalreporter.write_sep("-", "speed-up of fastgrad: other median / fastgrad median")
        terminalreporter.write_line(f"threads: {fastgrad.describe_threads()}")
        for line in lines:
            terminalreporter.write_line(line)

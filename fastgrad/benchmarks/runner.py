"""Interleaved timing of competitors, medians, speed-ups, bandwidth, and first-call (compile) times.

:func:`time_interleaved` and :func:`run_workload` time competitors in this process: use them only for
fastgrad against its own NumPy reference (the demo, ``pytest bench``); ``fastgrad bench`` times every
competitor in its own process (:mod:`fastgrad.benchmarks.isolated`), reusing :func:`calibrate`.
The runner never asserts on a timing: it measures and returns numbers. A workload's
setup returns ``{competitor: zero-argument callable}``; :func:`time_interleaved` calls
each once untimed (compilation, page faults), then takes ``repeats`` samples of each,
alternating between competitors so that a change of machine load hits all of them.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ("speedup", "bandwidth_gbps", "calibrate", "time_interleaved", "run_workload",
           "first_call_seconds", "compile_times", "Budget", "QUICK", "FULL")


class Budget:
    """How long to time each competitor of a workload: ``seconds`` in all, at least
    ``min_repeats`` and at most ``max_repeats`` samples, each sample at least ``sample``
    seconds (short calls are looped ``number`` times per sample)."""

    def __init__(self, seconds, min_repeats, max_repeats, sample, slow_peers=True):
        self.seconds = seconds
        self.min_repeats = min_repeats
        self.max_repeats = max_repeats
        self.sample = sample
        self.slow_peers = slow_peers  # run peers that take seconds per call (numdifftools)


QUICK = Budget(seconds=0.25, min_repeats=1, max_repeats=7, sample=0.005, slow_peers=False)
FULL = Budget(seconds=1.5, min_repeats=3, max_repeats=31, sample=0.02)


def speedup(other_seconds, fastgrad_seconds):
    """``other / fastgrad``: how many times faster fastgrad is (> 1 faster, < 1 slower);
    None when either time is missing or not positive."""
    if other_seconds is None or fastgrad_seconds is None:
        return None
    if not (other_seconds > 0 and fastgrad_seconds > 0):
        return None
    return other_seconds / fastgrad_seconds


def bandwidth_gbps(bytes_moved, seconds):
    """Effective bandwidth in GB/s (1e9 bytes) of a call that moves ``bytes_moved`` in ``seconds``."""
    if not bytes_moved or seconds is None or seconds <= 0:
        return None
    return bytes_moved / seconds / 1e9


def calibrate(first_seconds, budget, n_competitors=1):
    """(number, repeats) from the duration of one call: loop short calls so a sample lasts
    ``budget.sample``; fit as many samples as ``budget.seconds`` allows, within the bounds."""
    t = max(first_seconds, 1e-7)
    number = max(1, int(budget.sample / t))
    per_sample = t * number
    repeats = int(budget.seconds / per_sample)
    return number, max(budget.min_repeats, min(budget.max_repeats, repeats))


def _time_once(func, number, clock=time.perf_counter):
    start = clock()
    for _ in range(number):
        func()
    return (clock() - start) / number


def time_interleaved(funcs, budget, single_shot=(), clock=time.perf_counter):
    """Median seconds per call for each of ``funcs`` ({name: callable}).

    Returns ``{name: {"median": s, "first_call": s, "repeats": r, "number": k, "samples": [...]}}``.
    Each competitor's warm-up call (``first_call``, includes any compilation) is not a
    sample, except for the names in ``single_shot`` (slow peers with nothing to compile,
    timed once). The samples of all competitors alternate, their order rotating every round.
    """
    names = list(funcs)
    first, plan, samples = {}, {}, {name: [] for name in names}
    for name in names:
        first[name] = _time_once(funcs[name], 1, clock)
        if name in single_shot:
            samples[name].append(first[name])
            plan[name] = (1, 1)
    for name in names:
        if name in plan:
            continue
        # a second call, compilation excluded, sizes the samples and is one itself when unlooped
        one = _time_once(funcs[name], 1, clock)
        plan[name] = calibrate(one, budget, len(names))
        if plan[name][0] == 1:
            samples[name].append(one)
    rounds = max(r for _, r in plan.values())
    for k in range(rounds):
        order = names[k % len(names):] + names[:k % len(names)]
        for name in order:
            number, repeats = plan[name]
            if len(samples[name]) < repeats:
                samples[name].append(_time_once(funcs[name], number, clock))
    return {name: {"median": statistics.median(samples[name]), "first_call": first[name],
                   "repeats": len(samples[name]), "number": plan[name][0], "samples": samples[name]}
            for name in names}


def run_workload(workload, budget, competitors=None):
    """Time one workload; never raises. Returns a dict of the JSON record's timing fields:
    ``status`` ("ok", "unavailable", "error"), ``reason``, ``medians``, ``first_call``,
    ``repeats``, ``competitors`` (each competitor's status: "ok", "not installed", "skipped ..."),
    ``speedup`` (every other competitor / fastgrad) and ``bandwidth_gbps``. ``competitors``:
    a subset of the workload's (default: all)."""
    record = {"status": "ok", "reason": None, "medians": {}, "first_call": {}, "repeats": {},
              "competitors": {}, "speedup": {}, "bandwidth_gbps": None}
    try:
        funcs, absent = workload.build(budget, competitors)
    except ImportError as exc:
        record.update(status="unavailable", reason=f"{type(exc).__name__}: {exc}")
        return record
    except Exception as exc:  # a measurement never crashes the report
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        return record
    record["competitors"].update(absent)
    try:
        timings = time_interleaved(funcs, budget, workload.single_shot)
    except Exception as exc:
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        return record
    finally:
        del funcs
    for name, t in timings.items():
        record["medians"][name] = t["median"]
        record["first_call"][name] = t["first_call"]
        record["repeats"][name] = t["repeats"]
        record["competitors"][name] = "ok"
    base = record["medians"].get("fastgrad")
    record["speedup"] = {name: speedup(t, base) for name, t in record["medians"].items() if name != "fastgrad"}
    record["bandwidth_gbps"] = bandwidth_gbps(workload.bytes_moved, base)
    return record


_FIRST_CALL_SNIPPET = """
import json, sys, time
from fastgrad.benchmarks.workloads import find
funcs, _ = find(sys.argv[1]).build(None, competitors=("fastgrad",))
start = time.perf_counter()
funcs["fastgrad"]()
print(json.dumps({"first_call": time.perf_counter() - start}))
"""


def first_call_seconds(name, cache_dir, timeout=300):
    """Seconds of the first fastgrad call of workload ``name`` in a fresh Python process whose
    Numba cache is ``cache_dir`` (includes compiling or loading the kernels, and one run)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL_SNIPPET, name], env=env, capture_output=True,
                         text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["first_call"]


def compile_times(name):
    """{"cold": s, "warm": s}: first call in a new process with an empty on-disk cache, then
    in another new process with the cache the first one wrote. None where it failed."""
    with tempfile.TemporaryDirectory(prefix="fastgrad-cache-") as cache_dir:
        result = {}
        for key in ("cold", "warm"):
            try:
                result[key] = first_call_seconds(name, cache_dir)
            except (subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError):
                result[key] = None
        return result

"""Process-isolated, interleaved timing: each competitor in its own fresh child process.

Thread pools of different libraries in one process fight over the cores (measured on 2 cores:
PyTorch's training step read 93 ms next to fastgrad's pools and 1.30 ms alone). So
:func:`run_isolated` runs every competitor -- fastgrad, the NumPy reference, the GEMM floor,
each peer -- in a child process of its own (:mod:`fastgrad.benchmarks.child`), at the same thread
count, and repeats that over ``rounds`` rounds, the children interleaved A B C .. B C .. A so that a
change of machine load hits every competitor. A child times all the selected workloads of its
competitor (one process per workload would spend most of a run importing libraries).

The medians are over the samples of all rounds; the spread is reported as the quartiles, the
extremes and each process's median; ``bg`` is the largest load other processes put on the machine
while a competitor's samples were taken (cores), and a workload is ``busy`` when it reached
:data:`~fastgrad.benchmarks.load.BUSY_CORES` after the children's retries.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

from fastgrad.benchmarks.load import BUSY_CORES
from fastgrad.benchmarks.runner import bandwidth_gbps, speedup
from fastgrad.benchmarks.workloads import COMPETITORS, CORE

__all__ = ("PEER_MODULES", "plan", "run_child", "merge", "run_isolated", "spread")

# competitor -> the module whose absence makes it "not installed" (checked without importing it)
PEER_MODULES = {"torch": "torch", "torch fused": "torch", "jax": "jax", "numdifftools": "numdifftools"}


def _installed(competitor) -> bool:
    module = PEER_MODULES.get(competitor)
    return module is None or importlib.util.find_spec(module) is not None


def plan(workloads, budget, competitors=None):
    """({competitor: [workload keys to run]}, {key: {competitor: reason not run}}), competitors in
    :data:`COMPETITORS` order; peers not installed, (with ``budget.slow_peers`` False) slow peers and
    those not in ``competitors`` (None: all; fastgrad always runs) are not run."""
    todo, skipped = {}, {}
    for w in workloads:
        for name in COMPETITORS:
            if name not in w.factories:
                continue
            if competitors is not None and name != "fastgrad" and name not in competitors:
                skipped.setdefault(w.key, {})[name] = "not selected"
            elif name in w.slow and not budget.slow_peers:
                skipped.setdefault(w.key, {})[name] = "skipped (--quick)"
            elif not _installed(name):
                skipped.setdefault(w.key, {})[name] = "not installed"
            else:
                todo.setdefault(name, []).append(w.key)
    return todo, skipped


def _package_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_child(competitor, keys, budget, threads=None, tries=1, timeout=1800) -> list:
    """Run ``competitor`` on the workloads ``keys`` in a fresh Python process; its records (see
    :mod:`fastgrad.benchmarks.child`), or one "error" record per key when the child failed."""
    spec = {"competitor": competitor, "keys": list(keys), "threads": threads, "tries": tries,
            "budget": {"seconds": budget.seconds, "min_repeats": budget.min_repeats,
                       "max_repeats": budget.max_repeats, "sample": budget.sample,
                       "slow_peers": budget.slow_peers}}
    env = dict(os.environ)
    env["PYTHONPATH"] = _package_root() + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="fastgrad-bench-") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        with open(spec_path, "w") as fh:
            json.dump(spec, fh)
        try:
            done = subprocess.run([sys.executable, "-m", "fastgrad.benchmarks.child", spec_path, out_path],
                                  env=env, capture_output=True, text=True, timeout=timeout)
            if done.returncode == 0 and os.path.exists(out_path):
                with open(out_path) as fh:
                    return json.load(fh)
            reason = f"child exited with status {done.returncode}: {done.stderr.strip()[-400:]}"
        except (subprocess.SubprocessError, OSError) as exc:
            reason = f"child failed: {type(exc).__name__}: {exc}"
    return [{"key": key, "competitor": competitor, "status": "error", "reason": reason, "first_call": None,
             "number": None, "samples": [], "bg": None} for key in keys]


def spread(runs) -> dict:
    """{"min", "q1", "q3", "max", "rel_iqr", "processes", "runs"} of ``runs`` (one list of samples per
    process): the extremes and quartiles of all samples, the interquartile range over the median,
    each process's median, and the samples."""
    runs = [list(r) for r in runs]
    ordered = sorted(s for r in runs for s in r)
    med = statistics.median(ordered)
    q1, q3 = (statistics.quantiles(ordered, n=4, method="inclusive")[::2] if len(ordered) > 1
              else (ordered[0], ordered[0]))
    return {"min": ordered[0], "q1": q1, "q3": q3, "max": ordered[-1], "rel_iqr": (q3 - q1) / med,
            "processes": [statistics.median(r) for r in runs], "runs": runs}


def merge(records, skipped=None, bytes_moved=None) -> dict:
    """One workload's timing from its child records (all rounds, all competitors): the dict of
    :func:`fastgrad.benchmarks.runner.run_workload` plus ``spread``, ``bg`` and ``busy``."""
    timing = {"status": "ok", "reason": None, "medians": {}, "first_call": {}, "repeats": {},
              "competitors": dict(skipped or {}), "speedup": {}, "bandwidth_gbps": None,
              "spread": {}, "bg": {}, "busy": False}
    by_name = {}
    for rec in records:
        by_name.setdefault(rec["competitor"], []).append(rec)
    for name, recs in by_name.items():
        ok = [r for r in recs if r["status"] == "ok" and r["samples"]]
        if not ok:
            timing["competitors"][name] = recs[0]["status"]
            if name in CORE:
                timing.update(status=recs[0]["status"], reason=recs[0]["reason"])
            continue
        samples = [s for r in ok for s in r["samples"]]
        timing["competitors"][name] = "ok"
        timing["medians"][name] = statistics.median(samples)
        timing["first_call"][name] = ok[0]["first_call"]
        timing["repeats"][name] = len(samples)
        timing["spread"][name] = spread([r["samples"] for r in ok])
        loads = [r["bg"] for r in ok if r["bg"] is not None]
        timing["bg"][name] = max(loads) if loads else None
        timing["busy"] = timing["busy"] or any(b >= BUSY_CORES for b in loads)
    if timing["status"] == "ok" and "fastgrad" not in timing["medians"]:
        timing.update(status="error", reason="fastgrad was not measured")
    base = timing["medians"].get("fastgrad")
    timing["speedup"] = {n: speedup(t, base) for n, t in timing["medians"].items() if n != "fastgrad"}
    timing["bandwidth_gbps"] = bandwidth_gbps(bytes_moved, base)
    return timing


def _per_round(budget, rounds):
    from fastgrad.benchmarks.runner import Budget
    return Budget(seconds=budget.seconds / rounds, min_repeats=max(1, -(-budget.min_repeats // rounds)),
                  max_repeats=max(1, -(-budget.max_repeats // rounds)), sample=budget.sample,
                  slow_peers=budget.slow_peers)


def run_isolated(workloads, budget, rounds=2, threads=None, tries=1, progress=None, competitors=None) -> dict:
    """{workload key: timing (see :func:`merge`)} for ``workloads``, each competitor (of
    ``competitors``; None: all) timed in fresh child processes, ``rounds`` rounds interleaved;
    ``budget`` is shared among the rounds."""
    todo, skipped = plan(workloads, budget, competitors)
    names = list(todo)
    per_round = _per_round(budget, rounds)
    records = []
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)] if names else []:
            if progress:
                progress(f"[round {r + 1}/{rounds}] {name}: {len(todo[name])} workloads in a fresh process")
            records += run_child(name, todo[name], per_round, threads, tries)
    out = {}
    for w in workloads:
        mine = [rec for rec in records if rec["key"] == w.key]
        out[w.key] = merge(mine, skipped.get(w.key), w.bytes_moved)
    return out

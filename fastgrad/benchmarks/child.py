"""One competitor's timings in a fresh process (no other library's thread pool alive in it).

    python -m fastgrad.benchmarks.child SPEC.json OUT.json

``SPEC.json``: {"competitor", "keys": [workload keys], "budget": {Budget fields}, "threads": n or
null, "tries": n}. For each workload the child builds only ``competitor``'s callable, calls it
once untimed (``first_call``: compilation, page faults), sizes its samples
(:func:`fastgrad.benchmarks.runner.calibrate`) and takes them while measuring the other
processes' load (:class:`fastgrad.benchmarks.load.LoadMeter`); when that load reached
:data:`~fastgrad.benchmarks.load.BUSY_CORES` the samples are taken again, up to ``tries``
attempts, and the quietest attempt is kept. ``OUT.json`` receives one record per workload:
{"key", "competitor", "status", "reason", "first_call", "number", "samples", "bg"}.
A workload that fails is recorded with its reason; the child never stops on one.
"""
from __future__ import annotations

import json
import os
import sys

from fastgrad.benchmarks.load import BUSY_CORES, LoadMeter

__all__ = ("apply_threads", "measure", "main")


def apply_threads(competitor: str, threads) -> None:
    """Give ``competitor``'s library ``threads`` threads (None: its default), importing nothing
    that another competitor needs: the peers never import fastgrad."""
    from fastgrad.benchmarks import peers
    peers.THREADS[0] = threads or os.cpu_count()
    if threads is None:
        return
    if competitor in ("fastgrad", "reference"):
        import fastgrad
        fastgrad.set_num_threads(threads)
    elif competitor == "gemm floor":
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")


def _record(key, competitor, status, reason=None, first=None, number=None, samples=(), bg=None):
    return {"key": key, "competitor": competitor, "status": status, "reason": reason, "first_call": first,
            "number": number, "samples": list(samples), "bg": bg}


def _worst(*loads):
    known = [x for x in loads if x is not None]
    return max(known) if known else None


def measure(workload, competitor, budget, tries=1) -> dict:
    """Time ``competitor`` on ``workload`` in this process; never raises."""
    from fastgrad.benchmarks.runner import _time_once, calibrate
    key = workload.key
    if competitor not in workload.factories:
        return _record(key, competitor, "n/a", f"{key} has no competitor {competitor!r}")
    try:
        funcs, absent = workload.build(budget, (competitor,))
    except ImportError as exc:
        return _record(key, competitor, "unavailable", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a measurement never crashes the report
        return _record(key, competitor, "error", f"{type(exc).__name__}: {exc}")
    if competitor in absent:
        return _record(key, competitor, absent[competitor])
    func = funcs[competitor]
    try:
        with LoadMeter() as meter:
            first = _time_once(func, 1)
        if competitor in workload.single_shot:
            return _record(key, competitor, "ok", first=first, number=1, samples=[first], bg=meter.cores)
        with LoadMeter() as sizing:
            one = _time_once(func, 1)
        number, repeats = calibrate(one, budget)
        head = [one] if number == 1 else []  # unlooped, the sizing call is a sample too
        best = None
        for attempt in range(max(1, tries)):
            kept = head if attempt == 0 else []
            with LoadMeter() as meter:
                samples = kept + [_time_once(func, number) for _ in range(repeats - len(kept))]
            cores = _worst(meter.cores, sizing.cores if kept else None)
            if best is None or (cores or 0.0) < (best[1] or 0.0):
                best = (samples, cores)
            if cores is None or cores < BUSY_CORES:
                break
        return _record(key, competitor, "ok", first=first, number=number, samples=best[0], bg=best[1])
    except Exception as exc:
        return _record(key, competitor, "error", f"{type(exc).__name__}: {exc}")


def main(argv=None) -> int:
    from fastgrad.benchmarks.runner import Budget
    from fastgrad.benchmarks.workloads import find
    spec_path, out_path = (sys.argv[1:] if argv is None else argv)[:2]
    with open(spec_path) as fh:
        spec = json.load(fh)
    competitor = spec["competitor"]
    apply_threads(competitor, spec.get("threads"))
    budget = Budget(**spec["budget"])
    records = []
    for key in spec["keys"]:
        try:
            workload = find(key)
        except KeyError as exc:
            records.append(_record(key, competitor, "error", str(exc)))
            continue
        records.append(measure(workload, competitor, budget, spec.get("tries", 1)))
        del workload
    with open(out_path, "w") as fh:
        json.dump(records, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

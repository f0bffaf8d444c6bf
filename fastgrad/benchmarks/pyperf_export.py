"""A ``fastgrad bench`` run as a pyperf benchmark suite, for pyperf's tools (optional: needs pyperf).

    fastgrad bench --pyperf run.pyperf.json
    python -m pyperf compare_to old.pyperf.json new.pyperf.json --table   # significance-tested changes
    python -m pyperf stats new.pyperf.json                                 # percentiles, outliers
    python -m pyperf hist new.pyperf.json

One pyperf benchmark per (workload, competitor), named "<workload key> <competitor>"; one pyperf
run per child process, holding that process's samples (seconds per call), with the most cores other
processes used while the samples were taken as the metadata ``fastgrad_others_cores``.

Why not pyperf's own runner: it runs one benchmark per worker process, all processes of one
benchmark back to back. Measured on the 2-core machine: a fresh process spends 0.9-1.3 s importing
fastgrad and 3.2-3.8 s importing torch, so one process per (workload, competitor, round) -- 23
workloads x 4 competitors x 2 rounds -- would spend over 8 minutes starting up, against the one to
two minutes ``--quick`` has in CI; and it cannot interleave competitors A B A B. So fastgrad's
runner (:mod:`fastgrad.benchmarks.isolated`) spawns one process per competitor and round and
exports its samples in pyperf's format.
"""
from __future__ import annotations

__all__ = ("to_suite", "write")


def to_suite(run):
    """The run's samples as a ``pyperf.BenchmarkSuite``; ``ImportError`` without pyperf."""
    import pyperf
    benchmarks = []
    for rec in run["workloads"]:
        for competitor, spread in rec["spread"].items():
            if not spread or not spread.get("runs"):
                continue
            name = f"{rec['key']} {competitor}"
            metadata = {"name": name, "unit": "second", "description": rec["name"]}
            if rec["bg_load"].get(competitor) is not None:
                metadata["fastgrad_others_cores"] = rec["bg_load"][competitor]
            runs = [pyperf.Run([max(v, 1e-12) for v in values], metadata=metadata, collect_metadata=False)
                    for values in spread["runs"] if values]
            if runs:
                benchmarks.append(pyperf.Benchmark(runs))
    if not benchmarks:
        raise ValueError("the run holds no samples to export (no workload was measured in child processes)")
    return pyperf.BenchmarkSuite(benchmarks)


def write(run, path) -> None:
    """Write the run's samples to ``path`` in pyperf's JSON format (replacing the file)."""
    to_suite(run).dump(str(path), replace=True)

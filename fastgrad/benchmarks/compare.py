"""Regressions between two ``fastgrad bench --json`` runs: workloads whose speed-up over the
NumPy reference fell by more than a threshold.

The speed-up (reference median / fastgrad median, both taken in the same run, their processes
interleaved) is compared rather than fastgrad's raw time, so a slower or busier machine does not
show as a regression by itself. For significance-tested changes of every competitor's time, export
both runs with ``--pyperf`` and use ``python -m pyperf compare_to``.

    python bench/compare.py OLD.json NEW.json [--threshold 0.10]
"""
from __future__ import annotations

import argparse
import sys

from fastgrad.benchmarks.report import load_json

__all__ = ("compare", "format_comparison", "main")


def compare(old: dict, new: dict, threshold: float = 0.10, against: str = "reference") -> list:
    """Rows ``{"key", "old", "new", "change", "regressed"}`` for every workload measured in both runs,
    where ``change = new / old - 1`` of the speed-up over ``against``; ``regressed`` when
    ``change < -threshold``. Workloads missing from either run, or not measured, are left out."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    before = {r["key"]: r["speedup"].get(against) for r in old["workloads"] if r["status"] == "ok"}
    out = []
    for rec in new["workloads"]:
        ratio_new = rec["speedup"].get(against) if rec["status"] == "ok" else None
        ratio_old = before.get(rec["key"])
        if not ratio_new or not ratio_old:
            continue
        change = ratio_new / ratio_old - 1
        out.append({"key": rec["key"], "old": ratio_old, "new": ratio_new, "change": change,
                    "regressed": change < -threshold})
    return out


def format_comparison(rows: list, threshold: float) -> str:
    lines = [f"{'workload':48s} {'old':>8s} {'new':>8s} {'change':>8s}"]
    for r in rows:
        flag = "  REGRESSED" if r["regressed"] else ""
        lines.append(f"{r['key']:48s} {r['old']:7.2f}x {r['new']:7.2f}x {100 * r['change']:+7.1f}%{flag}")
    bad = [r for r in rows if r["regressed"]]
    lines.append(f"{len(bad)} of {len(rows)} workloads lost more than {100 * threshold:.0f}% of their "
                 "speed-up over the NumPy reference" + (": " + ", ".join(r["key"] for r in bad) if bad else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the comparison; exit status 1 when a workload regressed (0 otherwise)."""
    parser = argparse.ArgumentParser(prog="compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="JSON of the earlier run")
    parser.add_argument("new", help="JSON of the later run")
    parser.add_argument("--threshold", type=float, default=0.10,
                        help="relative loss of speed-up that counts as a regression (default 0.10)")
    args = parser.parse_args(argv)
    rows = compare(load_json(args.old), load_json(args.new), args.threshold)
    print(format_comparison(rows, args.threshold))
    return 1 if any(r["regressed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

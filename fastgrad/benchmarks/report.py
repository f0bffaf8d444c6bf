"""The JSON record of a ``fastgrad bench`` run and its plain-text / markdown tables and plot.

JSON schema ``fastgrad-bench/1`` (every key always present; None where not measured)::

    {"schema", "command", "mode": "quick"|"full", "machine": {...}, "triad_gbps",
     "workloads": [{"key", "name", "family", "dtype", "status": "ok"|"unavailable"|"error",
                    "reason", "median_s": {competitor: s}, "first_call_s": {competitor: s},
                    "repeats": {competitor: n}, "competitors": {competitor: status},
                    "speedup": {competitor: median / fastgrad median}, "bandwidth_gbps",
                    "triad_fraction", "compile_s": {"cold", "warm"}}]}

Competitors are :data:`fastgrad.benchmarks.workloads.COMPETITORS`; a competitor's status is
"ok", "not installed", "skipped (--quick)", "n/a" (no such competitor for this workload) or
"unavailable"/"error" (the workload's).
"""
from __future__ import annotations

import json

from fastgrad.benchmarks.workloads import COMPETITORS, PEERS

__all__ = ("SCHEMA", "workload_record", "run_record", "validate", "text_table", "markdown_table",
           "header_lines", "write_json", "load_json", "plot")

SCHEMA = "fastgrad-bench/1"
WORKLOAD_KEYS = ("key", "name", "family", "dtype", "status", "reason", "median_s", "first_call_s", "repeats",
                 "competitors", "speedup", "bandwidth_gbps", "triad_fraction", "compile_s")
RUN_KEYS = ("schema", "command", "mode", "machine", "triad_gbps", "workloads")


def workload_record(workload, timing, triad_gbps=None, compile_s=None) -> dict:
    """One workload's JSON record from :func:`fastgrad.benchmarks.runner.run_workload`'s result."""
    applicable = set(workload.factories)
    competitors = {}
    for name in COMPETITORS:
        if name not in applicable:
            competitors[name] = "n/a"
        elif timing["status"] != "ok":
            competitors[name] = timing["status"]
        else:
            competitors[name] = timing["competitors"].get(name, "n/a")
    bandwidth = timing.get("bandwidth_gbps")
    return {"key": workload.key, "name": workload.name, "family": workload.family, "dtype": workload.dtype,
            "status": timing["status"], "reason": timing.get("reason"),
            "median_s": {c: timing["medians"].get(c) for c in COMPETITORS},
            "first_call_s": {c: timing["first_call"].get(c) for c in COMPETITORS},
            "repeats": {c: timing["repeats"].get(c) for c in COMPETITORS},
            "competitors": competitors,
            "speedup": {c: timing["speedup"].get(c) for c in COMPETITORS if c != "fastgrad"},
            "bandwidth_gbps": bandwidth,
            "triad_fraction": bandwidth / triad_gbps if bandwidth and triad_gbps else None,
            "compile_s": dict({"cold": None, "warm": None}, **(compile_s or {}))}


def run_record(records, machine, triad_gbps, command, mode) -> dict:
    return {"schema": SCHEMA, "command": command, "mode": mode, "machine": machine, "triad_gbps": triad_gbps,
            "workloads": list(records)}


def validate(run: dict) -> None:
    """Raise ``ValueError`` naming the first key missing from a run record or one of its workloads."""
    for key in RUN_KEYS:
        if key not in run:
            raise ValueError(f"benchmark JSON lacks the key {key!r}")
    if run["schema"] != SCHEMA:
        raise ValueError(f"benchmark JSON has schema {run['schema']!r}, expected {SCHEMA!r}")
    for rec in run["workloads"]:
        for key in WORKLOAD_KEYS:
            if key not in rec:
                raise ValueError(f"workload {rec.get('key', '?')!r} lacks the key {key!r}")


def write_json(run: dict, path) -> None:
    with open(path, "w") as fh:
        json.dump(run, fh, indent=1)
        fh.write("\n")


def load_json(path) -> dict:
    with open(path) as fh:
        run = json.load(fh)
    validate(run)
    return run


def _seconds(t) -> str:
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def _ratio(r) -> str:
    return "-" if r is None else (f"{r:.1f}x" if r >= 10 else f"{r:.2f}x")


def _peer_cell(rec, peer) -> str:
    status = rec["competitors"][peer]
    if status == "ok":
        return f"{_seconds(rec['median_s'][peer])} ({_ratio(rec['speedup'][peer])})"
    return {"n/a": "-"}.get(status, status)


def _bandwidth_cell(rec) -> str:
    if rec["bandwidth_gbps"] is None:
        return "-"
    frac = rec["triad_fraction"]
    return f"{rec['bandwidth_gbps']:.1f}" + (f" ({100 * frac:.0f}%)" if frac is not None else "")


def _compile_cell(rec) -> str:
    c = rec["compile_s"]
    if c["cold"] is None and c["warm"] is None:
        first = rec["first_call_s"].get("fastgrad")
        return "-" if first is None else f"first call {first:.2f} s"
    fmt = lambda t: "-" if t is None else f"{t:.2f}"  # noqa: E731
    return f"{fmt(c['cold'])} / {fmt(c['warm'])} s"


COLUMNS = ("workload", "dtype", "fastgrad", "NumPy ref", "speed-up") + PEERS + ("GB/s (of triad)",
                                                                               "compile cold / warm")


def rows(run) -> list:
    """Table rows (lists of strings) in :data:`COLUMNS` order. Peer cells read "time (x)", where
    x = peer time / fastgrad time (> 1: fastgrad is faster)."""
    out = []
    for rec in run["workloads"]:
        if rec["status"] != "ok":
            reason = rec["status"] + (f": {rec['reason']}" if rec["reason"] else "")
            out.append([rec["name"], rec["dtype"], reason] + [""] * (len(COLUMNS) - 3))
            continue
        out.append([rec["name"], rec["dtype"], _seconds(rec["median_s"]["fastgrad"]),
                    _seconds(rec["median_s"]["reference"]), _ratio(rec["speedup"]["reference"])]
                   + [_peer_cell(rec, p) for p in PEERS] + [_bandwidth_cell(rec), _compile_cell(rec)])
    return out


def header_lines(run) -> list:
    m = run["machine"]
    blas = ", ".join(f"{b['library']} {b.get('version') or ''} x{b['threads']}".replace("  ", " ")
                     for b in m["blas"]) or "none loaded"
    v = m["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("fastgrad", "numpy", "numba", "scipy", "python") if v.get(k))
    peers = ", ".join(f"{k} {v[k]}" if v[k] != "not installed" else f"{k} not installed"
                      for k in ("torch", "jax", "numdifftools"))
    triad = run["triad_gbps"]
    load = m.get("load_average")
    return [f"machine: {m['cpu']}, {m['cores']} cores, {m['platform']}",
            f"threads: numba {m['numba_threading_layer']} x{m['numba_threads']}; BLAS {blas}; "
            f"peers use the same thread count",
            f"libraries: {libs}; peers: {peers}",
            f"triad bandwidth: {triad:.1f} GB/s" if triad else "triad bandwidth: not measured",
            f"taken {m['date']} ({run['mode']} mode)"
            + (f", load average {load[0]:.2f} at the start" if load else ""),
            f"command: {run['command']}"]


def text_table(run) -> str:
    body = [list(COLUMNS)] + rows(run)
    widths = [max(len(r[i]) for r in body) for i in range(len(COLUMNS))]
    # a failed workload's reason spans the columns after dtype: do not let it widen them
    lines = header_lines(run) + [""]
    for k, r in enumerate(body):
        if len(r) > 3 and r[3] == "" and r[2]:
            lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2]]))
            continue
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("speed-up = NumPy reference median / fastgrad median; (x) = peer median / fastgrad median")
    return "\n".join(lines)


def markdown_table(run) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows(run):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    notes = [f"- {line}" for line in header_lines(run)]
    notes.append("- speed-up = NumPy reference median / fastgrad median; "
                 "(x) = peer median / fastgrad median (> 1: fastgrad is faster)")
    return "\n".join(lines + [""] + notes)


def plot(run, path) -> bool:
    """Bar chart of the speed-up over the reference (and over each peer) per workload, log scale.
    Returns False (and writes nothing) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    recs = [r for r in run["workloads"] if r["status"] == "ok"]
    series = [c for c in ("reference",) + PEERS if any(r["speedup"].get(c) for r in recs)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * max(len(recs), 4) * max(len(series), 1) / 1.5 + 1.5))
    height = 0.8 / max(len(series), 1)
    for k, name in enumerate(series):
        ys = [i + k * height for i in range(len(recs))]
        xs = [r["speedup"].get(name) or float("nan") for r in recs]
        ax.barh(ys, xs, height=height, label=f"vs {'NumPy reference' if name == 'reference' else name}")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(recs))])
    ax.set_yticklabels([f"{r['name']} {r['dtype']}" for r in recs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speed-up of fastgrad (other median / fastgrad median)")
    ax.legend(fontsize=7)
    ax.set_title(f"fastgrad bench, {run['machine']['cpu']}, {run['machine']['cores']} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

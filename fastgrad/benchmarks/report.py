"""The JSON record of a ``fastgrad bench`` run and its plain-text / markdown tables and plot.

JSON schema ``fastgrad-bench/2`` (every key always present; None where not measured)::

    {"schema", "command", "mode": "quick"|"full", "isolation": "process"|"same process",
     "rounds", "threads", "machine": {...}, "triad_gbps",
     "load": {"start": {"others_cores", "load_average", "cores", "quiet"}, "end": {...},
              "busy_cores", "busy_workloads": [keys], "quiet"},
     "workloads": [{"key", "name", "family", "dtype", "status": "ok"|"unavailable"|"error",
                    "reason", "median_s": {competitor: s}, "first_call_s": {competitor: s},
                    "repeats": {competitor: n}, "competitors": {competitor: status},
                    "speedup": {competitor: median / fastgrad median}, "bandwidth_gbps",
                    "triad_fraction", "compile_s": {"cold", "warm"},
                    "spread": {competitor: {"min", "q1", "q3", "max", "rel_iqr", "processes",
                                            "runs"}},
                    "bg_load": {competitor: cores}, "busy", "floor_ratio"}]}

Competitors are :data:`fastgrad.benchmarks.workloads.COMPETITORS`; a competitor's status is
"ok", "not installed", "skipped (--quick)", "n/a" (no such competitor for this workload) or
"unavailable"/"error" (the workload's). ``spread.processes`` holds each child process's median,
``spread.runs`` its samples; ``bg_load`` is the most other processes used (cores) while a
competitor's samples were taken; ``floor_ratio`` = fastgrad median / GEMM floor median (the
training steps). Schema 1 files (no isolation) still load for :mod:`~fastgrad.benchmarks.compare`.
"""
from __future__ import annotations

import json

from fastgrad.benchmarks.workloads import BASELINES, COMPETITORS, PEERS

__all__ = ("SCHEMA", "workload_record", "run_record", "validate", "text_table", "markdown_table",
           "header_lines", "write_json", "load_json", "plot", "load_lines", "describe_load")

SCHEMA = "fastgrad-bench/2"
OLD_SCHEMAS = ("fastgrad-bench/1",)
WORKLOAD_KEYS = ("key", "name", "family", "dtype", "status", "reason", "median_s", "first_call_s", "repeats",
                 "competitors", "speedup", "bandwidth_gbps", "triad_fraction", "compile_s", "spread", "bg_load",
                 "busy", "floor_ratio")
RUN_KEYS = ("schema", "command", "mode", "isolation", "rounds", "threads", "machine", "triad_gbps", "load",
            "workloads")
# keys that schema 1 files lack
_NEW_RUN_KEYS = ("isolation", "rounds", "threads", "load")
_NEW_WORKLOAD_KEYS = ("spread", "bg_load", "busy", "floor_ratio")


def workload_record(workload, timing, triad_gbps=None, compile_s=None) -> dict:
    """One workload's JSON record from a timing of :func:`fastgrad.benchmarks.isolated.run_isolated`
    (or :func:`fastgrad.benchmarks.runner.run_workload`, which has no spread or load)."""
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
    medians = timing["medians"]
    floor = medians.get("gemm floor")
    spread, bg = timing.get("spread", {}), timing.get("bg", {})
    return {"key": workload.key, "name": workload.name, "family": workload.family, "dtype": workload.dtype,
            "status": timing["status"], "reason": timing.get("reason"),
            "median_s": {c: medians.get(c) for c in COMPETITORS},
            "first_call_s": {c: timing["first_call"].get(c) for c in COMPETITORS},
            "repeats": {c: timing["repeats"].get(c) for c in COMPETITORS},
            "competitors": competitors,
            "speedup": {c: timing["speedup"].get(c) for c in COMPETITORS if c != "fastgrad"},
            "bandwidth_gbps": bandwidth,
            "triad_fraction": bandwidth / triad_gbps if bandwidth and triad_gbps else None,
            "compile_s": dict({"cold": None, "warm": None}, **(compile_s or {})),
            "spread": {c: spread.get(c) for c in COMPETITORS},
            "bg_load": {c: bg.get(c) for c in COMPETITORS},
            "busy": bool(timing.get("busy", False)),
            "floor_ratio": medians["fastgrad"] / floor if floor and medians.get("fastgrad") else None}


def run_record(records, machine, triad_gbps, command, mode, isolation="process", rounds=None, threads=None,
               load=None) -> dict:
    """The run's JSON record. ``load``: {"start", "end"} samples of
    :func:`fastgrad.benchmarks.load.load_summary` (None: not sampled)."""
    from fastgrad.benchmarks.load import BUSY_CORES
    records = list(records)
    load = dict(load or {})
    busy = [r["key"] for r in records if r.get("busy")]
    samples = [load.get(k) for k in ("start", "end")]
    quiet = not busy and all(s is None or s["quiet"] for s in samples)
    load = {"start": load.get("start"), "end": load.get("end"), "busy_cores": BUSY_CORES,
            "busy_workloads": busy, "quiet": quiet}
    return {"schema": SCHEMA, "command": command, "mode": mode, "isolation": isolation, "rounds": rounds,
            "threads": threads, "machine": machine, "triad_gbps": triad_gbps, "load": load, "workloads": records}


def _upgrade(run: dict) -> dict:
    """A schema 1 record with the keys of schema 2 (None / empty where not measured)."""
    run = dict(run, schema=SCHEMA, **{k: run.get(k) for k in _NEW_RUN_KEYS})
    if run["isolation"] is None:
        run["isolation"] = "same process"
    run["workloads"] = [dict(rec, spread=rec.get("spread") or {}, bg_load=rec.get("bg_load") or {},
                             busy=rec.get("busy", False), floor_ratio=rec.get("floor_ratio"))
                        for rec in run.get("workloads", [])]
    return run


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
    """A run record from ``path`` (schema 1 files are upgraded); ``ValueError`` when malformed."""
    with open(path) as fh:
        run = json.load(fh)
    if run.get("schema") in OLD_SCHEMAS:
        run = _upgrade(run)
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


def _time_cell(rec, name) -> str:
    """"median ±h%", h = half the interquartile range over the median (when there is a spread)."""
    t = _seconds(rec["median_s"][name])
    spread = rec["spread"].get(name)
    return f"{t} ±{50 * spread['rel_iqr']:.0f}%" if spread and len(spread.get("runs") or ()) else t


def _peer_cell(rec, peer) -> str:
    status = rec["competitors"][peer]
    if status == "ok":
        return f"{_time_cell(rec, peer)} ({_ratio(rec['speedup'][peer])})"
    return {"n/a": "-"}.get(status, status)


def _floor_cell(rec) -> str:
    status = rec["competitors"].get("gemm floor", "n/a")
    if status == "ok":
        return f"{_seconds(rec['median_s']['gemm floor'])} ({_ratio(rec['floor_ratio'])})"
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


def _load_cell(rec) -> str:
    loads = [v for v in rec["bg_load"].values() if v is not None]
    if not loads:
        return "-"
    return f"{max(loads):.2f}" + (" BUSY" if rec["busy"] else "")


COLUMNS = (("workload", "dtype", "fastgrad", "NumPy ref", "speed-up", "GEMM floor (step/floor)") + PEERS
           + ("GB/s (of triad)", "compile cold / warm", "others' load"))
assert BASELINES == ("gemm floor",)


def rows(run) -> list:
    """Table rows (lists of strings) in :data:`COLUMNS` order. Peer cells read "time (x)", where
    x = peer time / fastgrad time (> 1: fastgrad is faster); the floor cell "time (fastgrad / floor)"."""
    out = []
    for rec in run["workloads"]:
        if rec["status"] != "ok":
            reason = rec["status"] + (f": {rec['reason']}" if rec["reason"] else "")
            out.append([rec["name"], rec["dtype"], reason] + [""] * (len(COLUMNS) - 3))
            continue
        out.append([rec["name"], rec["dtype"], _time_cell(rec, "fastgrad"), _time_cell(rec, "reference"),
                    _ratio(rec["speedup"]["reference"]), _floor_cell(rec)]
                   + [_peer_cell(rec, p) for p in PEERS]
                   + [_bandwidth_cell(rec), _compile_cell(rec), _load_cell(rec)])
    return out


def describe_load(sample) -> str:
    """"others used x cores, load average a b c" for a sample of :func:`fastgrad.benchmarks.load.load_summary`."""
    if not sample:
        return "not sampled"
    others = sample["others_cores"]
    avg = sample["load_average"]
    text = "others used " + ("? cores" if others is None else f"{others:.2f} cores")
    return text + (f", load average {avg[0]:.2f} {avg[1]:.2f} {avg[2]:.2f}" if avg else "")


def load_lines(run) -> list:
    """The machine's load at the start and the end, and a warning when it was not quiet."""
    load = run["load"] or {}
    lines = [f"machine load: start: {describe_load(load.get('start'))}; end: {describe_load(load.get('end'))}"]
    busy = load.get("busy_workloads") or []
    if not load.get("quiet", True):
        lines.append(f"WARNING: the machine was not quiet (other processes used >= {load['busy_cores']} cores "
                     f"during {len(busy)} workload(s), or at the start/end): the figures, and above all "
                     "the ratios of multi-threaded code, are unreliable; rerun on an idle machine")
    return lines


def header_lines(run) -> list:
    m = run["machine"]
    blas = ", ".join(f"{b['library']} {b.get('version') or ''} x{b['threads']}".replace("  ", " ")
                     + (f" ({b['package']})" if b.get("package") else "")
                     for b in m["blas"]) or "none loaded"
    v = m["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("fastgrad", "numpy", "numba", "scipy", "python") if v.get(k))
    peers = ", ".join(f"{k} {v[k]}" if v[k] != "not installed" else f"{k} not installed"
                      for k in ("torch", "jax", "numdifftools") if k in v)
    triad = run["triad_gbps"]
    threads = run.get("threads")
    if run["isolation"] == "process":
        isolation = (f"isolation: each competitor in its own fresh process, {run['rounds']} round(s) "
                     f"interleaved; threads: {threads or 'each library default'} for every library")
    else:
        isolation = "isolation: none (every competitor in one process: thread pools interfere)"
    return ([f"machine: {m['cpu']}, {m['cores']} cores, {m['platform']}",
             f"threads: numba {m['numba_threading_layer']} x{m['numba_threads']}; BLAS {blas}",
             isolation,
             f"libraries: {libs}; peers: {peers}",
             f"triad bandwidth: {triad:.1f} GB/s" if triad else "triad bandwidth: not measured",
             f"taken {m['date']} ({run['mode']} mode)",
             f"command: {run['command']}"] + load_lines(run))


LEGEND = ("times are medians over all processes' samples, ±h% = half the interquartile range over the "
          "median; speed-up = NumPy reference / fastgrad (for the dask rows: fastgrad in one process / "
          "on the cluster; for the MLPClassifier rows: scikit-learn's MLP / fastgrad's); (x) = peer / fastgrad (> 1: fastgrad is faster); "
          "GEMM floor = the step's matrix products alone, (x) = fastgrad / floor; others' load = most cores "
          "other processes used during a timing (BUSY: >= the threshold after retries)")


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
    lines += ["", LEGEND] + load_lines(run)[1:]  # the warning again, below the table
    return "\n".join(lines)


def markdown_table(run) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows(run):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    notes = [f"- {line}" for line in header_lines(run)]
    notes.append(f"- {LEGEND}")
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
        label = "NumPy reference (scikit-learn's MLP for its rows)" if name == "reference" else name
        ax.barh(ys, xs, height=height, label=f"vs {label}")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(recs))])
    ax.set_yticklabels([f"{r['name']} {r['dtype']}" + (" (busy)" if r.get("busy") else "") for r in recs],
                       fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speed-up of fastgrad (other median / fastgrad median)")
    ax.legend(fontsize=7)
    ax.set_title(f"fastgrad bench ({run['isolation']}), {run['machine']['cpu']}, {run['machine']['cores']} cores"
                 + ("" if run["load"]["quiet"] else " -- machine NOT quiet"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

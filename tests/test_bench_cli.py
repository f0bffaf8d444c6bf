"""``fastgrad bench``: ratios on synthetic timings, the runner, the isolated children, the machine's
load, the JSON schema, peers, filters, the CLI.

No test asserts on a measured duration: only that figures are positive and well formed.
"""
import json
import sys
import types

import numpy as np
import pytest

from fastgrad import cli
from fastgrad.benchmarks import compare, isolated, load, report, runner, workloads
from fastgrad.benchmarks.runner import Budget
from fastgrad.benchmarks.workloads import BASELINES, COMPETITORS, PEERS, Workload

TINY_BUDGET = Budget(seconds=0.002, min_repeats=1, max_repeats=3, sample=0.0002, slow_peers=False)


# ---------------------------------------------------------------- ratios on synthetic timings
def test_speedup_is_other_over_fastgrad():
    assert runner.speedup(3.0, 1.5) == 2.0
    assert runner.speedup(0.5, 2.0) == 0.25
    assert runner.speedup(None, 1.0) is None
    assert runner.speedup(1.0, None) is None
    assert runner.speedup(1.0, 0.0) is None


def test_bandwidth():
    assert runner.bandwidth_gbps(4e9, 2.0) == 2.0
    assert runner.bandwidth_gbps(None, 1.0) is None
    assert runner.bandwidth_gbps(1e9, 0.0) is None


def test_calibrate_loops_short_calls_and_bounds_repeats():
    budget = Budget(seconds=1.0, min_repeats=3, max_repeats=10, sample=0.01)
    assert runner.calibrate(0.001, budget) == (10, 10)   # 100 samples fit: capped at 10
    assert runner.calibrate(0.2, budget) == (1, 5)       # 5 samples of one call fit
    assert runner.calibrate(5.0, budget) == (1, 3)       # at least min_repeats


class FakeClock:
    """A clock that each fake call advances by a fixed cost (the first call: plus a compile cost)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def func(self, cost, first_extra=0.0):
        calls = []

        def f():
            self.now += cost + (first_extra if not calls else 0.0)
            calls.append(1)
        return f


def test_time_interleaved_medians_and_ratio_on_synthetic_timings():
    clock = FakeClock()
    funcs = {"fastgrad": clock.func(0.002, first_extra=3.0), "reference": clock.func(0.010)}
    budget = Budget(seconds=0.1, min_repeats=3, max_repeats=9, sample=0.001)
    out = runner.time_interleaved(funcs, budget, clock=clock)
    assert out["fastgrad"]["median"] == pytest.approx(0.002)
    assert out["reference"]["median"] == pytest.approx(0.010)
    assert out["fastgrad"]["first_call"] == pytest.approx(3.002)  # compilation stays out of the samples
    assert out["reference"]["repeats"] == 9 and out["fastgrad"]["repeats"] == 9
    assert runner.speedup(out["reference"]["median"], out["fastgrad"]["median"]) == pytest.approx(5.0)


def test_time_interleaved_single_shot_uses_the_first_call():
    clock = FakeClock()
    funcs = {"fastgrad": clock.func(0.001), "slow": clock.func(7.0)}
    out = runner.time_interleaved(funcs, TINY_BUDGET, single_shot={"slow"}, clock=clock)
    assert out["slow"]["repeats"] == 1 and out["slow"]["median"] == pytest.approx(7.0)


# ---------------------------------------------------------------- synthetic workloads
def _synthetic(factories, name="synthetic"):
    def inputs(dtype):
        return {"x": np.arange(64, dtype=dtype)}
    return Workload(name, "test", "float64", inputs, factories, bytes_moved=2 * 64 * 8, compile_key="synthetic")


def _ok(d):
    return lambda: d["x"] * 2.0


def _missing(d):
    raise ImportError("No module named 'not_a_peer'")


def test_missing_peer_is_reported_not_installed():
    w = _synthetic({"fastgrad": _ok, "reference": _ok, "torch": _missing})
    timing = runner.run_workload(w, TINY_BUDGET)
    assert timing["status"] == "ok"
    assert timing["competitors"]["torch"] == "not installed"
    rec = report.workload_record(w, timing, triad_gbps=10.0)
    assert rec["competitors"]["torch"] == "not installed"
    assert rec["competitors"]["numdifftools"] == "n/a"
    assert rec["median_s"]["torch"] is None
    assert rec["median_s"]["fastgrad"] > 0 and rec["speedup"]["reference"] > 0
    assert rec["bandwidth_gbps"] > 0 and rec["triad_fraction"] == pytest.approx(rec["bandwidth_gbps"] / 10.0)
    row = dict(zip(report.COLUMNS, report.rows({"workloads": [rec]})[0]))
    assert row["torch"] == "not installed" and row["numdifftools"] == "-"


def test_unavailable_module_and_errors_do_not_crash():
    unavailable = runner.run_workload(_synthetic({"fastgrad": _missing, "reference": _ok}), TINY_BUDGET)
    assert unavailable["status"] == "unavailable" and "not_a_peer" in unavailable["reason"]

    def broken(d):
        def f():
            raise RuntimeError("boom")
        return f
    error = runner.run_workload(_synthetic({"fastgrad": broken, "reference": _ok}), TINY_BUDGET)
    assert error["status"] == "error" and "boom" in error["reason"]
    rec = report.workload_record(_synthetic({"fastgrad": broken, "reference": _ok}), error)
    assert rec["competitors"]["fastgrad"] == "error"
    assert "error: RuntimeError: boom" in report.text_table(_run([rec]))


def test_slow_peer_skipped_in_quick_mode():
    w = Workload("s", "test", "float64", lambda dt: {"x": np.ones(3)},
                 {"fastgrad": _ok, "reference": _ok, "numdifftools": _ok}, slow=frozenset({"numdifftools"}))
    funcs, absent = w.build(runner.QUICK)
    assert set(funcs) == {"fastgrad", "reference"} and absent == {"numdifftools": "skipped (--quick)"}
    funcs, absent = w.build(runner.FULL)
    assert set(funcs) == {"fastgrad", "reference", "numdifftools"} and not absent


# ---------------------------------------------------------------- every real workload, at toy sizes
@pytest.mark.parametrize("workload", workloads.TINY_WORKLOADS, ids=lambda w: w.key)
def test_each_workload_runs_and_gives_positive_figures(workload):
    timing = runner.run_workload(workload, TINY_BUDGET, competitors=("fastgrad", "reference"))
    assert timing["status"] == "ok", timing["reason"]
    for name in ("fastgrad", "reference"):
        assert timing["medians"][name] > 0 and timing["repeats"][name] >= 1
    assert timing["speedup"]["reference"] > 0
    if workload.bytes_moved:
        assert timing["bandwidth_gbps"] > 0


@pytest.mark.parametrize("key", ["train_step 784-256-128-10 b4 [float32]", "hessian rosenbrock n=6 [float64]",
                                 "relu fwd+bwd 1e3 [float32]"])
def test_peers_run_or_are_reported_missing(key):
    workload = workloads.find(key)
    timing = runner.run_workload(workload, TINY_BUDGET)
    assert timing["status"] == "ok", timing["reason"]
    for peer in workload.peers():
        status = timing["competitors"][peer]
        assert status in ("ok", "not installed", "skipped (--quick)")
        if status == "ok":
            assert timing["medians"][peer] > 0 and timing["speedup"][peer] > 0


def test_full_table_covers_issue_6():
    keys = {w.key for w in workloads.WORKLOADS}
    for name in ("relu", "gelu", "sigmoid", "tanh", "softmax", "silu"):
        assert f"{name} fwd+bwd 1e6 [float32]" in keys
    for key in ("softmax_cross_entropy (4096,1000) [float32]", "dense 784->256 relu fwd+bwd b32 [float32]",
                "train_step 784-256-128-10 b128 [float32]", "train_step 32-64-64-1 mse b32 [float32]",
                "dense 784->256 relu fwd+bwd b2048 [float32]", "adam step 1e7 [float32]",
                "adamw step 1e7 [float32]", "sgd_momentum step 1e7 [float32]", "clip_grad_norm 1e7 [float32]",
                "hessian rosenbrock n=200 [float64]", "train_step 784-256-128-10 b32 [float32]",
                "train_step 784-256-128-10 b1024 [float32]"):
        assert key in keys
    assert len(keys) == len(workloads.WORKLOADS)


def test_filter_selects_by_name_or_family():
    chosen = workloads.select(["ADAM"])
    assert [w.key for w in chosen] == ["adam step 1e7 [float32]", "adamw step 1e7 [float32]"]
    assert {w.family for w in workloads.select(["optim"])} == {"optim"}
    assert [w.key for w in workloads.select(["leaky", "hessian"])] == [
        "leaky_relu fwd+bwd 1e6 [float32]", "hessian rosenbrock n=200 [float64]",
        "leaky_relu fwd+bwd 1e4 [float32]", "leaky_relu fwd+bwd 1e6 [float64]"]
    # only when named: the Dask rows (they start clusters), the synthetic scikit-learn rows (a minute
    # of its fit) and the activations' other sizes and dtype
    opt_in = [w.key for w in workloads.WORKLOADS if w.family == "distributed" or "synthetic" in w.key
              or (w.family == "activations" and w.key.split()[-2:] != ["1e6", "[float32]"])]
    assert [w.key for w in workloads.WORKLOADS if w.opt_in] == opt_in
    assert workloads.select([]) == tuple(w for w in workloads.WORKLOADS if w.key not in opt_in)
    assert [w.key for w in workloads.select(["distributed"])] == [
        w.key for w in workloads.WORKLOADS if w.family == "distributed"] != []
    assert workloads.select(["no-such-workload"]) == ()
    with pytest.raises(KeyError):
        workloads.find("no-such-workload")


# ---------------------------------------------------------------- JSON schema
def _run(records, load_=None):
    machine = {"cpu": "test cpu", "cores": 2, "platform": "test", "numba_threading_layer": "omp",
               "numba_threads": 2, "blas": [{"library": "openblas", "version": "0", "threads": 2}],
               "load_average": [0.1, 0.1, 0.1], "date": "2026-01-01T00:00:00+00:00",
               "versions": {"fastgrad": "0", "numpy": "0", "numba": "0", "scipy": "0", "python": "3",
                            "torch": "not installed", "jax": "not installed", "numdifftools": "not installed"}}
    return report.run_record(records, machine, 20.0, "python -m fastgrad bench", "quick", rounds=2, load=load_)


def _record(key, ratio, status="ok"):
    timing = {"status": status, "reason": None, "medians": {"fastgrad": 1.0, "reference": ratio},
              "first_call": {"fastgrad": 2.0, "reference": ratio}, "repeats": {"fastgrad": 3, "reference": 3},
              "competitors": {"fastgrad": "ok", "reference": "ok"},
              "speedup": {"reference": ratio}, "bandwidth_gbps": None}
    w = Workload(key, "test", "float32", None, {"fastgrad": None, "reference": None})
    return report.workload_record(w, timing)


def test_json_schema_is_stable(tmp_path):
    run = _run([_record("a", 2.0)])
    assert tuple(run) == report.RUN_KEYS == (
        "schema", "command", "mode", "isolation", "rounds", "threads", "machine", "triad_gbps", "load", "workloads")
    rec = run["workloads"][0]
    assert tuple(rec) == report.WORKLOAD_KEYS == (
        "key", "name", "family", "dtype", "status", "reason", "median_s", "first_call_s", "repeats",
        "competitors", "speedup", "bandwidth_gbps", "triad_fraction", "compile_s", "spread", "bg_load", "busy",
        "floor_ratio")
    assert tuple(rec["median_s"]) == COMPETITORS == ("fastgrad", "reference") + BASELINES + PEERS
    assert tuple(rec["speedup"]) == COMPETITORS[1:]
    assert set(rec["compile_s"]) == {"cold", "warm"}
    assert set(run["load"]) == {"start", "end", "busy_cores", "busy_workloads", "quiet"}
    path = tmp_path / "run.json"
    report.write_json(run, path)
    assert report.load_json(path) == json.loads(json.dumps(run))
    broken = dict(run, schema="other/9")
    with pytest.raises(ValueError, match="schema"):
        report.validate(broken)
    with pytest.raises(ValueError, match="speedup"):
        report.validate(dict(run, workloads=[{k: v for k, v in rec.items() if k != "speedup"}]))


def test_schema_1_files_still_load_for_compare(tmp_path):
    run = _run([_record("a", 2.0)])
    old = {k: v for k, v in run.items() if k not in ("isolation", "rounds", "threads", "load")}
    old["schema"] = "fastgrad-bench/1"
    old["workloads"] = [{k: v for k, v in rec.items() if k not in ("spread", "bg_load", "busy", "floor_ratio")}
                        for rec in run["workloads"]]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = report.load_json(path)
    assert loaded["schema"] == report.SCHEMA and loaded["isolation"] == "same process"
    assert [r["change"] for r in compare.compare(loaded, run)] == [0.0]


def test_tables_show_ratio_and_machine():
    run = _run([_record("a", 4.0)])
    text = report.text_table(run)
    assert "4.00x" in text and "test cpu" in text and "omp x2" in text and "torch not installed" in text
    md = report.markdown_table(run)
    assert md.startswith("| workload |") and "| a | float32 | 1.00 s | 4.00 s | 4.00x |" in md


# ---------------------------------------------------------------- regressions
def test_compare_flags_worsened_ratios():
    old = _run([_record("a", 4.0), _record("b", 2.0), _record("c", 3.0), _record("gone", 1.0)])
    new = _run([_record("a", 3.0), _record("b", 1.9), _record("c", 6.0), _record("new", 1.0)])
    rows = {r["key"].split()[0]: r for r in compare.compare(old, new, threshold=0.10)}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["regressed"] and rows["a"]["change"] == pytest.approx(-0.25)
    assert not rows["b"]["regressed"]  # -5% is within the threshold
    assert not rows["c"]["regressed"] and rows["c"]["change"] == pytest.approx(1.0)
    assert "1 of 3 workloads" in compare.format_comparison(list(rows.values()), 0.10)


def test_compare_main_exit_status(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    report.write_json(_run([_record("a", 4.0)]), old)
    report.write_json(_run([_record("a", 2.0)]), new)
    assert compare.main([str(old), str(new)]) == 1
    assert compare.main([str(old), str(old)]) == 0
    assert "REGRESSED" in capsys.readouterr().out


# ---------------------------------------------------------------- the machine's load
def test_load_meter_and_summary():
    with load.LoadMeter() as meter:
        sum(range(10000))
    assert meter.cores is None or meter.cores >= 0
    sample = load.load_summary(seconds=0.05)
    assert set(sample) == {"others_cores", "load_average", "cores", "quiet"} and sample["cores"] >= 1
    assert sample["others_cores"] is None or sample["others_cores"] >= 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_load_meter_sees_a_busy_process():
    import subprocess
    import time
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        with load.LoadMeter() as meter:
            time.sleep(0.5)
    finally:
        burner.kill()
        burner.wait()
    assert meter.cores > 0.5  # one core taken by another process (more when the machine is shared)


def test_is_quiet_thresholds():
    assert load.is_quiet(0.0, [0.1, 0.1, 0.1], cores=2)
    assert not load.is_quiet(load.BUSY_CORES, [0.1, 0.1, 0.1], cores=2)   # others use the cores now
    assert not load.is_quiet(0.0, [1.5, 0.1, 0.1], cores=2)               # > 0.5 per core over a minute
    assert load.is_quiet(None, None, cores=2)                             # unknown figures do not count


def test_the_end_of_a_run_is_judged_by_the_others_measured_use(monkeypatch):
    """The load average after a benchmark counts the benchmark's own last minute: at the end, the
    other processes' measured use decides (a run on an idle machine was reported as not quiet)."""
    monkeypatch.setattr(load, "others_load", lambda seconds: 0.01)
    monkeypatch.setattr(load, "load_average", lambda: [1.4, 1.2, 1.2])
    assert not load.load_summary()["quiet"]
    assert load.load_summary(after_own_work=True)["quiet"]
    monkeypatch.setattr(load, "others_load", lambda seconds: 0.5)
    assert not load.load_summary(after_own_work=True)["quiet"]
    monkeypatch.setattr(load, "others_load", lambda seconds: None)  # not measurable: the load average decides
    assert not load.load_summary(after_own_work=True)["quiet"]


# ---------------------------------------------------------------- isolated children (synthetic records)
def _child_record(competitor, samples, bg=0.0, status="ok", key="k"):
    return {"key": key, "competitor": competitor, "status": status, "reason": None if status == "ok" else "why",
            "first_call": samples[0] if samples else None, "number": 1, "samples": samples, "bg": bg}


def test_merge_pools_the_rounds_and_keeps_their_spread():
    recs = [_child_record("fastgrad", [1.0, 3.0]), _child_record("reference", [4.0, 4.0]),
            _child_record("fastgrad", [2.0, 2.0], bg=0.05), _child_record("reference", [8.0, 8.0]),
            _child_record("gemm floor", [0.5])]
    timing = isolated.merge(recs, {"torch": "not installed"}, bytes_moved=8.0)
    assert timing["status"] == "ok" and not timing["busy"]
    assert timing["medians"] == {"fastgrad": 2.0, "reference": 6.0, "gemm floor": 0.5}
    assert timing["repeats"]["fastgrad"] == 4 and timing["first_call"]["fastgrad"] == 1.0
    sp = timing["spread"]["fastgrad"]
    assert sp["min"] == 1.0 and sp["max"] == 3.0 and sp["processes"] == [2.0, 2.0] and sp["runs"] == [[1.0, 3.0],
                                                                                                        [2.0, 2.0]]
    assert sp["q1"] <= 2.0 <= sp["q3"] and sp["rel_iqr"] == pytest.approx((sp["q3"] - sp["q1"]) / 2.0)
    assert timing["speedup"]["reference"] == 3.0 and timing["speedup"]["gemm floor"] == 0.25
    assert timing["bandwidth_gbps"] == pytest.approx(8.0 / 2.0 / 1e9)
    assert timing["competitors"]["torch"] == "not installed" and timing["bg"]["fastgrad"] == 0.05
    w = Workload("k", "model", "float32", None, {"fastgrad": None, "reference": None, "gemm floor": None})
    rec = report.workload_record(w, timing)
    assert rec["floor_ratio"] == 4.0 and rec["spread"]["fastgrad"]["processes"] == [2.0, 2.0]
    row = dict(zip(report.COLUMNS, report.rows({"workloads": [rec]})[0]))
    assert row["GEMM floor (step/floor)"] == "500 ms (4.00x)" and row["fastgrad"].startswith("2.00 s ±")


def test_merge_marks_busy_and_failed_children():
    busy = isolated.merge([_child_record("fastgrad", [1.0], bg=load.BUSY_CORES + 0.5),
                           _child_record("reference", [2.0])])
    assert busy["busy"] and busy["bg"]["fastgrad"] == load.BUSY_CORES + 0.5
    failed = isolated.merge([_child_record("fastgrad", [], status="error"), _child_record("reference", [2.0])])
    assert failed["status"] == "error" and failed["reason"] == "why"
    peer_failed = isolated.merge([_child_record("fastgrad", [1.0]), _child_record("torch", [], status="error")])
    assert peer_failed["status"] == "ok" and peer_failed["competitors"]["torch"] == "error"


def test_plan_skips_slow_absent_and_unselected(monkeypatch):
    monkeypatch.setattr(isolated, "_installed", lambda name: name != "jax")
    w = workloads.find("hessian rosenbrock n=6 [float64]")
    todo, skipped = isolated.plan([w], runner.QUICK)
    assert todo == {"fastgrad": [w.key], "reference": [w.key]}
    assert skipped[w.key] == {"jax": "not installed", "numdifftools": "skipped (--quick)"}
    todo, skipped = isolated.plan([w], runner.FULL, competitors=["numdifftools"])
    assert todo == {"fastgrad": [w.key], "numdifftools": [w.key]} and skipped[w.key]["reference"] == "not selected"


def test_report_warns_when_the_machine_was_not_quiet():
    rec = _record("a", 2.0)
    quiet_sample = {"others_cores": 0.0, "load_average": [0.1, 0.1, 0.1], "cores": 2, "quiet": True}
    quiet = _run([rec], {"start": quiet_sample, "end": quiet_sample})
    assert quiet["load"]["quiet"] and "WARNING" not in report.text_table(quiet)
    assert "machine load: start: others used 0.00 cores, load average 0.10" in report.text_table(quiet)
    busy = _run([dict(rec, busy=True)], {"start": quiet_sample, "end": quiet_sample})
    assert not busy["load"]["quiet"] and busy["load"]["busy_workloads"] == ["a [float32]"]
    assert report.text_table(busy).count("WARNING: the machine was not quiet") == 2  # above and below the table
    loaded = _run([rec], {"start": dict(quiet_sample, others_cores=1.5, quiet=False), "end": quiet_sample})
    assert "WARNING" in report.markdown_table(loaded)


def test_gemm_floor_does_the_steps_products():
    w = workloads.find("train_step 32-64-64-1 mse b4 [float32]")
    data = w.inputs(np.dtype("float32"))
    step = workloads.gemm_floor((32, 64, 64, 1))(data)
    assert step() is None  # runs; the products go into preallocated outputs


# ---------------------------------------------------------------- children in fresh processes
def test_child_process_times_its_competitor_alone():
    """Competitors with nothing to compile (the NumPy reference, the GEMM floor), in real children."""
    keys = ["relu fwd+bwd 1e3 [float32]", "train_step 784-256-128-10 b4 [float32]"]
    recs = isolated.run_child("reference", keys, TINY_BUDGET)
    assert [r["key"] for r in recs] == keys
    for r in recs:
        assert r["status"] == "ok", r["reason"]
        assert r["samples"] and all(t > 0 for t in r["samples"]) and r["first_call"] > 0
        assert r["bg"] is None or r["bg"] >= 0
    floor = isolated.run_child("gemm floor", keys, TINY_BUDGET)
    assert floor[0]["status"] == "n/a"  # relu has no GEMM floor
    assert floor[1]["status"] == "ok" and floor[1]["samples"][0] > 0


def test_child_failure_is_recorded_not_raised():
    recs = isolated.run_child("reference", ["no-such-workload [float32]"], TINY_BUDGET)
    assert recs[0]["status"] == "error" and "no workload" in recs[0]["reason"]


# ---------------------------------------------------------------- the command
def test_cli_quick_filter_json_isolated(tmp_path, capsys):
    path, perf = tmp_path / "quick.json", tmp_path / "quick.pyperf.json"
    assert cli.main(["bench", "--quick", "--filter", "leaky_relu fwd+bwd 1e6 [float32]", "--competitor", "reference", "--json", str(path),
                     "--pyperf", str(perf)]) == 0
    out = capsys.readouterr().out
    assert "leaky_relu fwd+bwd 1e6" in out and "machine:" in out and "machine load: start:" in out
    assert "isolation: each competitor in its own fresh process, 2 round(s)" in out
    run = report.load_json(path)
    assert run["mode"] == "quick" and [r["key"] for r in run["workloads"]] == ["leaky_relu fwd+bwd 1e6 [float32]"]
    assert run["isolation"] == "process" and run["rounds"] == 2
    rec = run["workloads"][0]
    assert rec["status"] == "ok" and rec["median_s"]["fastgrad"] > 0 and rec["speedup"]["reference"] > 0
    assert len(rec["spread"]["fastgrad"]["processes"]) == 2 and len(rec["spread"]["reference"]["processes"]) == 2
    assert rec["competitors"]["torch"] in ("not selected",) and rec["competitors"]["gemm floor"] == "n/a"
    assert rec["compile_s"] == {"cold": None, "warm": None}  # --quick skips the subprocesses
    assert run["machine"]["numba_threads"] >= 1 and run["machine"]["cores"] >= 1
    if perf.exists():  # pyperf installed
        pyperf = pytest.importorskip("pyperf")
        suite = pyperf.BenchmarkSuite.load(str(perf))
        assert sorted(suite.get_benchmark_names()) == ["leaky_relu fwd+bwd 1e6 [float32] fastgrad",
                                                       "leaky_relu fwd+bwd 1e6 [float32] reference"]
        assert suite.get_benchmark("leaky_relu fwd+bwd 1e6 [float32] fastgrad").get_nrun() == 2


def _fake_isolated(chosen, budget, **kwargs):
    timing = {"status": "ok", "reason": None, "medians": {"fastgrad": 1e-3, "reference": 4e-3},
              "first_call": {"fastgrad": 1.0, "reference": 4e-3}, "repeats": {"fastgrad": 2, "reference": 2},
              "competitors": {"fastgrad": "ok", "reference": "ok"}, "speedup": {"reference": 4.0},
              "bandwidth_gbps": None, "spread": {}, "bg": {}, "busy": False}
    return {w.key: timing for w in chosen}


def test_cli_markdown_list_and_bad_arguments(capsys, monkeypatch):
    monkeypatch.setattr(isolated, "run_isolated", _fake_isolated)
    assert cli.main(["bench", "--quick", "--markdown", "--filter", "sgd_momentum"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| workload |") and "| sgd_momentum step 1e7 | float32 | 1 ms | 4 ms | 4.00x |" in out
    assert cli.main(["bench", "--list", "--filter", "clip"]) == 0
    assert capsys.readouterr().out.split("\n")[0] == "clip_grad_norm 1e7 [float32]"
    assert cli.main(["bench", "--filter", "no-such-workload"]) == 2
    assert cli.main(["bench", "--rounds", "0", "--filter", "clip"]) == 2


def test_cli_version_help_and_peers(capsys):
    import fastgrad
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"fastgrad {fastgrad.__version__}"
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastgrad") and "bench" in out and "demo" in out
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for peer in PEERS:
        assert peer in text


def test_cli_demo_passes_its_arguments(monkeypatch):
    seen = []
    fake = types.ModuleType("fastgrad.demo")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "fastgrad.demo", fake)
    assert cli.main(["demo", "--epochs", "2"]) == 0
    assert seen == [["--epochs", "2"]]


@pytest.mark.slow
def test_compile_time_in_fresh_processes():
    times = runner.compile_times("clip_grad_norm 1e2 [float32]")  # the cheapest kernels to compile
    assert times["cold"] > 0 and times["warm"] > 0


def test_plot_writes_a_png_when_matplotlib_is_present(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedup.png"
    assert report.plot(_run([_record("a", 4.0), _record("b", 0.5)]), path)
    assert path.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- bench/bench_threads.py
def _bench_script(name):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thread_policy_summary_gives_default_over_best():
    threads = _bench_script("bench_threads")
    res = {"default": {"median": 0.25, "times": [0.25], "bg": [2.1]},
           1: {"median": 0.2, "times": [0.2], "bg": [2.0]}, 2: {"median": 0.4, "times": [0.4], "bg": [2.0]}}
    quiet = {"default": {"median": 0.1, "times": [0.1], "bg": [0.0]},
             1: {"median": 0.12, "times": [0.12], "bg": [0.0]}, 2: {"median": 0.1, "times": [0.1], "bg": [0.05]}}
    lines = threads.summarize([(threads.SCENARIOS[1], res), (threads.SCENARIOS[2], quiet)], ["default", 1, 2])
    busy_row, quiet_row = lines[1], lines[2]
    assert busy_row.startswith("b32 two busy processes") and "1.25x" in busy_row
    assert busy_row.split("x")[-2].endswith("1.3") and " met" in busy_row and "NOT met" not in busy_row
    assert "+0.10 cores beyond the burners" in busy_row and "not quiet" not in busy_row
    assert quiet_row.startswith("b1024 quiet") and "1.00x" in quiet_row and "NOT met" not in quiet_row
    quiet[2]["bg"] = [1.5]  # another process took a core and a half during a "quiet" scenario
    assert "(machine not quiet: unreliable)" in threads.summarize([(threads.SCENARIOS[2], quiet)], ["default", 1, 2])[1]
    res[1]["median"] = 0.1  # default 2.5x the best: the target is missed
    missed = threads.summarize([(threads.SCENARIOS[1], res)], ["default", 1, 2])[1]
    assert "2.50x" in missed and "NOT met" in missed


def test_thread_policy_burners_are_started_and_killed():
    threads = _bench_script("bench_threads")
    procs = threads._burners(2)
    try:
        assert all(p.poll() is None for p in procs)
    finally:
        threads._stop(procs)
    assert all(p.returncode is not None for p in procs)


def test_demo_says_when_the_machine_is_busy():
    from fastgrad import demo
    quiet = {"others_cores": 0.01, "load_average": [0.2, 0.2, 0.2], "cores": 2, "quiet": True}
    assert demo._load_line(quiet).endswith("on 2 cores (quiet)")
    busy = dict(quiet, others_cores=1.5, quiet=False)
    line = demo._load_line(busy)
    assert "others used 1.50 cores" in line and "BUSY: the timings below are unreliable" in line


def test_demo_ratios_keep_their_digits():
    """A busy machine's ratio of 0.04 must not print as 0.0 (the demo's tables)."""
    from fastgrad.demo import format_ratio
    assert [format_ratio(r) for r in (0.0412, 0.9, 2.345, 12.34, 150.0)] == ["0.04", "0.90", "2.35", "12.3", "150.0"]

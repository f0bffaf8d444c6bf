"""The ``fastgrad`` command (also ``python -m fastgrad``): ``bench``, ``warmup`` and ``demo``.

    fastgrad bench [--quick] [--filter WORD ...] [--json PATH] [--markdown] [--plot PATH]
                   [--compare OLD.json] [--threshold 0.10] [--compile-time | --no-compile-time]
                   [--threads N] [--list]
    fastgrad warmup [--dtype float32 float64]
    fastgrad demo [ARGS ...]

``bench`` measures; it never fails because of a timing (exit status 0 once the report is
written; 2 for bad arguments such as a filter that selects nothing).
"""
from __future__ import annotations

import argparse
import sys

__all__ = ("main", "build_parser")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgrad", description="fastgrad's command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="time fastgrad against its NumPy references and the peers present",
                           description="Time fastgrad against its NumPy references and the installed peers "
                                       "(torch, numdifftools), interleaved in one process, and print a table.")
    bench.add_argument("--quick", action="store_true",
                       help="short timings, no compile-time subprocesses, no slow peers (about a minute)")
    bench.add_argument("--filter", action="append", metavar="WORD", default=[],
                       help="only workloads whose name or family contains WORD (repeatable: any of them)")
    bench.add_argument("--json", metavar="PATH", help="write every figure to PATH as JSON")
    bench.add_argument("--markdown", action="store_true", help="print the table as markdown (for the README)")
    bench.add_argument("--plot", metavar="PATH", help="save a bar chart of the speed-ups (needs matplotlib)")
    bench.add_argument("--compare", metavar="OLD.json", help="list workloads whose speed-up fell since OLD.json")
    bench.add_argument("--threshold", type=float, default=0.10,
                       help="with --compare: relative loss of speed-up that counts (default 0.10)")
    timing = bench.add_mutually_exclusive_group()
    timing.add_argument("--compile-time", dest="compile_time", action="store_true", default=None,
                        help="measure first-call time in fresh processes, cold and warm disk cache "
                             "(default: on, off with --quick)")
    timing.add_argument("--no-compile-time", dest="compile_time", action="store_false")
    bench.add_argument("--threads", type=int, metavar="N",
                       help="threads for Numba, the BLAS and the peers (default: as configured)")
    bench.add_argument("--list", action="store_true", help="list the selected workloads and exit")
    bench.set_defaults(handler=_bench)

    warm = sub.add_parser("warmup", help="compile every kernel ahead of use (fills the on-disk cache)",
                          description="Compile fastgrad's kernels now, for Docker images and CI caches, "
                                      "and print the seconds per family.")
    warm.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"],
                      help="dtypes to compile for (default: float32)")
    warm.set_defaults(handler=lambda args: __import__("fastgrad._warmup", fromlist=["main"]).main(args.dtype))

    demo = sub.add_parser("demo", help="train a small model and show what fastgrad does", add_help=False)
    demo.add_argument("args", nargs=argparse.REMAINDER)
    demo.set_defaults(handler=_demo)
    return parser


def _demo(args) -> int:
    import importlib
    try:
        demo = importlib.import_module("fastgrad.demo")  # written separately; loaded only here
    except ModuleNotFoundError as exc:
        if exc.name != "fastgrad.demo":
            raise
        print("demo not available yet", file=sys.stderr)
        return 1
    result = demo.main(args.args)
    return result if isinstance(result, int) else 0


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _bench(args) -> int:
    from fastgrad.benchmarks import compare, machine, report, runner, workloads

    chosen = workloads.select(args.filter)
    if not chosen:
        print(f"no workload matches {args.filter}; known: {[w.key for w in workloads.WORKLOADS]}", file=sys.stderr)
        return 2
    if args.list:
        for w in chosen:
            print(w.key)
        return 0
    if args.threads is not None:
        import fastgrad
        fastgrad.set_num_threads(args.threads)
    budget = runner.QUICK if args.quick else runner.FULL
    measure_compile = (not args.quick) if args.compile_time is None else args.compile_time

    info = machine.machine_info()
    _progress(f"fastgrad bench ({'quick' if args.quick else 'full'}): {len(chosen)} workloads; "
              f"numba {info['numba_threading_layer']} x{info['numba_threads']}")
    triad = machine.triad_gbps(repeats=3 if args.quick else 7)
    records, compiled = [], {}
    for k, w in enumerate(chosen, 1):
        _progress(f"[{k}/{len(chosen)}] {w.key}")
        timing = runner.run_workload(w, budget)
        compile_s = None
        if measure_compile and timing["status"] == "ok":
            if w.compile_key not in compiled:
                compiled[w.compile_key] = runner.compile_times(w.key)
            compile_s = compiled[w.compile_key]
        records.append(report.workload_record(w, timing, triad, compile_s))

    command = "python -m fastgrad " + " ".join(args.argv)
    run = report.run_record(records, info, triad, command, "quick" if args.quick else "full")
    print(report.markdown_table(run) if args.markdown else report.text_table(run))
    if args.json:
        report.write_json(run, args.json)
        _progress(f"wrote {args.json}")
    if args.plot:
        _progress(f"wrote {args.plot}" if report.plot(run, args.plot) else "matplotlib not installed: no plot")
    if args.compare:
        rows = compare.compare(report.load_json(args.compare), run, args.threshold)
        print()
        print(compare.format_comparison(rows, args.threshold))
    return 0


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # the demo parses its own options (argparse's REMAINDER drops leading ones)
        from fastgrad.demo import main as demo_main
        return demo_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    return args.handler(args)

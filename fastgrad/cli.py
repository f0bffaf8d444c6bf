"""The ``fastgrad`` command (also ``python -m fastgrad``): ``bench``, ``warmup`` and ``demo``.

    fastgrad --version
    fastgrad bench [--quick] [--filter WORD ...] [--json PATH] [--markdown] [--plot PATH]
                   [--pyperf PATH] [--compare OLD.json] [--threshold 0.10]
                   [--compile-time | --no-compile-time] [--threads N] [--rounds R]
                   [--competitor NAME ...] [--list]
    fastgrad warmup [--dtype float32 float64]
    fastgrad demo [ARGS ...]

``fastgrad`` alone prints this help. ``bench`` measures; it never fails because of a timing (exit
status 0 once the report is written; 2 for bad arguments such as a filter that selects nothing).
"""
from __future__ import annotations

import argparse
import sys

__all__ = ("main", "build_parser")


def _version() -> str:
    import fastgrad
    return f"fastgrad {fastgrad.__version__}"


def _add_bench(sub) -> None:
    from fastgrad.benchmarks.workloads import COMPETITORS, PEERS
    peers = ", ".join(PEERS)
    bench = sub.add_parser(
        "bench", help="time fastgrad against its NumPy references and the peers present, process-isolated",
        description=f"Time fastgrad against its NumPy references, the GEMM floor of the training steps and the "
                    f"installed peers ({peers}), each in its own fresh process at the same thread count, "
                    "the processes interleaved over rounds, and print a table of medians, spreads and the "
                    "machine's load (with a warning when the machine was not quiet).")
    bench.add_argument("--quick", action="store_true",
                       help="short timings, 2 rounds, no compile-time subprocesses, no slow peers "
                            "(a minute or two with a warm kernel cache)")
    bench.add_argument("--filter", action="append", metavar="WORD", default=[],
                       help="only workloads whose name or family contains WORD (repeatable: any of them)")
    bench.add_argument("--json", metavar="PATH", help="write every figure to PATH as JSON")
    bench.add_argument("--markdown", action="store_true", help="print the table as markdown (for the README)")
    bench.add_argument("--plot", metavar="PATH", help="save a bar chart of the speed-ups (needs matplotlib)")
    bench.add_argument("--pyperf", metavar="PATH",
                       help="also write the samples as a pyperf suite, for `python -m pyperf compare_to` "
                            "(needs pyperf: pip install fastgrad[bench])")
    bench.add_argument("--compare", metavar="OLD.json", help="list workloads whose speed-up fell since OLD.json")
    bench.add_argument("--threshold", type=float, default=0.10,
                       help="with --compare: relative loss of speed-up that counts (default 0.10)")
    timing = bench.add_mutually_exclusive_group()
    timing.add_argument("--compile-time", dest="compile_time", action="store_true", default=None,
                        help="measure first-call time in fresh processes, cold and warm disk cache "
                             "(default: on, off with --quick)")
    timing.add_argument("--no-compile-time", dest="compile_time", action="store_false")
    bench.add_argument("--threads", type=int, metavar="N",
                       help="threads for Numba, the BLAS and every peer (default: each library's default, "
                            "which is every core)")
    bench.add_argument("--rounds", type=int, metavar="R",
                       help="child processes per competitor, interleaved (default 2 with --quick, else 3)")
    bench.add_argument("--competitor", action="append", metavar="NAME", choices=COMPETITORS[1:],
                       help="time fastgrad only against NAME (repeatable; default: every competitor): "
                            + ", ".join(COMPETITORS[1:]))
    bench.add_argument("--list", action="store_true", help="list the selected workloads and exit")
    bench.set_defaults(handler=_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgrad", description="fastgrad's command line.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command")
    _add_bench(sub)
    warm = sub.add_parser("warmup", help="compile every kernel ahead of use (fills the on-disk cache)",
                          description="Compile fastgrad's kernels now, for Docker images and CI caches, "
                                      "and print the seconds per family.")
    warm.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"],
                      help="dtypes to compile for (default: float32)")
    warm.set_defaults(handler=_warmup)
    demo = sub.add_parser("demo", help="train a small model and show what fastgrad does", add_help=False)
    demo.add_argument("args", nargs=argparse.REMAINDER)
    demo.set_defaults(handler=_demo)
    return parser


def _warmup(args) -> int:
    from fastgrad._warmup import main
    return main(args.dtype)


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
    from fastgrad.benchmarks import compare, isolated, load, machine, report, runner, workloads

    chosen = workloads.select(args.filter)
    if not chosen:
        print(f"no workload matches {args.filter}; known: {[w.key for w in workloads.WORKLOADS]}", file=sys.stderr)
        return 2
    if args.list:
        for w in chosen:
            print(w.key)
        return 0
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 3)
    if rounds < 1:
        print(f"--rounds must be >= 1, got {rounds}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import fastgrad
        try:
            fastgrad.set_num_threads(args.threads)  # validates, and the parent's triad uses it
        except (TypeError, ValueError) as exc:
            print(f"--threads: {exc}", file=sys.stderr)
            return 2
    budget = runner.QUICK if args.quick else runner.FULL
    measure_compile = (not args.quick) if args.compile_time is None else args.compile_time
    mode = "quick" if args.quick else "full"

    start_load = load.load_summary()
    info = machine.machine_info()
    _progress(f"fastgrad bench ({mode}): {len(chosen)} workloads, {rounds} rounds of fresh processes; "
              f"numba {info['numba_threading_layer']} x{info['numba_threads']}; "
              f"machine load: {report.describe_load(start_load)}")
    if not start_load["quiet"]:
        _progress("WARNING: the machine is not quiet: the timings will be unreliable")
    timings = isolated.run_isolated(chosen, budget, rounds=rounds, threads=args.threads,
                                    tries=1 if args.quick else 3, progress=_progress,
                                    competitors=args.competitor)
    # after the children: no thread pool of this process is alive while they run
    triad = machine.triad_gbps(repeats=3 if args.quick else 7)
    records, compiled = [], {}
    for w in chosen:
        timing = timings[w.key]
        compile_s = None
        if measure_compile and timing["status"] == "ok":
            if w.compile_key not in compiled:
                _progress(f"compile time: {w.compile_key}")
                compiled[w.compile_key] = runner.compile_times(w.key)
            compile_s = compiled[w.compile_key]
        records.append(report.workload_record(w, timing, triad, compile_s))

    command = "python -m fastgrad " + " ".join(args.argv)
    run = report.run_record(records, info, triad, command, mode, isolation="process", rounds=rounds,
                            threads=args.threads, load={"start": start_load, "end": load.load_summary(after_own_work=True)})
    print(report.markdown_table(run) if args.markdown else report.text_table(run))
    if args.json:
        report.write_json(run, args.json)
        _progress(f"wrote {args.json}")
    if args.plot:
        _progress(f"wrote {args.plot}" if report.plot(run, args.plot) else "matplotlib not installed: no plot")
    if args.pyperf:
        _write_pyperf(run, args.pyperf)
    if args.compare:
        rows = compare.compare(report.load_json(args.compare), run, args.threshold)
        print()
        print(compare.format_comparison(rows, args.threshold))
    return 0


def _write_pyperf(run, path) -> None:
    from fastgrad.benchmarks import pyperf_export
    try:
        pyperf_export.write(run, path)
    except ImportError:
        _progress("pyperf not installed (pip install fastgrad[bench]): no pyperf file")
    except ValueError as exc:
        _progress(f"no pyperf file: {exc}")
    else:
        _progress(f"wrote {path} (python -m pyperf compare_to OLD NEW --table)")


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.
    Without a command, prints the help and returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # the demo parses its own options (argparse's REMAINDER drops leading ones)
        from fastgrad.demo import main as demo_main
        return demo_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv
    return args.handler(args)

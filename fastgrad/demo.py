"""``python -m fastgrad demo``: what fastgrad does, in under a minute once compiled.

0. The machine's load: other processes' CPU use and the load average. Timings taken while other
   processes use the cores are unreliable (a 2-thread kernel can be 10-100x slower when its
   threads are preempted), and the demo says so.
1. Each kernel family against its NumPy reference, timed in this process (speedups); a row
   during which other processes used the machine is marked "busy".
2. An MLP trained on scikit-learn's digits (or a seeded synthetic set when scikit-learn
   is absent): the compiled path vs the NumPy reference path, time per epoch and test
   accuracy.
"""
from __future__ import annotations

import argparse
import time

# One representative workload per kernel family (keys of fastgrad.benchmarks.workloads).
DEMO_WORKLOADS = ("sigmoid fwd+bwd 1e6 [float32]", "softmax_cross_entropy (4096,1000) [float32]",
                  "dense 784->256 relu fwd+bwd b32 [float32]", "adam step 1e7 [float32]",
                  "hessian rosenbrock n=200 [float64]", "train_step 784-256-128-10 b32 [float32]")


def _families(quick) -> bool:
    """Print the per-family table; True when other processes loaded the machine during a row."""
    from fastgrad.benchmarks.load import BUSY_CORES, LoadMeter
    from fastgrad.benchmarks.runner import QUICK, Budget, run_workload
    from fastgrad.benchmarks.workloads import WORKLOADS
    budget = QUICK if quick else Budget(seconds=0.6, min_repeats=3, max_repeats=15, sample=0.01, slow_peers=False)
    chosen = [w for w in WORKLOADS if w.key in DEMO_WORKLOADS]
    print(f"{'workload':<46}{'fastgrad':>11}{'NumPy ref':>11}{'speedup':>9}")
    busy = False
    for workload in chosen:
        with LoadMeter() as meter:
            record = run_workload(workload, budget, competitors=("fastgrad", "reference"))
        if record["status"] != "ok":
            print(f"{workload.key:<46}  {record['status']}: {record['reason']}")
            continue
        fg, ref = record["medians"]["fastgrad"], record["medians"].get("reference")
        ratio = record["speedup"].get("reference")
        row_busy = meter.cores is not None and meter.cores >= BUSY_CORES
        busy = busy or row_busy
        print(f"{workload.key:<46}{fg * 1e3:>9.3f}ms{(ref or 0) * 1e3:>9.3f}ms{format_ratio(ratio):>8s}x"
              + (f"  busy ({meter.cores:.1f} cores used by others)" if row_busy else ""))
    return busy


def format_ratio(ratio) -> str:
    """A speed ratio for a table: two decimals below 10 (a busy machine's 0.04 would read 0.0),
    one from 10 on."""
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"


def _load_line(sample) -> str:
    from fastgrad.benchmarks.report import describe_load
    verdict = "quiet" if sample["quiet"] else "BUSY: the timings below are unreliable"
    return f"machine load: {describe_load(sample)} on {sample['cores']} cores ({verdict})"


def train_digits(epochs=30, batch_size=32, seed=0, reference_epochs=2, verbose=0):
    """Train a 64-128-64-10 ReLU MLP with Adam on the digits (or synthetic) data.

    Returns a dict: data set name, test accuracy, seconds per epoch of the compiled path and
    of the NumPy reference path (timed over ``reference_epochs`` epochs), and the history.
    """
    from fastgrad import Dense, Sequential
    from fastgrad.datasets import load_digits_or_synthetic, train_test_split
    from fastgrad.optim import Adam

    X, y, name = load_digits_or_synthetic(seed=seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.2, seed=seed)

    def build(backend):
        return Sequential([Dense(64, 128, "relu"), Dense(128, 64, "relu"), Dense(64, 10)],
                          loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3), seed=seed, backend=backend)

    model = build("compiled")
    model.fit(X_train[:batch_size], y_train[:batch_size], epochs=1, batch_size=batch_size, verbose=0)  # compile
    model = build("compiled")
    start = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    compiled = (time.perf_counter() - start) / epochs
    reference = build("reference")
    start = time.perf_counter()
    reference.fit(X_train, y_train, epochs=reference_epochs, batch_size=batch_size, verbose=0)
    numpy_path = (time.perf_counter() - start) / reference_epochs
    return {"data": name, "test_accuracy": model.evaluate(X_test, y_test)["accuracy"],
            "compiled_s_per_epoch": compiled, "reference_s_per_epoch": numpy_path, "history": history}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastgrad demo", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 30, quick 8)")
    args = parser.parse_args(argv)
    import fastgrad
    from fastgrad.benchmarks.load import BUSY_CORES, LoadMeter, load_summary
    from fastgrad.benchmarks.report import describe_load
    print(f"fastgrad {fastgrad.__version__} | {fastgrad.describe_threads()}")
    start_load = load_summary()
    print(_load_line(start_load))
    from fastgrad._warmup import is_compiled
    if not is_compiled("float32"):
        print("compiling fastgrad's float32 kernels, once; cached on disk afterwards (python -m fastgrad "
              "warmup does it ahead of time)", flush=True)
    start = time.perf_counter()
    fastgrad.warmup(dtypes=("float32",))
    print(f"kernels ready in {time.perf_counter() - start:.1f} s (compiled on the first run, then loaded "
          "from the on-disk cache)\n")
    print("1. Kernels against their NumPy references, same process, median times")
    busy = _families(args.quick)
    epochs = args.epochs or (8 if args.quick else 30)
    print(f"\n2. MLP 64-128-64-10 (ReLU, Adam, batch 32), {epochs} epochs")
    with LoadMeter() as meter:
        result = train_digits(epochs=epochs)
    busy = busy or (meter.cores is not None and meter.cores >= BUSY_CORES)
    print(f"   data: {result['data']}")
    print(f"   test accuracy: {result['test_accuracy']:.4f}")
    print(f"   time per epoch: compiled {result['compiled_s_per_epoch'] * 1e3:.1f} ms, NumPy reference "
          f"{result['reference_s_per_epoch'] * 1e3:.1f} ms "
          f"({format_ratio(result['reference_s_per_epoch'] / result['compiled_s_per_epoch'])}x)")
    losses = result["history"].history["loss"]
    print(f"   training loss: {losses[0]:.3f} (epoch 1) -> {losses[-1]:.4f} (epoch {len(losses)})")
    end_load = load_summary(after_own_work=True)
    if busy or not start_load["quiet"] or not end_load["quiet"]:
        print(f"\nUNRELIABLE: other processes used the machine while these figures were taken "
              f"(at the end: {describe_load(end_load)}). Rerun on an idle machine; `python -m fastgrad bench` "
              "times each library in its own process and marks busy rows.")
    print("\nMore: `python -m fastgrad bench` for the full comparison (with PyTorch/JAX when installed), "
          "examples/ for runnable scripts.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a cold first ``fit`` spends its compile time, per compiled function.

    python bench/compile_profile.py [float32|float64] [--top 30]

Runs :mod:`bench.bench_compile`'s 64-32-32-10 Dense-ReLU MLP (one epoch) in a fresh process on
an empty ``NUMBA_CACHE_DIR`` with Numba's event recorder on, and prints the functions compiled,
largest first: exclusive seconds (its own typing, lowering and LLVM work, which includes
re-optimizing the callees linked into its module) and inclusive seconds (with the callees it
compiled first). The seconds under Numba's LLVM lock are the optimization and machine-code
part. A diagnostic for issue 11's compile time, not a benchmark of record: the figures
include the recorder's own overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
import numpy as np
from numba.core import event

records, stack, llvm = [], [], [0.0]


class Compiles(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), 0.0])

    def on_end(self, ev):
        start, children = stack.pop()
        seconds = time.perf_counter() - start
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        name = f"{func.__module__}.{func.__qualname__}" if func is not None else ev.kind
        records.append({"function": name, "exclusive": seconds - children, "inclusive": seconds,
                        "args": str(ev.data.get("args"))[:70]})
        if stack:
            stack[-1][1] += seconds


class Llvm(event.Listener):
    def on_start(self, ev):
        self.start = time.perf_counter()

    def on_end(self, ev):
        llvm[0] += time.perf_counter() - self.start


event.register("numba:compile", Compiles())
event.register("numba:llvm_lock", Llvm())
from fastgrad import Dense, Sequential
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 64))
y = rng.integers(0, 10, 256)
model = Sequential([Dense(64, 32, "relu"), Dense(32, 32, "relu"), Dense(32, 10)], loss="softmax_cross_entropy",
                   dtype=sys.argv[1], seed=0)
start = time.perf_counter()
model.fit(X, y, epochs=1, batch_size=32, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - start, "llvm": llvm[0], "records": records}))
"""


def profile(dtype: str = "float32") -> dict:
    """{"seconds", "llvm" (seconds under the LLVM lock), "records" (one per compiled function)}."""
    with tempfile.TemporaryDirectory(prefix="fastgrad-compile-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir,
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run([sys.executable, "-c", CHILD, dtype], capture_output=True, text=True, env=env,
                             cwd=ROOT, check=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dtype", nargs="?", default="float32", choices=("float32", "float64"))
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    result = profile(args.dtype)
    records = sorted(result["records"], key=lambda r: -r["exclusive"])
    print(f"first fit, {args.dtype} cold: {result['seconds']:.1f} s, {len(records)} functions compiled, "
          f"{result['llvm']:.1f} s under the LLVM lock")
    print(f"{'exclusive s':>11} {'inclusive s':>11}  function (argument types)")
    for r in records[:args.top]:
        print(f"{r['exclusive']:11.2f} {r['inclusive']:11.2f}  {r['function']} {r['args']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

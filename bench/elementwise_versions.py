"""The public elementwise and row-wise functions of two or more fastgrad checkouts, timed in
alternated fresh processes: how a change of code or compile flags moved them.

    python bench/elementwise_versions.py /path/to/old/checkout .     # 3 rounds, alternated
    python bench/elementwise_versions.py --rounds 1 /tmp/old .       # smoke
    python bench/elementwise_versions.py --only softmax relu -- /tmp/old .   # cases naming these

Each checkout runs with ``PYTHONPATH`` set to it and its own kernel cache directory (so the
first round compiles; the timings come after warm-up), one Numba thread, inputs of 1e5 elements
(softmax rows of 10 and of 100), best of 200 calls of the public function (``fastgrad.functional``:
validation included, a few microseconds). Prints the minimum over rounds per checkout, in
microseconds, and each checkout's ratio to the first. Run it from outside the checkouts (a
checkout in the working directory would shadow ``PYTHONPATH``) on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

N = 100_000
REPEATS = 200


def measure(only=()):
    """{case: microseconds} for the fastgrad on sys.path; only the cases whose name holds one of
    the words ``only`` (all when empty)."""
    import numpy as np

    import fastgrad
    import fastgrad.functional as F
    from step_versions import best_seconds   # bench/ is this script's directory: sys.path[0]
    fastgrad.set_num_threads(1)

    rng = np.random.default_rng(0)

    class Times(dict):
        def __setitem__(self, case, func):
            if not only or any(word in case for word in only):
                dict.__setitem__(self, case, round(best_seconds(func, REPEATS) * 1e6, 1))
    times = Times()
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        z = (rng.standard_normal(N) * 3).astype(dtype)
        g = rng.standard_normal(N).astype(dtype)
        for name in ("relu", "elu", "sigmoid", "tanh", "softplus", "silu"):
            forward, backward = getattr(F, name), getattr(F, name + "_backward")
            times[f"{name} forward {dt}"] = lambda: forward(z)
            times[f"{name} backward {dt}"] = lambda: backward(z, g)
        for approximate in ("none", "tanh"):
            times[f"gelu[{approximate}] forward {dt}"] = lambda: F.gelu(z, approximate=approximate)
            times[f"gelu[{approximate}] backward {dt}"] = lambda: F.gelu_backward(z, g, approximate=approximate)
        for k in (10, 100):
            rows, grads = z.reshape(N // k, k), g.reshape(N // k, k)
            labels = rng.integers(0, k, N // k)
            times[f"softmax rows of {k} {dt}"] = lambda: F.softmax(rows)
            times[f"softmax backward rows of {k} {dt}"] = lambda: F.softmax_backward(rows, grads)
            times[f"log_softmax rows of {k} {dt}"] = lambda: F.log_softmax(rows)
            times[f"softmax_cross_entropy rows of {k} {dt}"] = lambda: F.softmax_cross_entropy(rows, labels)
    return dict(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="fastgrad checkouts (directories holding fastgrad/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=[], metavar="WORD",
                        help="time only the cases whose name holds one of these words")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.only)))
        return
    checkouts = [os.path.abspath(c) for c in args.checkouts]
    caches = [tempfile.mkdtemp(prefix=f"fastgrad_versions_{i}_") for i in range(len(checkouts))]
    runs = {c: [] for c in checkouts}
    for _ in range(args.rounds):
        for checkout, cache in zip(checkouts, caches):
            env = dict(os.environ, PYTHONPATH=checkout, NUMBA_CACHE_DIR=cache)
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", checkout]
                                 + (["--only", *args.only] if args.only else []),
                                 env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
            runs[checkout].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {c: {case: min(r[case] for r in rs) for case in rs[0]} for c, rs in runs.items()}
    first = best[checkouts[0]]
    names = [os.path.basename(c.rstrip("/")) or c for c in checkouts]
    print(f"{'case':40s}" + "".join(f"{n[:12]:>13s}" for n in names) + "".join(f"{'/' + names[0][:10]:>12s}" for _ in names[1:]))
    for case in first:
        row = [best[c][case] for c in checkouts]
        print(f"{case:40s}" + "".join(f"{t:13.1f}" for t in row) + "".join(f"{t / row[0]:12.2f}" for t in row[1:]))


if __name__ == "__main__":
    main()

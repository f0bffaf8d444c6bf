"""fastgrad.sklearn.MLPClassifier vs scikit-learn's MLPClassifier, each library in its own process.

    python bench/sklearn_vs_fastgrad.py [--repeats 3] [--quick] [--json out.json]

Workloads (issue 14):

* digits: scikit-learn's 8x8 digits scaled to [0, 1], a stratified 75/25 split,
  ``MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", max_iter=50, random_state=0)``;
* synthetic: 100,000 x 50 from ``fastgrad.datasets.make_classification`` (10 classes
  whose centres overlap, ``class_sep=0.3``; 90/10 split: ``fastgrad.benchmarks.
  sklearn_workloads.synthetic_split``), the same estimator with ``max_iter=10``.

A third fresh process times the GEMM floor: the fit's matrix products alone (forward and
backward, every batch of every epoch) on NumPy's BLAS with preallocated outputs. No fit can be
faster than it; ``scikit-learn's fit / floor`` bounds the speed-up any implementation can reach.

Per library and workload a fresh Python process measures: the first fit on a small slice
(fastgrad: loading or compiling its kernels; scikit-learn: imports and warm-up), then
``repeats`` full fits (median seconds), the predict time on the test set (median of 5)
and the test accuracy. Timing figures are for a quiet machine; under load they are noise.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = {"digits": dict(max_iter=50), "synthetic 100000x50": dict(max_iter=10)}

CHILD = r"""
import json, sys, time, warnings
import numpy as np


def gemm_floor(n, widths, epochs, repeats):
    # the fit's matrix products alone, on NumPy's BLAS with its own threads, preallocated outputs:
    # per batch (min(200, n) rows, the last what is left) a W forward, a^T delta and delta W^T
    # backward (no delta W^T for the first layer); the least seconds of max(repeats, 3) fits
    rng = np.random.default_rng(0)
    batch = min(200, n)
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])

    def products(b):
        acts = [rng.standard_normal((b, w)).astype(np.float32) for w in widths]
        Ws = [rng.standard_normal((a, c)).astype(np.float32) for a, c in zip(widths[:-1], widths[1:])]
        specs = []
        for i, W in enumerate(Ws):
            specs.append((acts[i], W, np.empty((b, W.shape[1]), np.float32)))
            specs.append((acts[i].T, acts[i + 1], np.empty(W.shape, np.float32)))
            if i:
                specs.append((acts[i + 1], W.T, np.empty((b, W.shape[0]), np.float32)))
        return specs
    by_size = {b: products(b) for b in set(sizes)}
    best = float("inf")
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        for _ in range(epochs):
            for b in sizes:
                for A, B, C in by_size[b]:
                    np.dot(A, B, C)
        best = min(best, time.perf_counter() - start)
    return best


lib, workload = sys.argv[1], sys.argv[2]
max_iter, repeats, quick = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
start = time.perf_counter()
if lib == "floor":
    from fastgrad.benchmarks.sklearn_workloads import digits_split, synthetic_split
    Xtr, _, ytr, _ = (digits_split(np.float32) if workload == "digits"
                      else synthetic_split(np.float32, 5000 if quick else 100_000))
    print(json.dumps({"floor_s": gemm_floor(Xtr.shape[0], (Xtr.shape[1], 128, 64, len(np.unique(ytr))),
                                            max_iter, repeats)}))
    sys.exit(0)
if lib == "fastgrad":
    from fastgrad.sklearn import MLPClassifier
else:
    from sklearn.neural_network import MLPClassifier
from sklearn.exceptions import ConvergenceWarning
import_s = time.perf_counter() - start
from fastgrad.benchmarks.sklearn_workloads import digits_split, synthetic_split
if workload == "digits":
    Xtr, Xte, ytr, yte = digits_split(np.float32)
else:
    Xtr, Xte, ytr, yte = synthetic_split(np.float32, 5000 if quick else 100_000)
params = dict(hidden_layer_sizes=(128, 64), solver="adam", max_iter=max_iter, random_state=0)
warnings.simplefilter("ignore", ConvergenceWarning)
start = time.perf_counter()
MLPClassifier(**dict(params, max_iter=1)).fit(Xtr[:200], ytr[:200]).predict(Xte[:10])
first_s = time.perf_counter() - start
fits = []
for _ in range(repeats):
    start = time.perf_counter()
    est = MLPClassifier(**params).fit(Xtr, ytr)
    fits.append(time.perf_counter() - start)
preds = []
for _ in range(5):
    start = time.perf_counter()
    pred = est.predict(Xte)
    preds.append(time.perf_counter() - start)
print(json.dumps({"import_s": import_s, "first_fit_s": first_s, "fit_s": fits, "predict_s": preds,
                  "accuracy": float(np.mean(pred == yte)), "n_iter": int(est.n_iter_)}))
"""


def run(lib, workload, max_iter, repeats, quick):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, lib, workload, str(max_iter), str(repeats),
                          "1" if quick else "0"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat, 5000 synthetic rows (smoke test)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    results = {}
    for workload, opts in WORKLOADS.items():
        max_iter = 2 if args.quick else opts["max_iter"]
        for lib in ("fastgrad", "scikit-learn"):
            r = run(lib, workload, max_iter, repeats, args.quick)
            results[f"{workload} | {lib}"] = r
            print(f"{workload:>20} {lib:>13}: first fit {r['first_fit_s']:7.3f} s, "
                  f"fit {statistics.median(r['fit_s']):8.3f} s (median of {repeats}, {r['n_iter']} epochs), "
                  f"predict {1e3 * statistics.median(r['predict_s']):8.2f} ms, test accuracy {r['accuracy']:.4f}")
        fg, sk = results[f"{workload} | fastgrad"], results[f"{workload} | scikit-learn"]
        floor = results[f"{workload} | GEMM floor"] = run("floor", workload, max_iter, repeats, args.quick)
        fit_fg, fit_sk = statistics.median(fg['fit_s']), statistics.median(sk['fit_s'])
        print(f"{workload:>20}: fit {fit_sk / fit_fg:.1f}x, "
              f"predict {statistics.median(sk['predict_s']) / statistics.median(fg['predict_s']):.1f}x faster; "
              f"accuracy {100 * (fg['accuracy'] - sk['accuracy']):+.2f} points; the fit's matrix products alone "
              f"(NumPy's BLAS) {floor['floor_s']:.3f} s: fastgrad's fit is {fit_fg / floor['floor_s']:.1f}x them, "
              f"and scikit-learn's {fit_sk / floor['floor_s']:.1f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return results


if __name__ == "__main__":
    main()

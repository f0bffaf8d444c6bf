"""What fast-math off costs: the elementwise kernels, a loss, the gradient norm and Adam, compiled
with fastgrad's default flags (IEEE arithmetic, explicit fused multiply-adds) against the old
flags (``FASTGRAD_FASTMATH=reassoc``: nsz, arcp, contract, reassoc), one thread.

    python bench/fastmath_cost.py              # 3 alternations of the two builds, fresh processes
    python bench/fastmath_cost.py --rounds 1   # smoke

Each build runs in its own process with its own kernel cache directory (the switch is part of
the cache key, so one directory would recompile on every alternation); the first round of each
compiles, the timings come after warm-up. Inputs of 1e5 elements (rows of 100 for softmax), in
cache, so the arithmetic shows rather than memory bandwidth; outputs preallocated. Prints the
minimum over rounds of each build, in microseconds, and default / reassoc (> 1: fast-math off
is slower). Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

N = 100_000
ROW = 100
REPEATS = 200


def best_us(func, repeats=REPEATS):
    """Best of ``repeats`` calls after one warm-up, in microseconds (step_versions' timing loop)."""
    from step_versions import best_seconds   # bench/ is this script's directory: sys.path[0]
    return round(best_seconds(func, repeats) * 1e6, 1)


def measure():
    """{case: microseconds} for this process's build."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastgrad
    from fastgrad.kernels import activations as KA, grad_utils as KG, losses as KL, optim as KO, softmax as KS
    fastgrad.set_num_threads(1)
    rng = np.random.default_rng(0)
    times = {}
    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        z = (rng.standard_normal(N) * 3).astype(dtype)
        g = rng.standard_normal(N).astype(dtype)
        a, gz = np.empty_like(z), np.empty_like(z)
        for name in ("RELU", "ELU", "GELU", "GELU_TANH", "SIGMOID", "TANH", "SOFTPLUS", "SILU"):
            code = getattr(KA, name)
            p1, p2 = (dtype(1.0), dtype(20.0)) if name in ("ELU", "SOFTPLUS") else (dtype(0), dtype(0))
            times[f"{name.lower()} forward {dt}"] = best_us(lambda: KA.activation_forward(code, z, a, p1, p2))
            times[f"{name.lower()} backward {dt}"] = best_us(lambda: KA.activation_backward(code, z, g, gz, p1, p2))
        Z, G, A, GZ = (v.reshape(N // ROW, ROW) for v in (z, g, a, gz))
        for log in (False, True):
            name = "log_softmax" if log else "softmax"
            times[f"{name} forward {dt}"] = best_us(lambda: KS.softmax_forward(Z, A, log))
            times[f"{name} backward {dt}"] = best_us(lambda: KS.softmax_backward(Z, G, GZ, log))
        labels = rng.integers(0, ROW, N // ROW)
        probs, no_w = np.empty((1, 1), dtype), np.empty(0, dtype)
        times[f"softmax_cross_entropy {dt}"] = best_us(lambda: KL.softmax_cross_entropy(
            Z, labels, probs, True, no_w, np.int64(-100), GZ, no_w, dtype(1.0 / Z.shape[0]), dtype(0.0)))
        target = rng.standard_normal(N).astype(dtype)
        times[f"mse {dt}"] = best_us(lambda: KL.elementwise_loss(KL.MSE, z, target, no_w, no_w, gz, no_w,
                                                                 dtype(1.0 / N), dtype(0.0)))
        times[f"grad_norm {dt}"] = best_us(lambda: KG.grad_norm(g, 2.0))
        hyper = np.zeros(KO.N_HYPER)
        hyper[[KO.LR, KO.EPS, KO.BETA1, KO.BETA2]] = 1e-3, 1e-8, 0.9, 0.999
        state = KO.new_state(KO.ADAM, hyper, N, dtype)
        p = z.copy()
        times[f"adam step {dt}"] = best_us(lambda: KO.optimizer_step(KO.ADAM, p, g, state, hyper, 5))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure()))
        return 0
    caches = {name: tempfile.mkdtemp(prefix=f"fastgrad-fm-{name}-") for name in ("default", "reassoc")}
    runs = {"default": [], "reassoc": []}
    for _ in range(args.rounds):
        for name in ("default", "reassoc"):
            env = dict(os.environ, NUMBA_CACHE_DIR=caches[name])
            env.pop("FASTGRAD_FASTMATH", None)
            if name == "reassoc":
                env["FASTGRAD_FASTMATH"] = "reassoc"
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure"], env=env,
                                 capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'case':34s} {'default us':>11s} {'reassoc us':>11s} {'ratio':>6s}")
    for case in runs["default"][0]:
        d = min(r[case] for r in runs["default"])
        r = min(r[case] for r in runs["reassoc"])
        print(f"{case:34s} {d:11.1f} {r:11.1f} {d / r:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

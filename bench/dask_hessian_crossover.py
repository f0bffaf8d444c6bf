"""When does the distributed Hessian pay? Local vs 2 Dask workers for gradients of growing cost.

    python bench/dask_hessian_crossover.py             # the driver's BLAS with its default threads
    python bench/dask_hessian_crossover.py --one-thread

The gradient is NumPy's of ``0.5 |tanh(A x)|^2`` with ``A`` (m, 40) carried in the function, so
its cost and its size grow with m. Prints, per m, the time of one gradient call on the driver,
of ``fastgrad.diff.hessian_from_gradient`` locally and with ``client=`` (2 one-thread workers,
two blocks of 20 columns), best of 2. Figures: docs/distributed.md ("Hessians"). Needs
``dask[distributed]``; run it alone on a quiet machine.
"""
import argparse
import time

import numpy as np


def make_grad(m, n, seed=0):
    A = np.random.default_rng(seed).standard_normal((m, n)) / np.sqrt(m)

    def grad(x):
        u = np.tanh(A @ x)
        return A.T @ (u * (1 - u * u))
    return grad


def best_of(func, repeats=2):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one-thread", action="store_true", help="limit the driver's BLAS to one thread")
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000, 20_000, 100_000, 400_000])
    args = parser.parse_args()
    import distributed
    from fastgrad import diff
    if args.one_thread:
        import threadpoolctl
        threadpoolctl.threadpool_limits(1)
    n = 40
    x = np.full(n, 0.1)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)
    with distributed.Client(cluster) as client:
        for m in args.rows:
            grad = make_grad(m, n)
            grad(x)
            t_grad = best_of(lambda: grad(x), 5)
            local = best_of(lambda: diff.hessian_from_gradient(grad, x))
            remote = best_of(lambda: diff.hessian_from_gradient(grad, x, client=client, block_size=n // 2))
            print(f"m={m:>7}  one gradient {t_grad * 1e3:7.2f} ms  local {local * 1e3:8.1f} ms  "
                  f"dask (2 workers) {remote * 1e3:8.1f} ms  local/dask {local / remote:5.2f}", flush=True)
    cluster.close()


if __name__ == "__main__":
    main()

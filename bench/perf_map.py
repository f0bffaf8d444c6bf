"""Name Numba's compiled functions in a ``perf`` profile of a training run.

    perf record -F 4000 -p $(pgrep -f perf_map.py) -- sleep 15   # once it prints "mapped"
    NUMBA_CACHE_DIR=$(mktemp -d) python bench/perf_map.py 32-64-64-1 --seconds 25

Numba's machine code is JIT-linked, so ``perf`` shows it as bare addresses. This script fits a
float32 Adam MLP once (layer widths as in ``784-256-128-10``; softmax cross-entropy, or MSE for one
output), writes ``/tmp/perf-<pid>.map`` with the address of every function of every compiled
library (a function's extent taken up to the next address), prints "mapped" on stderr, then fits
for ``--seconds`` more, one epoch of 2048 rows at a time (``--batch`` rows per batch, 32 by default). Run it with an empty ``NUMBA_CACHE_DIR``:
functions loaded from the disk cache have no LLVM module to list. ``perf report --sort sym`` then
names them.
"""
import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's package

import fastgrad  # noqa: E402
from fastgrad import Dense, Sequential  # noqa: E402
from fastgrad.optim import Adam  # noqa: E402


def write_perf_map(path):
    """Write every compiled function's address and name; returns how many."""
    from numba.core.registry import CPUDispatcher
    names = {}
    for obj in gc.get_objects():
        if not isinstance(obj, CPUDispatcher):
            continue
        for cres in obj.overloads.values():
            library = cres.library
            module = getattr(library, "_final_module", None)
            if module is None:
                continue
            for func in module.functions:
                if func.is_declaration:
                    continue
                address = library._codegen._engine.get_function_address(func.name)
                if address:
                    names[address] = func.name
    addresses = sorted(names)
    if not addresses:
        return 0
    with open(path, "w") as handle:
        for start, end in zip(addresses, addresses[1:] + [addresses[-1] + 4096]):
            handle.write(f"{start:x} {min(end - start, 1 << 20):x} {names[start]}\n")
    return len(addresses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("layers", nargs="?", default="32-64-64-1")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32, help="rows per batch (2048 rows in all)")
    args = parser.parse_args()
    fastgrad.set_num_threads(args.threads)
    widths = [int(w) for w in args.layers.split("-")]
    loss = "mse" if widths[-1] == 1 else "softmax_cross_entropy"
    layers = [Dense(a, b, activation="relu") for a, b in zip(widths[:-2], widths[1:-1])]
    model = Sequential(layers + [Dense(widths[-2], widths[-1])], loss=loss, optimizer=Adam(lr=1e-4),
                       dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, widths[0])).astype(np.float32)
    y = rng.standard_normal((2048, 1)).astype(np.float32) if loss == "mse" else rng.integers(0, widths[-1], 2048)
    model.fit(X, y, epochs=1, batch_size=args.batch, verbose=0, shuffle=False)
    mapped = write_perf_map(f"/tmp/perf-{os.getpid()}.map")
    print("mapped", mapped, "functions" if mapped else "functions: every kernel came from the disk cache; "
          "run with an empty NUMBA_CACHE_DIR", file=sys.stderr, flush=True)
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        model.fit(X, y, epochs=1, batch_size=args.batch, verbose=0, shuffle=False)


if __name__ == "__main__":
    main()

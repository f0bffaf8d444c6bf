"""Ahead-of-use compilation: run every kernel once on tiny inputs so later calls are fast.

``fastgrad.warmup()`` from Python, ``python -m fastgrad warmup [--dtype float32 float64]``
from a shell (for Docker images and CI caches): both fill the on-disk kernel cache, so a
later first ``fit`` in a fresh process loads machine code instead of compiling it.
"""
from __future__ import annotations

import json
import time

import numpy as np

from fastgrad._checks import as_float_dtype


def _activations(dtype):
    from fastgrad import functional as F
    z = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    return {"activation_forward": lambda: F.relu(z), "activation_backward": lambda: F.relu_backward(z, z),
            "softmax_forward": lambda: F.softmax(z), "softmax_backward": lambda: F.softmax_backward(z, z)}


def _losses(dtype):
    from fastgrad import functional as F
    z = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    return {"elementwise_loss": lambda: F.mse(z, z),
            "softmax_cross_entropy": lambda: F.softmax_cross_entropy(z, np.array([0, 2]))}


def _dense(dtype):
    from fastgrad import functional as F
    x = np.ones((2, 3), dtype=dtype)
    W = np.ones((3, 2), dtype=dtype)
    b = np.zeros(2, dtype=dtype)
    return {"dense_forward": lambda: F.dense_forward(x, W, b, "relu"),
            "dense_backward": lambda: F.dense_backward(x, W, x[:, :2], x[:, :2], "relu")}


def _optim(dtype):
    from fastgrad import optim
    p = np.ones(8, dtype=dtype)
    g = np.full(8, 0.5, dtype=dtype)
    return {"optimizer_step": lambda: optim.Adam().step(p, g),
            "clip_grad_norm": lambda: optim.clip_grad_norm(g, 1.0),
            "grad_stats": lambda: optim.grad_stats(g)}


def _train(dtype):
    from fastgrad import Activation, BatchNorm1d, Dense, Dropout, LayerNorm, Residual, Sequential
    X = np.linspace(-1, 1, 8, dtype=dtype).reshape(4, 2)
    y = np.array([0, 1, 1, 0])

    def fit():  # every layer kind: the compiled epoch is one function of all of them
        model = Sequential([Dense(2, 3, "relu"), BatchNorm1d(3), Dropout(0.1),
                            Residual([Dense(3, 3, use_bias=False), LayerNorm(3)]), Activation("tanh"), Dense(3, 2)],
                           loss="softmax_cross_entropy", dtype=dtype, seed=0)
        model.fit(X, y, epochs=1, batch_size=2, verbose=0)
        model.evaluate(X, y)
        model.predict(X)

    def every_kernel():  # the loop calls each op kind, activation, loss and optimizer by address
        from fastgrad._compile_jobs import compile_jobs
        from fastgrad.kernels.dispatch import compile_all, every_job
        compile_jobs(every_job(), dtype)  # in two processes where it can (fastgrad/_compile_jobs.py)
        compile_all(dtype)
    return {"fit": fit, "layer_kinds_activations_optimizers": every_kernel}


FAMILIES = {"activations": _activations, "losses": _losses, "dense": _dense, "optim": _optim, "train": _train}
"""Family name -> a function of the dtype returning {kernel name: a call that compiles it}."""

FAMILY_SECONDS = {"activations": 30.0, "losses": 13.0, "dense": 11.0, "optim": 12.0, "train": 50.0}
"""Estimated cold compile seconds per family and dtype, in one process (``FASTGRAD_COMPILE_PROCESSES=1
python -m fastgrad warmup`` on the 2-core machine of the README's figures): they split the
families between two processes (fastgrad/_compile_jobs.py)."""


def warmup(dtypes=("float32",), families=None) -> dict:
    """Compile (or load from the on-disk cache) fastgrad's kernels ahead of use.

    ``dtypes``: any of "float32", "float64" (one name or a sequence); ``families``: names from
    ``fastgrad._warmup.FAMILIES`` -- activations, losses, dense, optim, train (None: all). Returns {"<family>.<kernel>[<dtype>]": seconds}
    for the first call of each kernel. Raises ``ValueError`` for an unknown family or dtype.

    On a cold cache with two cores or more, about half of the families (by
    :data:`FAMILY_SECONDS`) are compiled by a second Python process into the same cache, as a
    first ``fit`` does with its kernels (fastgrad/_compile_jobs.py; their seconds are measured
    there); if it fails, they are compiled here.
    """
    if isinstance(dtypes, str):  # one name, as the command line's --dtype takes it
        dtypes = (dtypes,)
    if isinstance(families, str):
        families = (families,)
    chosen = tuple(FAMILIES) if families is None else tuple(families)
    for name in chosen:
        if name not in FAMILIES:
            raise ValueError(f"families must be names from {sorted(FAMILIES)}, got {name!r}")
    dtypes = [as_float_dtype(dt, "dtypes").name for dt in dtypes]
    mine, theirs, other = list(chosen), [], None
    cold = not all(is_compiled(dt) for dt in dtypes)  # (a warm cache loads in a second or two: no second process)
    if len(chosen) > 1 and cold:  # two processes where it can (fastgrad/_compile_jobs.py), whole families each
        from fastgrad._compile_jobs import processes, split, start_python
        if processes() >= 2:
            mine, theirs = split(chosen, FAMILY_SECONDS.get)
            other = start_python("from fastgrad._warmup import _child; _child(sys.argv[1])",
                                 json.dumps({"dtypes": dtypes, "families": theirs}), capture=True) if theirs else None
            mine = mine if other is not None else list(chosen)
    try:
        times = _run(dtypes, mine)
    except BaseException:
        if other is not None:
            from fastgrad._compile_jobs import stop
            stop(other)
        raise
    if other is not None:
        from fastgrad._compile_jobs import wait
        output = wait(other)
        try:
            times.update(json.loads(output.strip().splitlines()[-1]))
        except (ValueError, IndexError):  # it failed: its families compile here
            times.update(_run(dtypes, theirs))
    return {key: times[key] for key in sorted(times, key=lambda k: (dtypes.index(k[k.index("[") + 1:-1]),
                                                                      chosen.index(k.split(".")[0])))}


def _run(dtypes, families) -> dict:
    times = {}
    for dt in dtypes:
        dtype = np.dtype(dt)
        for family in families:
            for kernel, call in FAMILIES[family](dtype).items():
                start = time.perf_counter()
                call()
                times[f"{family}.{kernel}[{dtype.name}]"] = time.perf_counter() - start
    return times


def _child(request: str) -> None:
    """The second process of :func:`warmup`: run the families of ``request`` (JSON: dtypes,
    families) and print their times as one JSON line."""
    spec = json.loads(request)
    print(json.dumps(_run(spec["dtypes"], spec["families"])), flush=True)


def family_seconds(times: dict) -> dict:
    """{"<family>[<dtype>]": seconds} summed from :func:`warmup`'s per-kernel figures."""
    totals = {}
    for key, seconds in times.items():
        family, rest = key.split(".", 1)
        name = f"{family}[{rest[rest.index('[') + 1:-1]}]"
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def is_compiled(dtype) -> bool:
    """Whether every kernel the training loop can call (each op kind, activation, loss, optimizer
    and option) and every loop (``dispatch.LOOPS``) are ready for ``dtype`` without compiling:
    already in this process, or in the on-disk cache (read through Numba's cache index; if that
    cannot be read, the answer is False and a caller merely announces a compile that may not
    happen). A fit of one model leaves it False: the other layer kinds are still to compile."""
    from fastgrad.kernels import dispatch
    dtype = as_float_dtype(dtype, "dtype")
    return all(dispatch.is_ready(job, dtype) for job in dispatch.every_job_and_loop())


def main(dtypes) -> int:
    """The ``warmup`` command: compile every family for ``dtypes`` and print seconds per family."""
    import sys
    start = time.perf_counter()
    print(f"compiling fastgrad's kernels for {', '.join(dtypes)} (once; cached on disk afterwards)",
          file=sys.stderr, flush=True)
    for name, seconds in family_seconds(warmup(dtypes=tuple(dtypes))).items():
        print(f"{name:<22}{seconds:8.2f} s", flush=True)
    print(f"{'total':<22}{time.perf_counter() - start:8.2f} s")
    return 0

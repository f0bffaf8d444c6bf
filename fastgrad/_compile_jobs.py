"""A cold first ``fit`` compiles its kernels in two processes at once.

The training loop calls every kernel by address (kernels/slots.py), so the kernels a model
uses are independent compile units: none links another's code. When a first ``fit`` finds
several seconds of them missing from the disk kernel cache, it hands about half (by their
estimated compile time, :data:`COST`) to a second Python process, which compiles them into
the same cache, while this process compiles the rest and the loop; this process then waits
for the other and loads its kernels from the cache. On 2 cores a cold first fit of a ReLU
MLP compiled in 18.5 s in one process and 8.8 s in two (``bench/bench_compile.py``, quiet machine;
under full load from other processes the second process gains nothing).

The second process only saves time, never decides anything: it imports the same fastgrad
(its folder first on ``PYTHONPATH``) and uses the same cache folder; if it cannot start,
fails, or runs past :data:`DEADLINE`, this process compiles whatever it then finds missing,
as it would have without it; if this process stops (an error, Ctrl-C), the other is stopped,
and if it is killed, the other notices within half a second and exits (:func:`watch_parent`).
Two processes writing one cache are safe because fastgrad's cache files are written under a
file lock (fastgrad/_cache.py), which needs ``fcntl``; so the
second process is used only where ``fcntl`` exists, the cache is on, the machine has two
cores or more, and ``FASTGRAD_COMPILE_PROCESSES`` is not ``1``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

from fastgrad.kernels.optim import ADAM, ADAMW
from fastgrad.kernels.program import ACTIVATION, ADD, BATCH_NORM, DENSE, DROPOUT, FORK, LAYER_NORM
from fastgrad.kernels.train import SOFTMAX_CE

MIN_SECONDS = 4.0   # less missing work than this (estimated) is compiled here: a process costs ~1.5 s to start
START_SECONDS = 1.5
DEADLINE = 900.0    # seconds this process waits for the other at most

# Estimated compile seconds per job, measured one after the other in one process on a cold cache
# (float32, the 2-core machine of the README's figures; ``python bench/compile_jobs.py``). Only
# their ratios matter: they split the work. Op kinds and codes are kernels/program.py's,
# activations.py's, train.py's and optim.py's.
COST = {"op": 2.0, "activation": 0.9, "loss": 2.5, "optimizer": 2.0, "penalty": 0.4, "proximal": 0.4,
        "clip": 2.9, "diagnostics": 1.0, "loop": 4.2}
COST_OF = {("op", DENSE): 4.9, ("op", ACTIVATION): 0.6, ("op", DROPOUT): 2.4, ("op", LAYER_NORM): 3.7,
           ("op", BATCH_NORM): 3.8, ("op", FORK): 1.5, ("op", ADD): 1.0, ("loss", SOFTMAX_CE): 3.6,
           ("optimizer", ADAM): 2.9, ("optimizer", ADAMW): 2.9, ("loop", "evaluate"): 1.0,
           ("loop", "loss_and_grad"): 1.0, ("loop", "predict"): 1.0}  # (these two: 1.37 s each on 2026-12-02
# 15:10 UTC, a run whose training loop took 5.73 s: scaled to the 4.2 s of the rest of the table)


def processes() -> int:
    """How many processes a first fit may compile in: 2, or 1 when ``FASTGRAD_COMPILE_PROCESSES``
    is ``1`` (or ``0``), without two cores, ``fcntl`` or the disk cache, or when this process is
    not a plain Python interpreter that ``sys.executable -c`` would start again (a frozen
    application, or Python embedded in another program)."""
    from fastgrad._jit import CACHE
    wanted = 1 if os.environ.get("FASTGRAD_COMPILE_PROCESSES", "").strip() in ("0", "1") else 2
    if importlib.util.find_spec("fcntl") is None:  # no cache lock (fastgrad/_cache.py): one writer
        return 1
    if getattr(sys, "frozen", False) or not os.path.basename(sys.executable or "").startswith("python"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return wanted if CACHE and cores >= 2 else 1


def cost(job) -> float:
    """A job's estimated compile seconds (see :data:`COST`)."""
    return COST_OF.get(tuple(job), COST[job[0]])


def split(jobs, seconds=cost) -> tuple:
    """(this process's jobs, the other's): longest first (``seconds(job)``: its estimated compile
    time), each to the process that would finish it soonest (the other starts
    :data:`START_SECONDS` late)."""
    mine, theirs = [], []
    load = [0.0, START_SECONDS]
    for job in sorted(jobs, key=seconds, reverse=True):
        side = 0 if load[0] <= load[1] else 1
        (mine, theirs)[side].append(job)
        load[side] += seconds(job)
    return mine, theirs


def compile_for_fit(model, clip=0.0, diagnostics=False, validation=False, l1=None, l2=None, l1_prox=None,
                    announce=False) -> None:
    """Compile (or load) the kernels a compiled ``fit`` of ``model`` is about to call, in two
    processes when enough of them are missing (see the module doc); otherwise do nothing and
    let the fit compile on first use. ``clip``: the max gradient norm (0: none); ``validation``:
    whether it evaluates validation data; ``l1``/``l2``/``l1_prox``: the penalties it trains with
    when not the model's (scikit-learn's estimators); ``announce``: print :data:`NOTICE` to
    stderr first when any of them is missing from the disk cache."""
    if model.backend != "compiled":
        return
    from fastgrad.kernels import dispatch
    from fastgrad.optim import LBFGS
    lbfgs = isinstance(model.optimizer, LBFGS)  # fit's L-BFGS path: full-batch loss and gradient, no update kernel
    l1 = model.l1 if l1 is None else l1
    l2 = model.l2 if l2 is None else l2
    l1_prox = model.l1_mode == "proximal" if l1_prox is None else l1_prox
    jobs = dispatch.jobs_for(model.program, model._loss_code, None if lbfgs else model.optimizer.kernel_spec()[0],
                             l1, l2, l1_prox, clip, diagnostics)
    logs_metrics = any(m != "accuracy" for m in model.metrics) or (lbfgs and model._accuracy(0, 1) is not None)
    loops = ([("loop", "loss_and_grad")] if lbfgs else [("loop", "train")]) + (
        [("loop", "evaluate")] if validation else []) + ([("loop", "predict")] if logs_metrics else [])
    compile_jobs(jobs + loops, model.dtype, announce)


NOTICE = ("compiling fastgrad's {dtype} training kernels, once; cached afterwards "
          "(python -m fastgrad warmup does it ahead of time)")
"""The line a verbose fit prints before it waits on the compiler (issue 11)."""


def compile_jobs(jobs, dtype, announce=False) -> None:
    """Compile (or load) the compile jobs ``jobs`` (kernels/dispatch.py) for ``dtype``: in two
    processes when the missing ones add up to :data:`MIN_SECONDS` or more (and :func:`processes`
    allows), else none here (each compiles on first use). ``announce``: print :data:`NOTICE`
    to stderr first when any is missing."""
    dtype = np.dtype(dtype)
    jobs = [job for job in jobs if (job, dtype) not in _READY]
    two = processes() >= 2
    if not jobs or not (two or announce):
        return
    from fastgrad.kernels import dispatch
    missing = []
    for job in jobs:
        if dispatch.is_ready(job, dtype):
            _READY.add((job, dtype))
        else:
            missing.append(job)
    if missing and announce:
        print(NOTICE.format(dtype=dtype.name), file=sys.stderr, flush=True)
    if not two or sum(cost(job) for job in missing) < MIN_SECONDS:
        return
    mine, theirs = split(missing)
    other = _start(theirs, dtype) if theirs else None
    try:
        for job in mine:
            dispatch.compile_job(job, dtype)
    except BaseException:  # (a compile error, or Ctrl-C: the other's work is not waited for)
        if other is not None:
            stop(other)
        raise
    if other is not None:
        wait(other)
    _READY.update((job, dtype) for job in missing)


_READY = set()  # (job, dtype) known to need no compiling in this process: later fits skip the checks


def _start(jobs, dtype):
    """The second process, compiling ``jobs`` (or None if it cannot start)."""
    request = json.dumps({"dtype": dtype.name, "jobs": [list(j) for j in jobs]})
    return start_python("from fastgrad._compile_jobs import main; main(sys.argv[1])", request)


def start_python(code: str, argument: str, capture: bool = False):
    """A second Python process running ``code`` (``sys.argv[1]`` is ``argument``) with this one's
    fastgrad, cache folder and switches, compiling in one process itself; its standard output
    piped when ``capture``. None if it cannot start."""
    from fastgrad._jit import numba_cache_dir
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if numba_cache_dir():  # (as this process reads it: a user may have set numba.config's)
        env["NUMBA_CACHE_DIR"] = numba_cache_dir()
    env["FASTGRAD_COMPILE_PROCESSES"] = "1"
    env["FASTGRAD_COMPILE_PARENT"] = str(os.getpid())
    # the fastgrad this process runs, whatever the other would find first on its own path
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        code = "import sys; from fastgrad._compile_jobs import watch_parent; watch_parent(); " + code
        return subprocess.Popen([sys.executable, "-c", code, argument], env=env,
                                stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else subprocess.DEVNULL, text=capture)
    except OSError:
        return None


def watch_parent(interval=0.5) -> None:
    """In a process of :func:`start_python`: a daemon thread that ends this process when the
    process that started it is gone (killed by SIGKILL or SIGTERM, which leave it no chance to
    stop this one): it would otherwise compile on for a minute, for nobody."""
    import threading
    import time
    parent = int(os.environ.get("FASTGRAD_COMPILE_PARENT", "0") or 0)
    if not parent or os.getppid() != parent:  # (not started by start_python, or the parent is already gone)
        if parent:
            os._exit(1)
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)
    threading.Thread(target=watch, name="fastgrad-watch-parent", daemon=True).start()


def wait(process) -> str:
    """Until the other process ends, for :data:`DEADLINE` seconds at most (then it is stopped);
    returns its standard output if piped, else ""."""
    try:
        return process.communicate(timeout=DEADLINE)[0] or ""
    except subprocess.TimeoutExpired:
        stop(process)
        return ""
    except BaseException:  # Ctrl-C while waiting
        stop(process)
        raise


def stop(process) -> None:
    """Stop and reap a process of :func:`start_python`."""
    process.kill()
    process.wait()


def main(request: str) -> None:
    """The second process: compile the jobs of ``request`` (JSON: dtype, jobs) into the cache."""
    from fastgrad.kernels import dispatch
    spec = json.loads(request)
    for job in spec["jobs"]:
        dispatch.compile_job(tuple(job), np.dtype(spec["dtype"]))

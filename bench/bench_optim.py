"""Fused optimizer kernels vs their NumPy references (and torch's fused Adam), clipping, the triad.

Run:  pytest bench/bench_optim.py --benchmark-group-by=group -s
(``--benchmark-disable`` runs each case once, as a smoke test). At the end of the
module a table gives, from the minima of this run's rounds: the speed-up over the reference,
the ratio to torch's ``Adam(fused=True)``, and the effective bandwidth (bytes of the
arrays read and written per step / time) against the parallel triad's bandwidth
(``a = b + s c`` counted as 3 arrays) measured in the same run.
"""
import numpy as np
import pytest

import fastgrad
from fastgrad.kernels import grad_utils as KG
from fastgrad.kernels import optim as K
from fastgrad.kernels import stream as KS
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from fastgrad.reference import grad_utils as RG
from fastgrad.reference import optim as R
from fastgrad.reference import stream as RS

try:
    import torch
except ImportError:  # torch is an optional peer
    torch = None

SIZES = [(100_000, np.float32), (1_000_000, np.float32), (10_000_000, np.float32), (1_000_000, np.float64)]

# name -> (optimizer class, kwargs, arrays moved per step: reads + writes of full buffers)
OPTIMIZERS = {
    "sgd_momentum": (SGD, dict(lr=0.01, momentum=0.9), 5),  # read p, g, buf; write p, buf
    "rmsprop": (RMSprop, dict(), 5),                          # read p, g, v; write p, v
    "adagrad": (Adagrad, dict(), 5),                          # read p, g, s; write p, s
    "adam": (Adam, dict(), 7),                                # read p, g, m, v; write p, m, v
    "adamw": (AdamW, dict(), 7),
}
TORCH_FUSED = {"adam": "Adam", "adamw": "AdamW"}

# (kind, n, dtype) -> {competitor: minimum seconds}. The table uses minima: on this shared
# 2-core machine a parallel region whose thread is preempted waits a scheduler tick (~8 ms),
# which shows in medians but not in minima.
MINIMA = {}


def _ids(sizes):
    return [f"{n:.0e}-{np.dtype(dt).name}" for n, dt in sizes]


def _run(timed, benchmark, key, competitor, func):
    """Time ``func`` with the suite's ``timed`` fixture and keep its minimum for the table."""
    timed("-".join(map(str, key)), competitor, func)
    if not benchmark.disabled and benchmark.stats is not None:
        MINIMA.setdefault(key, {})[competitor] = benchmark.stats.stats.min


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Give torch as many threads as Numba, say so, and print the ratio table last."""
    write = request.config.pluginmanager.get_plugin("terminalreporter").write_line
    if torch is not None:
        torch.set_num_threads(fastgrad.get_num_threads()["numba"])
    write(f"torch threads: {torch.get_num_threads()}" if torch is not None else "torch absent")
    yield
    for line in _table():
        write(line)


def _table():
    triad = {(n, dt): v["fastgrad"] for (kind, n, dt), v in MINIMA.items() if kind == "triad" and "fastgrad" in v}
    lines = ["", "kind            size  dtype   fastgrad min ms  vs reference  vs torch fused  GB/s  / triad GB/s"]
    for (kind, n, dt), v in sorted(MINIMA.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        if "fastgrad" not in v:
            continue
        t = v["fastgrad"]
        arrays = OPTIMIZERS[kind][2] if kind in OPTIMIZERS else CLIPS[kind][3] if kind in CLIPS else 3
        gbs = arrays * n * np.dtype(dt).itemsize / t / 1e9
        tri = triad.get((n, dt))
        tri_gbs = 3 * n * np.dtype(dt).itemsize / tri / 1e9 if tri else float("nan")
        ref = f"{v['reference'] / t:10.1f}x" if "reference" in v else " " * 11
        tor = f"{v['torch_fused'] / t:12.2f}x" if "torch_fused" in v else " " * 13
        lines.append(f"{kind:13s} {n:8.0e}  {dt:7s} {1e3 * t:10.3f}  {ref}  {tor}  {gbs:5.1f}  "
                     f"{gbs / tri_gbs:4.2f} of {tri_gbs:.1f}")
    return lines


def _buffers(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n).astype(dtype), (0.1 * rng.standard_normal(n)).astype(dtype))


@pytest.mark.parametrize("n, dtype", SIZES, ids=_ids(SIZES))
def test_triad(timed, benchmark, n, dtype):
    a, b = _buffers(n, dtype)
    c = b.copy()
    _run(timed, benchmark, ("triad", n, np.dtype(dtype).name), "fastgrad", lambda: KS.triad(a, b, c, 0.5))


@pytest.mark.parametrize("n, dtype", SIZES[1:2], ids=_ids(SIZES[1:2]))
def test_triad_reference(timed, benchmark, n, dtype):
    a, b = _buffers(n, dtype)
    c = b.copy()
    _run(timed, benchmark, ("triad", n, np.dtype(dtype).name), "reference", lambda: RS.triad(a, b, c, 0.5))


COMPETITORS = [(kind, c) for kind in OPTIMIZERS for c in ("fastgrad", "reference", "torch_fused")
               if c != "torch_fused" or kind in TORCH_FUSED]


@pytest.mark.parametrize("kind, competitor", COMPETITORS, ids=["-".join(c) for c in COMPETITORS])
@pytest.mark.parametrize("n, dtype", SIZES, ids=_ids(SIZES))
def test_optimizer_step(timed, benchmark, kind, n, dtype, competitor):
    cls, kw, _ = OPTIMIZERS[kind]
    params, grads = _buffers(n, dtype)
    key = (kind, n, np.dtype(dtype).name)
    if competitor == "torch_fused":
        if torch is None:
            pytest.skip("torch absent")
        p = torch.from_numpy(params).requires_grad_()
        p.grad = torch.from_numpy(grads)
        opt = getattr(torch.optim, TORCH_FUSED[kind])([p], fused=True)
        _run(timed, benchmark, key, competitor, opt.step)
        return
    code, hyper, _ = cls(**kw).kernel_spec()
    state = K.new_state(code, hyper, n, dtype)
    step = K.optimizer_step if competitor == "fastgrad" else R.optimizer_step
    _run(timed, benchmark, key, competitor, lambda: step(code, params, grads, state, hyper, 10))


# clipping that acts: name -> (kernel, reference, arguments after the gradient, arrays moved)
CLIPS = {
    "clip_grad_norm": (KG.clip_grad_norm, RG.clip_grad_norm, (1.0, 2.0), 3),  # norm pass, scale pass
    "clip_grad_value": (KG.clip_grad_value, RG.clip_grad_value, (0.1,), 2),   # one clamping pass
}


@pytest.mark.parametrize("n, dtype", SIZES, ids=_ids(SIZES))
@pytest.mark.parametrize("competitor", ["fastgrad", "reference"])
@pytest.mark.parametrize("kind", list(CLIPS))
def test_clip(benchmark, kind, n, dtype, competitor):
    """Clipping that acts (the gradient is normal with standard deviation 0.1: its norm is above
    1, and about a third of its entries lie outside +-0.1): every round starts from the original gradient,
    restored untimed (``pedantic`` setup), since a clipped gradient would not be clipped again."""
    _, original = _buffers(n, dtype)
    grads = original.copy()
    kernel, reference, args, _ = CLIPS[kind]
    clip = kernel if competitor == "fastgrad" else reference
    clip(grads, *args)  # compile
    key = (kind, n, np.dtype(dtype).name)
    benchmark.group = "-".join(map(str, key))
    benchmark.extra_info["threads"] = fastgrad.describe_threads()
    benchmark.pedantic(clip, args=(grads, *args), setup=lambda: np.copyto(grads, original), rounds=40)
    if not benchmark.disabled and benchmark.stats is not None:
        MINIMA.setdefault(key, {})[competitor] = benchmark.stats.stats.min

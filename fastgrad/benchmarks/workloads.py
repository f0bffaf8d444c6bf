"""The table of workloads that ``fastgrad bench`` measures, and their competitors.

A :class:`Workload` makes its inputs once (``inputs(dtype)``, seeded) and hands them to
one factory per competitor; a factory returns the zero-argument callable to time. The
competitors are ``fastgrad`` and ``reference`` (its NumPy twin in :mod:`fastgrad.reference`)
and the peers of :mod:`fastgrad.benchmarks.peers`: ``torch`` (eager autograd; optimizers
with ``foreach=True``), ``torch fused`` (optimizers with ``fused=True``), ``jax`` (jit) and
``numdifftools``; and, for the training steps, the ``gemm floor`` (the step's matrix products
alone, :func:`gemm_floor`). A factory raising ``ImportError`` means: for fastgrad/reference, the workload is unavailable (its module has not landed);
for a peer, "not installed". Every import of fastgrad's own modules happens inside a
factory, so this table loads whatever exists.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fastgrad.benchmarks import peers

__all__ = ("Workload", "WORKLOADS", "TINY_WORKLOADS", "table", "PEERS", "BASELINES", "COMPETITORS", "gemm_floor", "ACTIVATION_NAMES", "select", "find", "size_label",
           "reference_activations")

PEERS = ("torch", "torch fused", "jax", "numdifftools")
BASELINES = ("gemm floor",)  # NumPy baselines that are not implementations of the workload
COMPETITORS = ("fastgrad", "reference") + BASELINES + PEERS
CORE = ("fastgrad", "reference")


@dataclass(frozen=True)
class Workload:
    """One measured task. ``key`` = "<name> [<dtype>]" is unique and names it in JSON and filters.

    ``bytes_moved``: bytes an ideal single pass reads and writes per call (memory-bound
    workloads only; None otherwise); ``compile_key``: workloads that call the same compiled
    kernels share one compile-time measurement; ``single_shot``: slow competitors timed once.
    """
    name: str
    family: str
    dtype: str
    inputs: Callable
    factories: dict
    bytes_moved: int | None = None
    compile_key: str = ""
    single_shot: frozenset = field(default_factory=frozenset)
    slow: frozenset = field(default_factory=frozenset)
    opt_in: bool = False  # measured only when named (select): Dask rows start clusters, big sklearn fits take a minute

    @property
    def key(self) -> str:
        return f"{self.name} [{self.dtype}]"

    def peers(self):
        return tuple(p for p in PEERS if p in self.factories)

    def build(self, budget, competitors=None):
        """({competitor: callable}, {absent peer: reason}). Raises ImportError when fastgrad's
        own side is unavailable. ``budget.slow_peers`` False skips the ``slow`` competitors."""
        chosen = tuple(self.factories) if competitors is None else tuple(competitors)
        data = self.inputs(np.dtype(self.dtype))
        funcs, absent = {}, {}
        for name in chosen:
            if name in self.slow and budget is not None and not budget.slow_peers:
                absent[name] = "skipped (--quick)"
                continue
            try:
                funcs[name] = self.factories[name](data)
            except ImportError:
                if name in CORE:
                    raise
                absent[name] = "not installed"
        return funcs, absent


def size_label(n: int) -> str:
    """``1e6`` for a power of ten, else the integer: names stay short and stable."""
    k = len(str(n)) - 1
    return f"1e{k}" if n == 10 ** k else str(n)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- activations
def reference_activations():
    """{name: (forward, backward)} of the NumPy references, the twin of ``F.ACTIVATIONS``."""
    from fastgrad import reference as R
    return {"identity": (R.identity, R.identity_backward), "relu": (R.relu, R.relu_backward),
            "leaky_relu": (R.leaky_relu, R.leaky_relu_backward), "elu": (R.elu, R.elu_backward),
            "gelu": (R.gelu, R.gelu_backward), "sigmoid": (R.sigmoid, R.sigmoid_backward),
            "tanh": (R.tanh, R.tanh_backward), "softplus": (R.softplus, R.softplus_backward),
            "silu": (R.silu, R.silu_backward), "softmax": (R.softmax, R.softmax_backward),
            "log_softmax": (R.log_softmax, R.log_softmax_backward)}


ACTIVATION_NAMES = ("identity", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus",
                    "silu", "softmax", "log_softmax")
ROW = 100  # softmax/log_softmax act along rows of this many entries


def _activation_inputs(name, n):
    shape = (n // ROW, ROW) if name in ("softmax", "log_softmax") else (n,)

    def make(dtype):
        rng = _rng()
        return {"z": (3 * rng.standard_normal(shape)).astype(dtype),
                "grad_a": rng.standard_normal(shape).astype(dtype)}
    return make


def _fwd_bwd(pair):
    forward, backward = pair

    def factory(d):
        z, grad_a = d["z"], d["grad_a"]
        return lambda: (forward(z), backward(z, grad_a))
    return factory


def _activation(name, n=1_000_000, dtype="float32", opt_in=False):
    def fastgrad_factory(d):
        from fastgrad.functional import ACTIVATIONS
        return _fwd_bwd(ACTIVATIONS[name])(d)

    def reference_factory(d):
        return _fwd_bwd(reference_activations()[name])(d)

    itemsize = np.dtype(dtype).itemsize
    # forward reads z, writes a; backward reads z and grad_a, writes grad_z
    return Workload(f"{name} fwd+bwd {size_label(n)}", "activations", dtype, _activation_inputs(name, n),
                    {"fastgrad": fastgrad_factory, "reference": reference_factory,
                     "torch": peers.torch_activation(name), "jax": peers.jax_activation(name)},
                    bytes_moved=5 * n * itemsize, compile_key=f"activations-{dtype}", opt_in=opt_in)


# ---------------------------------------------------------------- softmax cross-entropy
def _sce_inputs(n, k):
    def make(dtype):
        rng = _rng()
        return {"logits": (3 * rng.standard_normal((n, k))).astype(dtype),
                "labels": rng.integers(0, k, n).astype(np.int64)}
    return make


def _softmax_ce(n=4096, k=1000, dtype="float32"):
    def fastgrad_factory(d):
        from fastgrad.functional import softmax_cross_entropy
        return lambda: softmax_cross_entropy(d["logits"], d["labels"])

    def reference_factory(d):
        from fastgrad.reference import softmax_cross_entropy
        return lambda: softmax_cross_entropy(d["logits"], d["labels"])

    # reads the logits and the labels, writes the gradient
    moved = 2 * n * k * np.dtype(dtype).itemsize + 8 * n
    return Workload(f"softmax_cross_entropy ({n},{k})", "losses", dtype, _sce_inputs(n, k),
                    {"fastgrad": fastgrad_factory, "reference": reference_factory,
                     "torch": peers.torch_softmax_ce, "jax": peers.jax_softmax_ce},
                    bytes_moved=moved, compile_key=f"softmax_cross_entropy-{dtype}")


# ---------------------------------------------------------------- dense layer
def _dense_inputs(batch, n_in, n_out):
    def make(dtype):
        rng = _rng()
        return {"x": rng.standard_normal((batch, n_in)).astype(dtype),
                "W": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype),
                "b": (0.1 * rng.standard_normal(n_out)).astype(dtype),
                "grad_y": rng.standard_normal((batch, n_out)).astype(dtype)}
    return make


def _dense_pass(module):
    def factory(d):
        forward, backward = module()
        x, W, b, grad_y = d["x"], d["W"], d["b"], d["grad_y"]

        def step():
            y, z = forward(x, W, b, "relu", return_preactivation=True)
            return backward(x, W, z, grad_y, "relu")
        return step
    return factory


def _fastgrad_dense():
    from fastgrad.functional import dense_backward, dense_forward
    return dense_forward, dense_backward


def _reference_dense():
    from fastgrad.reference import dense_backward, dense_forward
    return dense_forward, dense_backward


def _dense(batch, n_in=784, n_out=256, dtype="float32"):
    return Workload(f"dense {n_in}->{n_out} relu fwd+bwd b{batch}", "dense", dtype,
                    _dense_inputs(batch, n_in, n_out),
                    {"fastgrad": _dense_pass(_fastgrad_dense), "reference": _dense_pass(_reference_dense),
                     "torch": peers.torch_dense, "jax": peers.jax_dense},
                    compile_key=f"dense-{dtype}")


# ---------------------------------------------------------------- optimizers and clipping
def _flat_inputs(n):
    def make(dtype):
        rng = _rng()
        return {"params": rng.standard_normal(n).astype(dtype),
                "grads": (0.1 * rng.standard_normal(n)).astype(dtype)}
    return make


# name -> (fastgrad.optim class name, kwargs, torch class name, arrays moved per step)
OPTIMIZERS = {
    "adam": ("Adam", {"lr": 1e-3}, "Adam", 7),           # read p, g, m, v; write p, m, v
    "adamw": ("AdamW", {"lr": 1e-3}, "AdamW", 7),
    "sgd_momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}, "SGD", 5),  # read p, g, buf; write p, buf
}


def _optimizer_class(name):
    from fastgrad import optim
    return {"Adam": optim.Adam, "AdamW": optim.AdamW, "SGD": optim.SGD}[name]


def _optimizer(kind, n=10_000_000, dtype="float32"):
    cls_name, kwargs, torch_name, arrays = OPTIMIZERS[kind]

    def fastgrad_factory(d):
        opt = _optimizer_class(cls_name)(**kwargs)
        params, grads = d["params"].copy(), d["grads"]
        return lambda: opt.step(params, grads)

    def reference_factory(d):
        from fastgrad.kernels.optim import new_state
        from fastgrad.reference.optim import optimizer_step
        code, hyper, _ = _optimizer_class(cls_name)(**kwargs).kernel_spec()
        params, grads = d["params"].copy(), d["grads"]
        state = new_state(code, hyper, params.size, params.dtype)
        steps = itertools.count(1)
        return lambda: optimizer_step(code, params, grads, state, hyper, next(steps))

    return Workload(f"{kind} step {size_label(n)}", "optim", dtype, _flat_inputs(n),
                    {"fastgrad": fastgrad_factory, "reference": reference_factory,
                     "torch": peers.torch_optimizer(torch_name, kwargs, fused=False),
                     "torch fused": peers.torch_optimizer(torch_name, kwargs, fused=True),
                     "jax": peers.jax_optimizer(kind, kwargs)},
                    bytes_moved=arrays * n * np.dtype(dtype).itemsize, compile_key=f"optimizer_step-{dtype}")


def _shrinking_clip(clip, grads):
    """Each call clips: ``max_norm`` shrinks by 0.1% per call below the norm left by the last."""
    start = float(np.linalg.norm(grads.astype(np.float64)))
    calls = itertools.count(1)
    return lambda: clip(grads, start * 0.999 ** next(calls))


def _clip(n=10_000_000, dtype="float32"):
    def fastgrad_factory(d):
        from fastgrad.optim import clip_grad_norm
        return _shrinking_clip(clip_grad_norm, d["grads"].copy())

    def reference_factory(d):
        from fastgrad.reference.grad_utils import clip_grad_norm
        return _shrinking_clip(lambda g, m: clip_grad_norm(g, m, 2.0), d["grads"].copy())

    # one pass for the norm (read), one to scale (read and write)
    return Workload(f"clip_grad_norm {size_label(n)}", "optim", dtype, _flat_inputs(n),
                    {"fastgrad": fastgrad_factory, "reference": reference_factory,
                     "torch": peers.torch_clip(_shrinking_clip), "jax": peers.jax_clip},
                    bytes_moved=3 * n * np.dtype(dtype).itemsize, compile_key=f"clip_grad_norm-{dtype}")


# ---------------------------------------------------------------- finite-difference Hessian
def _hessian_inputs(n):
    def make(dtype):
        return {"x": _rng().uniform(-2, 2, n).astype(dtype)}
    return make


def _hessian(n=200):
    def fastgrad_factory(d):
        from fastgrad import diff, testfunctions
        return lambda: diff.hessian(testfunctions.rosenbrock_jit, d["x"])

    def reference_factory(d):
        from fastgrad import testfunctions
        from fastgrad.reference import diff
        return lambda: diff.hessian(testfunctions.rosenbrock_jit, d["x"])

    return Workload(f"hessian rosenbrock n={n}", "diff", "float64", _hessian_inputs(n),
                    {"fastgrad": fastgrad_factory, "reference": reference_factory,
                     "jax": peers.jax_hessian, "numdifftools": peers.numdifftools_hessian},
                    compile_key="hessian-float64", single_shot=frozenset({"numdifftools"}),
                    slow=frozenset({"numdifftools"}))


# ---------------------------------------------------------------- a training step of an MLP
LAYERS = (784, 256, 128, 10)
SMALL_LAYERS = (32, 64, 64, 1)


def _mlp_inputs(layers, loss, batch):
    def make(dtype):
        rng = _rng()
        X = rng.standard_normal((batch, layers[0])).astype(dtype)
        if loss == "mse":
            return {"X": X, "y": rng.standard_normal((batch, layers[-1])).astype(dtype)}
        return {"X": X, "y": rng.integers(0, layers[-1], batch).astype(np.int64)}
    return make


def _model(backend, dtype, layers=LAYERS, loss="softmax_cross_entropy"):
    from fastgrad import Dense, Sequential
    from fastgrad.optim import Adam
    dense = [Dense(layers[i], layers[i + 1], activation="relu" if i + 2 < len(layers) else "identity")
             for i in range(len(layers) - 1)]
    return Sequential(dense, loss=loss, optimizer=Adam(lr=1e-3), dtype=dtype, seed=0, backend=backend)


def _train_step(backend, layers, loss):
    def factory(d):
        model = _model(backend, d["X"].dtype.name, layers, loss)
        X, y = d["X"], d["y"]
        return lambda: model.train_step(X, y)
    return factory


def gemm_floor(layers):
    """Factory of the GEMM floor of a training step: the step's matrix products alone -- ``a W``
    per layer forward, ``a^T delta`` per layer and ``delta W^T`` (all but the first layer)
    backward -- with NumPy's BLAS into preallocated outputs. What a perfect implementation of the
    step still pays; the report gives the step's ratio to it."""
    def factory(d):
        X = d["X"]
        rng = _rng(1)
        batch, dtype = X.shape[0], X.dtype
        Ws = [(0.1 * rng.standard_normal((a, b))).astype(dtype) for a, b in zip(layers[:-1], layers[1:])]
        acts = [X] + [np.empty((batch, n), dtype) for n in layers[1:]]
        # random, not np.empty: garbage can hold NaN or denormals, which slow some BLAS kernels
        deltas = [(0.1 * rng.standard_normal((batch, n))).astype(dtype) for n in layers]
        grads = [np.empty_like(W) for W in Ws]

        def step():
            for i, W in enumerate(Ws):
                np.dot(acts[i], W, acts[i + 1])
            for i in range(len(Ws) - 1, -1, -1):
                np.dot(acts[i].T, deltas[i + 1], grads[i])
                if i:
                    np.dot(deltas[i + 1], Ws[i].T, deltas[i])
        return step
    return factory


def _mlp(batch, dtype="float32", layers=LAYERS, loss="softmax_cross_entropy"):
    label = "-".join(map(str, layers)) + (" mse" if loss == "mse" else "")
    return Workload(f"train_step {label} b{batch}", "model", dtype, _mlp_inputs(layers, loss, batch),
                    {"fastgrad": _train_step("compiled", layers, loss),
                     "reference": _train_step("reference", layers, loss),
                     "gemm floor": gemm_floor(layers),
                     "torch": peers.torch_train_step(layers, fused=False, loss=loss),
                     "torch fused": peers.torch_train_step(layers, fused=True, loss=loss),
                     "jax": peers.jax_train_step(layers, loss=loss)},
                    compile_key=f"train_step-{dtype}")


def table(tiny=False):
    """The workloads of issue 6 (``tiny=True``: the same code paths at toy sizes, for tests)."""
    if tiny:
        return tuple([_activation(name, n=1000) for name in ACTIVATION_NAMES]
                     + [_softmax_ce(n=8, k=5), _dense(4, n_in=6, n_out=3), _optimizer("adam", n=100),
                        _optimizer("sgd_momentum", n=100), _clip(n=100), _hessian(n=6), _mlp(4),
                        _mlp(4, layers=SMALL_LAYERS, loss="mse")])
    return tuple([_activation(name) for name in ACTIVATION_NAMES]
                 + [_softmax_ce(dtype="float32"), _softmax_ce(dtype="float64")]
                 + [_dense(32), _dense(2048)]
                 + [_optimizer(kind) for kind in OPTIMIZERS] + [_clip()]
                 + [_hessian()]
                 + [_mlp(32), _mlp(128), _mlp(1024), _mlp(32, layers=SMALL_LAYERS, loss="mse")]
                 + _sklearn_rows()
                 + _dask_rows()
                 + _activation_sizes())


def _activation_sizes():
    """Issue 12's other activation sizes and dtype, measured when named (``--filter activations``
    gives them with the default rows): 1e4 float32, where a call's fixed cost counts, and 1e6
    float64."""
    return ([_activation(name, n=10_000, opt_in=True) for name in ACTIVATION_NAMES]
            + [_activation(name, dtype="float64", opt_in=True) for name in ACTIVATION_NAMES])


def _dask_rows():
    from fastgrad.benchmarks.dask_workloads import workloads
    return workloads()


def _sklearn_rows():
    from fastgrad.benchmarks.sklearn_workloads import workloads
    return workloads()


WORKLOADS = table()
TINY_WORKLOADS = table(tiny=True)


def select(words=None, workloads=WORKLOADS):
    """The workloads whose key or family contains any of ``words`` (case-insensitive); all but
    the ``opt_in`` ones (the Dask rows: ``fastgrad bench --filter distributed``; the synthetic
    scikit-learn rows: ``--filter sklearn``; the activations at 1e4 and in float64: ``--filter
    activations``) when empty."""
    if not words:
        return tuple(w for w in workloads if not w.opt_in)
    lowered = [w.lower() for w in words]
    return tuple(w for w in workloads if any(x in w.key.lower() or x == w.family for x in lowered))


def find(key, workloads=WORKLOADS + TINY_WORKLOADS):
    """The workload whose ``key`` is ``key`` (in the full or the tiny table); ``KeyError`` otherwise."""
    for w in workloads:
        if w.key == key:
            return w
    raise KeyError(f"no workload {key!r}; known: {[w.key for w in workloads]}")

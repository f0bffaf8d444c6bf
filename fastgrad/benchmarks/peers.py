"""Peer implementations of the bench workloads: PyTorch (CPU, eager), JAX (jit), numdifftools.

Each ``*_factory`` takes the workload's inputs (a dict of NumPy arrays, made once) and
returns the zero-argument callable to time, doing the same work as fastgrad's callable:
forward and backward, or one optimizer update in place. Importing a missing peer raises
``ImportError``, which the table reports as "not installed". PyTorch gets ``THREADS[0]`` threads
(set by the benchmark's child process; None: fastgrad's Numba thread count); XLA's CPU client uses
every core, which on the benchmark machines is the same. None of these packages is a dependency
of fastgrad.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ("THREADS", "torch_activation", "torch_softmax_ce", "torch_dense", "torch_optimizer", "torch_clip",
           "torch_train_step", "jax_activation", "jax_softmax_ce", "jax_dense", "jax_optimizer", "jax_clip",
           "jax_hessian", "jax_train_step", "numdifftools_hessian")


# threads the peers use; the isolated runner's child sets it, so that no peer imports fastgrad's pools
THREADS = [None]


# ---------------------------------------------------------------- PyTorch
def _torch():
    import torch
    threads = THREADS[0]
    if threads is None:
        from fastgrad import get_num_threads
        threads = get_num_threads()["numba"]
    torch.set_num_threads(threads)
    return torch


def torch_activation(name):
    def factory(d):
        torch = _torch()
        nnf = torch.nn.functional
        fn = {"identity": torch.clone, "relu": torch.relu, "leaky_relu": nnf.leaky_relu, "elu": nnf.elu,
              "gelu": nnf.gelu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softplus": nnf.softplus,
              "silu": nnf.silu, "softmax": lambda t: torch.softmax(t, -1),
              "log_softmax": lambda t: torch.log_softmax(t, -1)}[name]
        z = torch.from_numpy(d["z"]).requires_grad_()
        grad_a = torch.from_numpy(d["grad_a"])
        return lambda: torch.autograd.grad(fn(z), z, grad_a)
    return factory


def torch_softmax_ce(d):
    torch = _torch()
    logits = torch.from_numpy(d["logits"]).requires_grad_()
    labels = torch.from_numpy(d["labels"])
    return lambda: torch.autograd.grad(torch.nn.functional.cross_entropy(logits, labels), logits)


def torch_dense(d):
    torch = _torch()
    x, W, b = (torch.from_numpy(d[k]).requires_grad_() for k in ("x", "W", "b"))
    grad_y = torch.from_numpy(d["grad_y"])
    return lambda: torch.autograd.grad(torch.relu(torch.addmm(b, x, W)), (x, W, b), grad_y)


def torch_optimizer(class_name, kwargs, fused):
    """``torch.optim.<class_name>`` with ``fused=True`` or ``foreach=True`` on one flat tensor."""
    def factory(d):
        torch = _torch()
        p = torch.from_numpy(d["params"].copy())
        p.grad = torch.from_numpy(d["grads"])
        opt = getattr(torch.optim, class_name)([p], **kwargs, **({"fused": True} if fused else {"foreach": True}))
        return opt.step
    return factory


def torch_clip(shrinking):
    def factory(d):
        torch = _torch()
        p = torch.from_numpy(d["params"])
        p.grad = torch.from_numpy(d["grads"].copy())
        return shrinking(lambda g, m: torch.nn.utils.clip_grad_norm_([p], m, foreach=True), d["grads"])
    return factory


def torch_train_step(layers, fused, loss="softmax_cross_entropy"):
    """The MLP step in PyTorch eager: forward, loss (softmax cross-entropy or MSE), backward, Adam."""
    def factory(d):
        torch = _torch()
        torch.manual_seed(0)
        mods = []
        for i in range(len(layers) - 1):
            mods.append(torch.nn.Linear(layers[i], layers[i + 1], dtype=getattr(torch, d["X"].dtype.name)))
            if i + 2 < len(layers):
                mods.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*mods)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, **({"fused": True} if fused else {"foreach": True}))
        X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])

        def step():
            opt.zero_grad(set_to_none=True)
            out = net(X)
            value = (torch.nn.functional.cross_entropy(out, y) if loss == "softmax_cross_entropy"
                     else torch.nn.functional.mse_loss(out, y))
            value.backward()
            opt.step()
            return value
        return step
    return factory


# ---------------------------------------------------------------- JAX
def _jax():
    import os
    import sys
    import warnings
    if THREADS[0] == 1 and "jax" not in sys.modules:  # XLA reads its thread options once, at import
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    import jax
    jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64; float32 stay float32
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    return jax


def _ready(fn):
    """A callable that waits for JAX's asynchronous result."""
    def call():
        import jax
        return jax.block_until_ready(fn())
    return call


def _jax_activation_fn(name):
    jax = _jax()
    jnp, nn = jax.numpy, jax.nn
    return {"identity": lambda z: z * 1, "relu": nn.relu, "leaky_relu": nn.leaky_relu, "elu": nn.elu,
            "gelu": lambda z: nn.gelu(z, approximate=False), "sigmoid": nn.sigmoid, "tanh": jnp.tanh,
            "softplus": nn.softplus, "silu": nn.silu, "softmax": lambda z: nn.softmax(z, axis=-1),
            "log_softmax": lambda z: nn.log_softmax(z, axis=-1)}[name]


def jax_activation(name):
    def factory(d):
        jax = _jax()
        fn = _jax_activation_fn(name)

        @jax.jit
        def fwd_bwd(z, g):
            a, vjp = jax.vjp(fn, z)
            return a, vjp(g)[0]
        z, g = jax.device_put(d["z"]), jax.device_put(d["grad_a"])
        return _ready(lambda: fwd_bwd(z, g))
    return factory


def _jax_cross_entropy(jax, logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jax.numpy.take_along_axis(logp, labels[:, None], axis=1).mean()


def jax_softmax_ce(d):
    jax = _jax()
    step = jax.jit(jax.value_and_grad(lambda z, y: _jax_cross_entropy(jax, z, y)))
    logits, labels = jax.device_put(d["logits"]), jax.device_put(d["labels"])
    return _ready(lambda: step(logits, labels))


def jax_dense(d):
    jax = _jax()

    @jax.jit
    def fwd_bwd(x, W, b, g):
        y, vjp = jax.vjp(lambda x, W, b: jax.nn.relu(x @ W + b), x, W, b)
        return y, vjp(g)
    x, W, b, g = (jax.device_put(d[k]) for k in ("x", "W", "b", "grad_y"))
    return _ready(lambda: fwd_bwd(x, W, b, g))


def _jax_update(kind, kwargs):
    """(init(params) -> state tuple, update(params, grads, state, step) -> (params, state)) in jnp."""
    jnp = _jax().numpy
    lr = kwargs.get("lr", 1e-3)
    if kind == "sgd_momentum":
        mu = kwargs["momentum"]

        def update(p, g, state, t):
            t = jnp.asarray(t).astype(p.dtype)  # keeps float32 math float32 under x64
            buf = jnp.where(t == 1, g, mu * state[0] + g)
            return p - lr * buf, (buf,)
        return (lambda p: (jnp.zeros_like(p),)), update
    b1, b2, eps = 0.9, 0.999, 1e-8
    decay = kwargs.get("weight_decay", 1e-2) if kind == "adamw" else 0.0

    def update(p, g, state, t):
        t = jnp.asarray(t).astype(p.dtype)
        m = b1 * state[0] + (1 - b1) * g
        v = b2 * state[1] + (1 - b2) * g * g
        p = p * (1 - lr * decay)
        step = lr / (1 - b1 ** t)
        denom = jnp.sqrt(v) / jnp.sqrt(1 - b2 ** t) + eps
        return p - step * m / denom, (m, v)
    return (lambda p: (jnp.zeros_like(p), jnp.zeros_like(p))), update


def jax_optimizer(kind, kwargs):
    """Adam/AdamW/SGD-momentum written in jnp (PyTorch's update equations), jit with donated buffers."""
    def factory(d):
        jax = _jax()
        init, update = _jax_update(kind, kwargs)
        step = jax.jit(update, donate_argnums=(0, 2))
        box = {"p": jax.device_put(d["params"].copy()), "t": 0}
        box["s"] = init(box["p"])
        g = jax.device_put(d["grads"])

        def call():
            box["t"] += 1
            box["p"], box["s"] = step(box["p"], g, box["s"], box["t"])
            return jax.block_until_ready(box["p"])
        return call
    return factory


def jax_clip(d):
    jax = _jax()
    jnp = jax.numpy

    @jax.jit
    def clip(g, max_norm):
        total = jnp.sqrt(jnp.sum(g * g))
        return g * jnp.minimum(1.0, max_norm / (total + 1e-6)).astype(g.dtype), total
    box = {"g": jax.device_put(d["grads"].copy()), "k": 0}
    start = float(np.linalg.norm(d["grads"].astype(np.float64)))

    def call():
        box["k"] += 1
        box["g"], total = clip(box["g"], start * 0.999 ** box["k"])
        return jax.block_until_ready(box["g"])
    return call


def jax_hessian(d):
    """The exact Hessian by forward-over-reverse autodiff (not finite differences)."""
    jax = _jax()
    jnp = jax.numpy

    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    hess = jax.jit(jax.hessian(rosenbrock))
    x = jax.device_put(d["x"])
    return _ready(lambda: hess(x))


def jax_train_step(layers, loss="softmax_cross_entropy"):
    """The MLP step in jnp: forward, loss (softmax cross-entropy or MSE), backward, Adam; jit with donated state."""
    def factory(d):
        jax = _jax()
        jnp = jax.numpy
        dtype = d["X"].dtype
        rng = np.random.default_rng(0)
        params = []
        for n_in, n_out in zip(layers[:-1], layers[1:]):
            bound = 1 / math.sqrt(n_in)
            params.append((jnp.asarray(rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype)),
                           jnp.asarray(rng.uniform(-bound, bound, n_out).astype(dtype))))

        def loss_fn(params, X, y):
            a = X
            for i, (W, b) in enumerate(params):
                a = a @ W + b
                if i + 1 < len(params):
                    a = jax.nn.relu(a)
            if loss == "softmax_cross_entropy":
                return _jax_cross_entropy(jax, a, y)
            return jnp.mean((a - y) ** 2)
        _, update = _jax_update("adam", {"lr": 1e-3})

        def train_step(params, state, X, y, t):
            loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
            flat_p, tree = jax.tree_util.tree_flatten(params)
            flat_g = jax.tree_util.tree_leaves(grads)
            new_p, new_s = [], []
            for p, g, s in zip(flat_p, flat_g, state):
                p, s = update(p, g, s, t)
                new_p.append(p)
                new_s.append(s)
            return jax.tree_util.tree_unflatten(tree, new_p), new_s, loss
        step = jax.jit(train_step, donate_argnums=(0, 1))
        box = {"p": params, "s": [(jnp.zeros_like(p), jnp.zeros_like(p)) for p in jax.tree_util.tree_leaves(params)],
               "t": 0}
        X, y = jax.device_put(d["X"]), jax.device_put(d["y"])

        def call():
            box["t"] += 1
            box["p"], box["s"], loss = step(box["p"], box["s"], X, y, box["t"])
            return jax.block_until_ready(loss)
        return call
    return factory


# ---------------------------------------------------------------- numdifftools
def numdifftools_hessian(d):
    import numdifftools
    from fastgrad import testfunctions
    return lambda: numdifftools.Hessian(testfunctions.rosenbrock_jit)(d["x"])

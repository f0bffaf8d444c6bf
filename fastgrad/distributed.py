"""Data-parallel training and distributed Hessians on Dask (optional: ``pip install fastgrad[distributed]``).

Importing :mod:`fastgrad` never imports Dask; this module imports ``distributed`` when called.
The client is always an argument (``None``: ``distributed.default_client()``), never stored.

Design, from figures measured on a 2-core machine (docs/distributed.md): one synchronous
round through the scheduler costs 13-122 ms while a compiled mini-batch step costs ~0.5 ms,
so nothing here synchronises per mini-batch of ordinary size.

* ``strategy="gradient"``: exact synchronous data parallelism for full-batch or large-batch
  training. Each step ships the parameters inside the task graph; every shard returns the
  sum of its losses and gradients over its part of the global batch (the compiled
  ``loss_and_grad``); the driver combines them in shard order and applies clipping and the
  fused optimizer update. The driver owns parameters and optimizer state, so ``save``,
  callbacks, schedules and the non-finite rollback work as in local training.
* ``strategy="average"``: local SGD. Every shard runs the compiled epoch loop for
  ``sync_every`` epochs from the same parameters and optimizer state; the driver averages
  parameters and optimizer state, weighted by rows. One round per sync.

Shards are tasks whose inputs live in the graph (NumPy slices, or a Dask array's chunks),
so a worker that dies costs only the current round: Dask recomputes its shards elsewhere
and the tasks are retried.
"""
from __future__ import annotations

import math
import pickle
import threading
import uuid

import numpy as np

from fastgrad._checks import as_int, as_scalar, check_choice

STRATEGIES = ("gradient", "average")
_MODELS = {}                 # per worker process: fit token -> (model, lock)
_MODELS_LOCK = threading.Lock()


def _distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("fastgrad.distributed needs Dask's distributed scheduler: "
                          "pip install 'fastgrad[distributed]'") from exc
    return distributed


def _client(client):
    if client is None:
        return _distributed().default_client()
    if not hasattr(client, "submit") or not hasattr(client, "gather"):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    return client


def _workers(client):
    """The addresses of the cluster's workers, sorted.

    Asked of the scheduler directly (``Client.nthreads``): ``Client.scheduler_info()`` returns a
    cached identity that the client's periodic refresh replaces with one holding no per-worker
    entries, so under a race it reports a live cluster as empty (distributed 2026.8).
    """
    workers = sorted(client.nthreads())
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    return workers


# ----- worker side ----------------------------------------------------------------------------
def _set_threads(threads):
    """Numba's thread count is per calling thread: set it in every task (cheap, idempotent)."""
    if threads is not None:
        from fastgrad import set_num_threads
        set_num_threads(threads)


def threads_plugin(threads):
    """A Dask ``WorkerPlugin`` that caps Numba and the BLAS to ``threads`` on each worker
    (Dask's nanny sets ``OMP_NUM_THREADS=1``, which does not reach Numba's pool)."""
    class ThreadsPlugin(_distributed().WorkerPlugin):
        name = "fastgrad-threads"

        def setup(self, worker):
            _set_threads(threads)

    return ThreadsPlugin()


def _model_for(token, blob):
    """The model of fit ``token`` in this worker process, unpickled once, with its lock."""
    with _MODELS_LOCK:
        if token not in _MODELS:
            _MODELS[token] = (pickle.loads(blob), threading.Lock())
        return _MODELS[token]


def _forget(token):
    with _MODELS_LOCK:
        _MODELS.pop(token, None)


def _identity(value):
    return value


def _make_shard(X, y, w=None):
    return np.ascontiguousarray(X), np.ascontiguousarray(y), w


def _shard_gradient(token, blob, params, shard, rows, threads):
    """(sum of losses, sum of gradients in float64, rows) over ``shard[rows]`` at ``params``; with
    sample weights, (sum of w_i l_i, sum of the weighted gradients, sum of w_i) (penalty included
    in each, times the rows or the weight sum, so that the driver's division leaves it once)."""
    _set_threads(threads)
    X, y, w = shard
    model, lock = _model_for(token, blob)
    with lock:
        model.params[...] = params
        if w is None:
            loss, grad = model.loss_and_grad(X[rows], y[rows])
            m = len(rows)
        else:  # the kernel itself: a part whose weights sum to 0 gives loss 0, gradient 0 (times m = 0)
            loss, grad = model._batch_loss_grad(*model._data(X[rows], y[rows]), w=w[rows])
            m = float(np.sum(w[rows], dtype=np.float64))
    return loss * m, grad.astype(np.float64) * m, m


def _shard_fit(token, blob, params, opt_state, shard, seed, epochs, batch_size, shuffle, clip_norm, threads):
    """Local SGD on one shard: ``epochs`` compiled epochs from ``params``/``opt_state``."""
    _set_threads(threads)
    X, y, w = shard
    model, lock = _model_for(token, blob)
    with lock:
        model.params[...] = params
        model.optimizer.load_state_dict(opt_state)
        model.rng = np.random.default_rng(seed)
        if w is not None and not np.any(w > 0):  # nothing to learn here: weight 0 in the average
            return model.params.copy(), model.optimizer.state_dict(), 0.0, 0.0
        history = model.fit(X, y, epochs=epochs, batch_size=min(batch_size, len(X)), shuffle=shuffle,
                            clip_norm=clip_norm, verbose=0, sample_weight=w)
        size = len(X) if w is None else float(np.sum(w, dtype=np.float64))
        return model.params.copy(), model.optimizer.state_dict(), size, history.history["loss"][-1]


def _compile_on_worker(blob, X, y, threads):
    """A training step, a gradient and a prediction on two rows: fills the on-disk kernel cache
    (or loads it) for every compiled call the strategies make."""
    _set_threads(threads)
    import time
    model = pickle.loads(blob)
    start = time.perf_counter()
    model.predict(X)
    for call in (model.loss_and_grad, model.train_step):
        try:
            call(X, y)
        except FloatingPointError:  # compiled all the same; fit reports it on its own step
            pass
    return time.perf_counter() - start


# ----- driver side ----------------------------------------------------------------------------
def _model_blob(model):
    """The model pickled with the standard library (raises if it does not pickle)."""
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(f"the model must pickle with the standard library to train on Dask: {exc}") from exc


def warmup(client=None, model=None, X=None, y=None, threads_per_worker=None, dtypes=("float32",)):
    """Compile fastgrad's training kernels on ONE worker, then load them on the others.

    Concurrent cold compiles of the same cached functions can corrupt Numba's cache and waste the
    cores, so the first worker compiles alone (filling the on-disk cache the workers share on one
    machine, or its own otherwise) and the rest start only after it. ``model`` with a few rows of
    ``X``/``y`` chooses what is compiled (``fit`` passes its own); without a model, a small MLP in
    each of ``dtypes``. Returns ``{worker: seconds}`` (the sum over what was compiled).
    """
    client = _client(client)
    workers = _workers(client)
    if model is None:
        from fastgrad import Dense, Sequential
        jobs = [(Sequential([Dense(4, 4, activation="relu"), Dense(4, 2)], loss="softmax_cross_entropy",
                            dtype=dtype, seed=0), np.zeros((2, 4), dtype), np.array([0, 1])) for dtype in dtypes]
    elif X is None or y is None:
        raise ValueError("warmup needs a few rows X, y when a model is given")
    else:
        jobs = [(model, np.asarray(X[:2]), np.asarray(y[:2]))]
    seconds = dict.fromkeys(workers, 0.0)
    for m, Xs, ys in jobs:
        blob = _model_blob(m)
        for group in (workers[:1], workers[1:]):
            tasks = [client.submit(_compile_on_worker, blob, Xs, ys, threads_per_worker, workers=[w],
                                   allow_other_workers=False, pure=False) for w in group]
            for w, t in zip(group, client.gather(tasks)):
                seconds[w] += t
    return seconds


class _Shards:
    """Row shards of (X, y) held by the cluster: futures, their row counts and first rows."""

    def __init__(self, client, model, X, y, retries, sample_weight=None):
        if _is_dask_array(X):
            self._from_dask(client, model, X, y, retries, sample_weight)
        else:
            self._from_numpy(client, model, X, y, retries, sample_weight)
        self.starts = np.concatenate([[0], np.cumsum(self.rows)[:-1]]).astype(np.int64)
        self.n = int(np.sum(self.rows))

    def _from_numpy(self, client, model, X, y, retries, sample_weight):
        X = model._inputs(X)
        y = np.asarray(y)
        targets = model._targets(y, X.shape[0])
        w = None if sample_weight is None else model._weights(sample_weight, None, *targets, X.shape[0])
        self.weighted = w is not None
        workers = _workers(client)
        k = min(len(workers), X.shape[0])
        bounds = [X.shape[0] * i // k for i in range(k + 1)]
        # The slices are inputs of the tasks, kept by the scheduler: a shard lost with its
        # worker is recomputed elsewhere (a bare scatter could not be).
        self.futures = [client.submit(_make_shard, X[lo:hi], y[lo:hi], None if w is None else w[lo:hi],
                                      workers=[worker], allow_other_workers=True, pure=False, retries=retries)
                        for lo, hi, worker in zip(bounds[:-1], bounds[1:], workers)]
        self.rows = np.diff(bounds).astype(np.int64)

    def _from_dask(self, client, model, X, y, retries, sample_weight):
        import dask
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got a Dask array of shape {X.shape}")
        if not _is_dask_array(y) or y.shape[0] != X.shape[0]:
            raise ValueError("with a Dask array X, y must be a Dask array of as many rows")
        X = X.rechunk({1: -1})
        y = y.rechunk({0: X.chunks[0]} if y.ndim == 1 else {0: X.chunks[0], 1: -1})
        self.rows = np.asarray(X.chunks[0], dtype=np.int64)
        n = int(self.rows.sum())
        w = None
        if sample_weight is not None:
            # Weights (n,) and targets are one or k values per row: read once on the driver to
            # validate them as local fit does (finite, >= 0, not all zero, the loss's targets),
            # then cut along X's row chunks; each slice is an input of its shard's task.
            w_np = np.asarray(sample_weight.compute() if _is_dask_array(sample_weight) else sample_weight)
            w = model._weights(w_np, None, *model._targets(np.asarray(y.compute()), n), n)
        starts = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)
        parts = [dask.delayed(_make_shard)(xc, yc, None if w is None else w[lo:hi])
                 for xc, yc, lo, hi in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), starts[:-1], starts[1:])]
        self.futures = client.compute(parts, retries=retries)
        self.weighted = w is not None


def _is_dask_array(a):
    return type(a).__module__.startswith("dask.array")


def global_batches(rows, batch_size, seed, shuffle=True):
    """The global mini-batches of one epoch of ``strategy="gradient"``.

    ``rows[s]`` is shard s's row count; with ``T = ceil(sum(rows) / batch_size)`` steps, shard
    s's rows are permuted by ``default_rng([seed, s])`` (identity without ``shuffle``) and cut
    into T nearly equal parts; global batch t is the union of every shard's part t. Returns
    ``parts[t][s]``: shard-local row indices. Exposed so local training can replay the same
    batches (``start_s + parts[t][s]``).
    """
    rows = [int(r) for r in rows]
    steps = max(1, math.ceil(sum(rows) / batch_size))
    orders = [np.random.default_rng([seed, s]).permutation(r) if shuffle else np.arange(r)
              for s, r in enumerate(rows)]
    return [[order[t * r // steps:(t + 1) * r // steps] for order, r in zip(orders, rows)] for t in range(steps)]


def _combine(results, dtype, model=None):
    """Rows-weighted mean of shard results, summed in shard order (deterministic); with sample
    weights the results carry weight sums, and a global batch whose weights sum to 0 has, as in
    local training, loss 0 and gradient 0 plus the penalty (computed here by ``model``)."""
    total = sum(r[2] for r in results)
    if total == 0:
        grad = np.zeros(model.n_params, model.dtype)
        return model._penalty(grad), grad
    loss = sum(r[0] for r in results) / total
    grad = results[0][1].copy()
    for r in results[1:]:
        grad += r[1]
    return loss, (grad / total).astype(dtype)


def _apply(model, grad, clip_norm, where):
    """Clip and update on the driver; roll back and raise if anything became non-finite."""
    from fastgrad.optim import clip_grad_norm
    if not np.all(np.isfinite(grad)):
        raise FloatingPointError(f"non-finite gradient at {where}; the model keeps its parameters")
    if clip_norm is not None:
        clip_grad_norm(grad, clip_norm)
    saved_params, saved_state = model.params.copy(), model.optimizer.state_dict()
    model.optimizer.step(model.params, grad)
    model._proximal_l1(model.optimizer.lr)
    if not np.all(np.isfinite(model.params)):
        model.params[...] = saved_params
        model.optimizer.load_state_dict(saved_state)
        raise FloatingPointError(f"the update at {where} made parameters non-finite; it was rolled back")


def _average(results, dtype):
    """Rows-weighted average of the workers' parameters and optimizer states."""
    total = float(sum(r[2] for r in results))
    params = sum(r[0].astype(np.float64) * (r[2] / total) for r in results).astype(dtype)
    states = [r[1] for r in results]
    merged = dict(states[0])
    if states[0]["state"] is not None:
        merged["state"] = [sum(s["state"][i].astype(np.float64) * (r[2] / total) for s, r in zip(states, results))
                           .astype(states[0]["state"][i].dtype) for i in range(len(states[0]["state"]))]
    merged["step"] = int(round(sum(s["step"] * r[2] for s, r in zip(states, results)) / total))
    loss = sum(r[3] * r[2] for r in results) / total
    return params, merged, loss


def _check_layers(model):
    """``ValueError`` for a model with BatchNorm1d: each worker would normalize with its own
    shard's batch statistics (not the global batch's) and the running statistics in
    ``model.state`` would not be gathered, so the result would differ from local training
    (PyTorch needs ``SyncBatchNorm`` for the same reason)."""
    from fastgrad.kernels.program import BATCH_NORM, OP
    from fastgrad.optim import LBFGS
    if isinstance(model.optimizer, LBFGS):
        raise ValueError("distributed fit takes a mini-batch optimizer; LBFGS trains locally (model.fit "
                         "without client)")
    from fastgrad.custom import model_functions
    custom = [f for f in model_functions(model) if f is not None]
    if custom:
        raise ValueError(f"distributed fit sends the model to the workers as a file, which holds no code: a model "
                         f"with {' and '.join(map(repr, custom))} trains locally (model.fit without client)")
    if np.any(model.program[:, OP] == BATCH_NORM):
        raise ValueError("distributed fit does not support BatchNorm1d: its batch statistics would be each "
                         "worker's and its running statistics would not be merged; use LayerNorm, or train "
                         "the model locally")


def fit(model, X, y, client=None, strategy="gradient", epochs=1, batch_size=32, sync_every=1, shuffle=True,
        clip_norm=None, validation_data=None, callbacks=None, verbose=0, threads_per_worker=1, retries=3,
        sample_weight=None):
    """Train ``model`` on a Dask cluster; returns a :class:`~fastgrad.callbacks.History`.

    ``X`` (n, n_in), ``y``: NumPy arrays (cut into one row shard per worker, kept in the task
    graph) or Dask arrays (one shard per row chunk, left where they are). ``strategy``:
    ``"gradient"`` (exact: equals local training on the batches of :func:`global_batches`, to
    round-off) or ``"average"`` (local SGD: ``sync_every`` epochs per round, then the
    parameters and optimizer state are averaged, weighted by rows). ``batch_size`` is the
    global batch for "gradient" and each worker's batch for "average". ``threads_per_worker``
    caps Numba and the BLAS on every worker (installed as a worker plugin and set per task).
    Logs per epoch (per round for "average"): ``loss`` and ``val_*`` with validation data.

    ``sample_weight`` (n,) (NumPy or Dask; validated as in local ``fit``): each shard carries
    its rows' weights. "gradient": every worker returns (sum of w_i l_i, sum of its weighted
    gradients, sum of w_i) and the driver divides, so a step equals local weighted training on
    the same global batch (``sum w_i l_i / sum w_i``), to round-off. "average": each worker
    trains on its weighted shard and the average is weighted by the shards' weight sums.
    ``validation_data`` may be ``(X_val, y_val, w_val)``.

    Every layer kind but BatchNorm1d (``ValueError``: see :func:`_check_layers`) trains here.
    Raises ``ValueError``/``TypeError`` for bad arguments, ``FloatingPointError`` (parameters of
    the last finite update kept) on a non-finite gradient or update, and ``TypeError`` if the
    model does not pickle. Needs ``pip install 'fastgrad[distributed]'``.
    """
    from fastgrad.callbacks import CallbackList, History, format_logs
    _check_layers(model)
    client = _client(client)
    strategy = check_choice(strategy, "strategy", STRATEGIES)
    epochs = as_int(epochs, "epochs", low=1)
    batch_size = as_int(batch_size, "batch_size", low=1)
    sync_every = as_int(sync_every, "sync_every", low=1)
    retries = as_int(retries, "retries", low=0)
    if threads_per_worker is not None:
        threads_per_worker = as_int(threads_per_worker, "threads_per_worker", low=1)
    if clip_norm is not None:
        clip_norm = as_scalar(clip_norm, "clip_norm", low=0.0, low_open=True)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
    client.register_plugin(threads_plugin(threads_per_worker), name="fastgrad-threads")
    shards = _Shards(client, model, X, y, retries, sample_weight)
    warmup(client, model, X[:2], y[:2], threads_per_worker)   # one worker compiles, then the others load
    token = uuid.uuid4().hex
    # The pickled model travels once per worker: a task input, recomputable if a worker dies.
    blob = client.submit(_identity, _model_blob(model), pure=False, retries=retries)
    history = History(len(model._diag_ops()))
    cbs = CallbackList(callbacks, model, history)
    model.stop_training = False
    cbs.on_train_begin()
    try:
        epoch, end = model.epochs_done, model.epochs_done + epochs
        while epoch < end and not model.stop_training:
            cbs.on_epoch_begin(epoch)
            lr = float(model.optimizer.lr)
            seed = int(model.rng.integers(2**63))
            if strategy == "gradient":
                loss = _gradient_epoch(client, model, shards, token, blob, seed, batch_size, shuffle, clip_norm,
                                       threads_per_worker, retries, epoch)
                span = 1
            else:
                span = min(sync_every, end - epoch)
                loss = _average_round(client, model, shards, token, blob, seed, span, batch_size, shuffle,
                                      clip_norm, threads_per_worker, retries)
            epoch += span
            logs = {"loss": float(loss)}
            if validation_data is not None:
                val = tuple(validation_data) + (None,) * (3 - len(validation_data))
                logs.update({f"val_{k}": v for k, v in model.evaluate(val[0], val[1], sample_weight=val[2]).items()})
            logs["lr"] = lr
            model.epochs_done = epoch
            history.record(epoch - 1, logs, None)
            if verbose:
                print(f"epoch {epoch}: {format_logs(logs)}")
            cbs.on_epoch_end(epoch - 1, logs)
    finally:
        client.run(_forget, token)
    cbs.on_train_end()
    return history


def _gradient_epoch(client, model, shards, token, blob, seed, batch_size, shuffle, clip_norm, threads, retries,
                    epoch):
    losses = []
    for t, parts in enumerate(global_batches(shards.rows, batch_size, seed, shuffle)):
        if not any(len(rows) for rows in parts):
            continue  # a batch smaller than the number of shards can leave a step empty
        params = model.params.copy()
        tasks = [client.submit(_shard_gradient, token, blob, params, shard, rows, threads, pure=False,
                               retries=retries)
                 for shard, rows in zip(shards.futures, parts) if len(rows)]
        results = client.gather(tasks)
        loss, grad = _combine(results, model.dtype, model)
        if not math.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {t + 1}; the model keeps its "
                                     "parameters")
        _apply(model, grad, clip_norm, f"epoch {epoch + 1}, step {t + 1}")
        losses.append((loss, sum(r[2] for r in results)))
    return sum(l * m for l, m in losses) / sum(m for _, m in losses)


def _average_round(client, model, shards, token, blob, seed, span, batch_size, shuffle, clip_norm, threads,
                   retries):
    model.optimizer._ensure_state([model.params], model.optimizer.kernel_spec()[1])
    params, opt_state = model.params.copy(), model.optimizer.state_dict()
    tasks = [client.submit(_shard_fit, token, blob, params, opt_state, shard, [seed, s], span, batch_size, shuffle,
                           clip_norm, threads, pure=False, retries=retries)
             for s, shard in enumerate(shards.futures)]
    results = client.gather(tasks)
    new_params, new_state, loss = _average(results, model.dtype)
    if not np.all(np.isfinite(new_params)):
        raise FloatingPointError("averaged parameters are non-finite; the model keeps its parameters")
    model.params[...] = new_params
    model.optimizer.load_state_dict(new_state)
    model.optimizer.step_count = new_state["step"]
    return loss


# ----- Hessians ---------------------------------------------------------------------------------
def _hessian_columns(grad, x, steps, lo, hi, threads):
    """``values[k, j - lo, :] = grad(x with x[j] = steps[k, j])`` for columns ``lo <= j < hi``."""
    _set_threads(threads)
    values = np.empty((steps.shape[0], hi - lo, x.size), dtype=np.float64)
    w = x.copy()
    for j in range(lo, hi):
        for k in range(steps.shape[0]):
            w[j] = steps[k, j]
            values[k, j - lo] = grad(w)
        w[j] = x[j]
    return values


def hessian_from_gradient(grad, x, client=None, block_size=None, h=None, threads_per_worker=1, retries=3):
    """:func:`fastgrad.diff.hessian_from_gradient` with one Dask task per block of columns.

    The same steps, stencil and symmetrisation as the local function, so the result equals it
    exactly for a deterministic ``grad``. ``grad`` must pickle (a module-level function, or a
    :class:`fastgrad.model.LossGradient`, as ``model.hessian(X, y, client=...)`` uses).
    ``block_size`` columns per task (default: ``ceil(n / (4 * workers))``). Worth it only on a
    cluster with many more cores than the driver and gradient calls well above 10 ms each: on a
    2-core machine it was 3-10x slower than the local function at every gradient cost measured
    (0.1-42 ms; docs/distributed.md).
    """
    from fastgrad.diff import hessian_from_gradient_points, hessian_from_gradient_values
    client = _client(client)
    x, hh, steps = hessian_from_gradient_points(grad, x, h)
    n = x.size
    if block_size is None:
        block_size = max(1, math.ceil(n / (4 * len(_workers(client)))))
    block_size = as_int(block_size, "block_size", low=1)
    grad_f, x_f, steps_f = client.scatter([grad, x, steps], broadcast=True, hash=False)
    blocks = [(lo, min(n, lo + block_size)) for lo in range(0, n, block_size)]
    tasks = [client.submit(_hessian_columns, grad_f, x_f, steps_f, lo, hi, threads_per_worker, pure=False,
                           retries=retries) for lo, hi in blocks]
    return hessian_from_gradient_values(np.concatenate(client.gather(tasks), axis=1), hh, x.dtype)

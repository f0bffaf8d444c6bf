"""The ``fastgrad bench distributed`` rows: Dask data parallelism against one process.

Each workload runs on a ``LocalCluster`` of ``workers`` processes with one thread each, started
in the measuring process (the isolated runner gives every competitor a fresh process, so each
gets its own cluster) -- or on the default Dask client when one exists (the tests'). Setup
(cluster start, warm-up compile, shards and the pickled model sent to the workers) is done
before timing; what is timed is what ``fastgrad.distributed.fit`` repeats:

* ``dask round <n> params``: one synchronous ``strategy="gradient"`` round -- ship the
  parameters in the task graph, one task per worker on its shard of a 64-row global batch,
  gather, combine in shard order, apply the fused update -- beside one compiled
  ``train_step`` on the same 64 rows in this process (the round's overhead is the
  difference);
* ``dask epoch <strategy> <rows>x100 <w>w``: one epoch of a 100-64-10 MLP on ``rows`` rows;
  "gradient" with global batches of rows/20 (20 rounds), "average" with each worker running
  its own mini-batches of 256 and one averaging round -- beside the same epoch by
  ``Sequential.fit`` in this process (batch rows/20 resp. 256).

The one-process run is these rows' ``reference`` competitor (the table's "reference"
column; elsewhere the NumPy twin), so the speed-up column reads one process / Dask: above 1
when the cluster wins.

These rows start clusters and move tens of megabytes, so they run only when asked for
(``fastgrad bench distributed``); without ``dask[distributed]`` they report "not installed".
"""
from __future__ import annotations

import numpy as np

# (n_in, hidden widths, n_out): 2,762 / 235,146 / 2,000,010 parameters, the sizes of the
# round-cost figures of issue 15 and docs/distributed.md.
ROUND_MODELS = {2762: (64, (32, 16), 10), 235146: (784, (256, 128), 10), 2000010: (1000, (1000, 999), 10)}
ROUND_ROWS = 64
EPOCH_FEATURES, EPOCH_HIDDEN, EPOCH_CLASSES = 100, (64,), 10
AVERAGE_BATCH = 256

_CLUSTERS = {}


def mlp(n_in, hidden, n_out, dtype="float32", seed=0):
    """A ReLU MLP with softmax cross-entropy and Adam(1e-3), as in bench/bench_distributed.py."""
    from fastgrad import Dense, Sequential
    from fastgrad.optim import Adam
    widths = (n_in,) + tuple(hidden)
    layers = [Dense(a, b, activation="relu") for a, b in zip(widths[:-1], widths[1:])] + [Dense(widths[-1], n_out)]
    return Sequential(layers, loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3), dtype=dtype, seed=seed)


def client_for(workers):
    """The default client if there is one, else a LocalCluster of ``workers`` one-thread worker
    processes made once per process (kernels compiled here first, then warmed up on one worker)."""
    import distributed
    try:
        return distributed.default_client()
    except ValueError:
        pass
    if workers not in _CLUSTERS:
        warm = mlp(8, (8,), 2)
        warm.fit(np.zeros((4, 8), np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        _CLUSTERS[workers] = (cluster, distributed.Client(cluster, set_as_default=False))
    return _CLUSTERS[workers][1]


class Session:
    """``model`` and ``(X, y)`` placed on the cluster once, as ``fastgrad.distributed.fit`` does."""

    def __init__(self, client, model, X, y, threads=1, retries=3):
        import uuid

        from fastgrad import distributed as fgd
        self.client, self.model, self.threads, self.retries = client, model, threads, retries
        client.register_plugin(fgd.threads_plugin(threads), name="fastgrad-threads")
        self.shards = fgd._Shards(client, model, X, y, retries)
        fgd.warmup(client, model, X[:2], y[:2], threads)
        self.token = uuid.uuid4().hex
        self.blob = client.submit(fgd._identity, fgd._model_blob(model), pure=False, retries=retries)
        self._epoch = 0

    def gradient_epoch(self, batch_size):
        """One epoch of ``strategy="gradient"`` (one round per global batch); returns its loss."""
        from fastgrad import distributed as fgd
        self._epoch += 1
        return fgd._gradient_epoch(self.client, self.model, self.shards, self.token, self.blob, self._epoch,
                                   batch_size, True, None, self.threads, self.retries, self._epoch)

    def average_round(self, batch_size, epochs=1):
        """``epochs`` local epochs on every worker, then one averaging round; returns the loss."""
        from fastgrad import distributed as fgd
        self._epoch += 1
        return fgd._average_round(self.client, self.model, self.shards, self.token, self.blob, self._epoch,
                                  epochs, batch_size, True, None, self.threads, self.retries)


def _round_inputs(n_params):
    def make(dtype):
        from fastgrad import datasets
        n_in, _, n_out = ROUND_MODELS[n_params]
        X, y = datasets.make_classification(ROUND_ROWS, n_in, n_out, seed=0)
        return {"X": X.astype(dtype), "y": y}
    return make


def _round_factory(n_params, workers):
    def factory(d):
        _require_distributed()
        model = mlp(*ROUND_MODELS[n_params], dtype=str(d["X"].dtype))
        session = Session(client_for(workers), model, d["X"], d["y"])
        return lambda: session.gradient_epoch(ROUND_ROWS)  # the whole batch: one round
    return factory


def _local_step_factory(n_params):
    def factory(d):
        model = mlp(*ROUND_MODELS[n_params], dtype=str(d["X"].dtype))
        return lambda: model.train_step(d["X"], d["y"])
    return factory


def _epoch_inputs(rows):
    def make(dtype):
        from fastgrad import datasets
        X, y = datasets.make_classification(rows, EPOCH_FEATURES, EPOCH_CLASSES, seed=0)
        return {"X": X.astype(dtype), "y": y}
    return make


def epoch_batch(strategy, rows):
    """The batch of the epoch rows: global batches of rows/20 ("gradient"), 256 per worker ("average")."""
    return max(1, rows // 20) if strategy == "gradient" else AVERAGE_BATCH


def _epoch_factory(strategy, rows, workers):
    def factory(d):
        _require_distributed()
        model = mlp(EPOCH_FEATURES, EPOCH_HIDDEN, EPOCH_CLASSES, dtype=str(d["X"].dtype))
        session = Session(client_for(workers), model, d["X"], d["y"])
        batch = epoch_batch(strategy, rows)
        if strategy == "gradient":
            return lambda: session.gradient_epoch(batch)
        return lambda: session.average_round(batch)
    return factory


def _local_epoch_factory(strategy, rows):
    def factory(d):
        model = mlp(EPOCH_FEATURES, EPOCH_HIDDEN, EPOCH_CLASSES, dtype=str(d["X"].dtype))
        batch = epoch_batch(strategy, rows)
        return lambda: model.fit(d["X"], d["y"], epochs=1, batch_size=batch, verbose=0).history["loss"][-1]
    return factory


def _require_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError as exc:  # the runner reports the row as unavailable
        raise ImportError("dask[distributed] is not installed: pip install 'fastgrad[distributed]'") from exc


def workloads(tiny=False):
    """The rows of the ``distributed`` family (``tiny``: the same code paths at toy sizes)."""
    from fastgrad.benchmarks.workloads import Workload
    round_sizes = (2762,) if tiny else tuple(ROUND_MODELS)
    epoch_rows = 2000 if tiny else 200_000
    rows = [Workload(f"dask round {n:,} params", "distributed", "float32", _round_inputs(n),
                     {"fastgrad": _round_factory(n, 2), "reference": _local_step_factory(n)},
                     compile_key="train_step-float32", opt_in=True)
            for n in round_sizes]
    for strategy in ("gradient", "average"):
        for workers in (1, 2):
            rows.append(Workload(f"dask epoch {strategy} {epoch_rows}x{EPOCH_FEATURES} {workers}w", "distributed",
                                 "float32", _epoch_inputs(epoch_rows),
                                 {"fastgrad": _epoch_factory(strategy, epoch_rows, workers),
                                  "reference": _local_epoch_factory(strategy, epoch_rows)},
                                 compile_key="train_step-float32", opt_in=True))
    return rows

"""Dask data parallelism: the cost of one synchronous round next to a compiled step, and epoch
time with 1 and 2 workers for both strategies (skipped without dask[distributed]).

    python -m pytest bench/bench_distributed.py --benchmark-group-by=group

Groups ``round <params>`` hold one gradient round (ship parameters, one task per shard, gather,
combine, update) beside one local compiled ``train_step`` of the same model; groups
``epoch <strategy>`` hold one epoch of a 200,000 x 100 problem (20,000 x 100 in smoke mode).
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from fastgrad import Dense, Sequential, datasets  # noqa: E402
from fastgrad import distributed as fgd  # noqa: E402
from fastgrad.optim import Adam  # noqa: E402

# (inputs, hidden widths, outputs): 2,762 / 235,146 / ~2,000,000 parameters, the sizes of the
# round-cost figures in docs/distributed.md.
MODELS = {2762: (64, (32, 16), 10), 235146: (784, (256, 128), 10), 2000010: (1000, (1000, 999), 10)}


def _mlp(n_in, hidden, n_out, seed=0):
    widths = (n_in,) + hidden
    layers = [Dense(a, b, activation="relu") for a, b in zip(widths[:-1], widths[1:])] + [Dense(widths[-1], n_out)]
    return Sequential(layers, loss="softmax_cross_entropy", optimizer=Adam(lr=1e-3), seed=seed)


@pytest.fixture(scope="module", params=[1, 2], ids=lambda w: f"{w}w")
def client(request):
    X, y = datasets.make_classification(64, 100, 10, seed=0)
    _mlp(100, (64,), 10).fit(X, y, epochs=1, batch_size=32, verbose=0)  # compile before the workers start
    cluster = distributed.LocalCluster(n_workers=request.param, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        fgd.warmup(c)
        yield c
    cluster.close()


@pytest.mark.parametrize("n_params", list(MODELS))
def test_round_overhead(benchmark, client, n_params):
    if len(fgd._workers(client)) != 2:
        pytest.skip("round overhead is measured with 2 workers")
    n_in, hidden, n_out = MODELS[n_params]
    model = _mlp(n_in, hidden, n_out)
    X, y = datasets.make_classification(64, n_in, n_out, seed=0)
    benchmark.group = f"round {model.n_params:,} params"
    benchmark.extra_info["n_params"] = model.n_params
    benchmark(fgd.fit, model, X, y, client=client, epochs=1, batch_size=64)  # one step: one round


@pytest.mark.parametrize("n_params", list(MODELS))
def test_local_step(benchmark, n_params):
    n_in, hidden, n_out = MODELS[n_params]
    model = _mlp(n_in, hidden, n_out)
    X, y = datasets.make_classification(64, n_in, n_out, seed=0)
    model.train_step(X, y)
    benchmark.group = f"round {model.n_params:,} params"
    benchmark(model.train_step, X, y)


@pytest.mark.parametrize("strategy", ["gradient", "average"])
def test_epoch(benchmark, client, strategy, request):
    smoke = request.config.getoption("benchmark_disable", False)
    n = 20_000 if smoke else 200_000
    X, y = datasets.make_classification(n, 100, 10, seed=0)
    model = _mlp(100, (64,), 10)
    # gradient: large global batches (20 rounds an epoch); average: each worker's usual mini-batches
    batch_size = n // 20 if strategy == "gradient" else 256
    benchmark.group = f"epoch {strategy} {n}x100"
    benchmark.extra_info["workers"] = len(fgd._workers(client))
    benchmark.pedantic(fgd.fit, args=(model, X, y), kwargs=dict(client=client, strategy=strategy, epochs=1,
                                                                 batch_size=batch_size), rounds=3, iterations=1)

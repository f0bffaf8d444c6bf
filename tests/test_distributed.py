"""Data-parallel training and distributed Hessians on a local Dask cluster (skipped without Dask).

One module-scoped LocalCluster of 2 worker processes; the kernels are compiled in this process
before it starts, so the workers load them from the disk cache instead of compiling cold.
"""
import os
import signal

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fastgrad  # noqa: E402
from fastgrad import Dense, Sequential, datasets  # noqa: E402
from fastgrad import distributed as fgd  # noqa: E402
from fastgrad.optim import SGD, Adam  # noqa: E402

pytestmark = pytest.mark.slow


def _model(dtype="float64", optimizer=None, seed=0, n_in=8):
    return Sequential([Dense(n_in, 16, activation="tanh"), Dense(16, 3)], loss="softmax_cross_entropy",
                      optimizer=optimizer or Adam(lr=1e-2), dtype=dtype, seed=seed)


def _data(n=240, n_in=8, dtype=np.float64):
    return datasets.make_classification(n, n_in, 3, seed=1, dtype=dtype)


@pytest.fixture(scope="module")
def client():
    X, y = _data(16)
    for dtype in ("float64", "float32"):  # fill the kernel cache before any worker starts
        m = _model(dtype)
        m.fit(X.astype(dtype), y, epochs=1, batch_size=8, verbose=0)
        m.loss_and_grad(X.astype(dtype), y)
        m.predict(X.astype(dtype))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)
    with distributed.Client(cluster) as c:
        fgd.warmup(c, dtypes=("float32", "float64"))
        yield c
    cluster.close()


def _replay_locally(model, X, y, rows, epochs, batch_size, sample_weight=None):
    """Local train_step on exactly the global batches the gradient strategy uses."""
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]])
    for _ in range(epochs):
        seed = int(model.rng.integers(2**63))
        for parts in fgd.global_batches(rows, batch_size, seed):
            idx = np.concatenate([s + p for s, p in zip(starts, parts)])
            model.train_step(X[idx], y[idx], sample_weight=None if sample_weight is None else sample_weight[idx])
        model.epochs_done += 1


def _shard_rows(n, k=2):
    return np.diff([n * i // k for i in range(k + 1)])


def test_batch_norm_is_refused_before_any_work():
    """BatchNorm1d's statistics would be per worker and its running statistics unmerged: a clear
    ValueError before a cluster is touched (no client needed to see it)."""
    from fastgrad import BatchNorm1d
    X, y = _data(16)
    model = Sequential([Dense(8, 4), BatchNorm1d(4), Dense(4, 3)], loss="softmax_cross_entropy", dtype="float64")
    with pytest.raises(ValueError, match="BatchNorm1d"):
        fgd.fit(model, X, y, client=object())


def test_gradient_strategy_trains_layer_norm_and_residual_like_local(client):
    """A model with LayerNorm and a Residual block trains under the gradient strategy exactly as
    locally on the same global batches."""
    from fastgrad import LayerNorm, Residual
    X, y = _data()

    def model():
        return Sequential([Dense(8, 6, "tanh"), Residual([LayerNorm(6), Dense(6, "relu")]), Dense(3)],
                          loss="softmax_cross_entropy", optimizer=Adam(lr=1e-2), dtype="float64", seed=4)
    remote, local = model(), model()
    remote.fit(X, y, client=client, strategy="gradient", epochs=1, batch_size=60)
    _replay_locally(local, X, y, _shard_rows(len(X)), epochs=1, batch_size=60)
    np.testing.assert_allclose(remote.params, local.params, rtol=1e-11, atol=1e-13)


def test_gradient_strategy_applies_proximal_l1_like_local(client):
    """l1_mode="proximal": the driver soft-thresholds after each global update, as train_step does."""
    X, y = _data()

    def model():
        return Sequential([Dense(8, 16, "tanh"), Dense(3)], loss="softmax_cross_entropy", optimizer=SGD(lr=0.1),
                          dtype="float64", seed=2, l1=0.3, l1_mode="proximal")
    remote, local = model(), model()
    remote.fit(X, y, client=client, strategy="gradient", epochs=2, batch_size=60)
    _replay_locally(local, X, y, _shard_rows(len(X)), epochs=2, batch_size=60)
    np.testing.assert_allclose(remote.params, local.params, rtol=1e-11, atol=1e-13)
    np.testing.assert_array_equal(remote.layers[0].W == 0, local.layers[0].W == 0)
    assert np.count_nonzero(remote.layers[0].W == 0) > 0


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_gradient_strategy_equals_local_training(client, dtype, rtol):
    X, y = _data(dtype=np.dtype(dtype))
    remote, local = _model(dtype), _model(dtype)
    np.testing.assert_array_equal(remote.params, local.params)
    history = remote.fit(X, y, client=client, strategy="gradient", epochs=2, batch_size=60)
    _replay_locally(local, X, y, _shard_rows(len(X)), epochs=2, batch_size=60)
    assert np.abs(remote.params - local.params).max() <= rtol * np.abs(local.params).max()
    assert remote.optimizer.step_count == local.optimizer.step_count == 8
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    assert remote.epochs_done == 2


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_weighted_gradient_strategy_equals_local_weighted_training(client, dtype, rtol):
    """Shards carry their weights; workers return (sum w l, sum of weighted gradients, sum w)."""
    X, y = _data(dtype=np.dtype(dtype))
    w = np.random.default_rng(5).uniform(0.0, 3.0, len(X))
    w[::7] = 0.0
    remote, local, plain = _model(dtype), _model(dtype), _model(dtype)
    history = remote.fit(X, y, client=client, strategy="gradient", epochs=2, batch_size=60, sample_weight=w,
                         validation_data=(X, y, w))
    _replay_locally(local, X, y, _shard_rows(len(X)), epochs=2, batch_size=60, sample_weight=w)
    _replay_locally(plain, X, y, _shard_rows(len(X)), epochs=2, batch_size=60)
    assert np.abs(remote.params - local.params).max() <= rtol * np.abs(local.params).max()
    assert np.abs(plain.params - local.params).max() > 100 * rtol * np.abs(local.params).max()  # weights mattered
    assert remote.optimizer.step_count == local.optimizer.step_count == 8
    assert history.history["val_loss"][1] == pytest.approx(remote.evaluate(X, y, sample_weight=w)["loss"], rel=1e-12)
    # class weights through model.fit(client=...) are folded into the per-row weights
    a, b = _model(dtype), _model(dtype)
    a.fit(X, y, client=client, epochs=1, batch_size=60, class_weight={0: 2.0}, sample_weight=w)
    b.fit(X, y, client=client, epochs=1, batch_size=60, sample_weight=w * np.where(y == 0, 2.0, 1.0))
    np.testing.assert_array_equal(a.params, b.params)


def test_weighted_average_strategy_runs_and_weights_matter(client):
    X, y = _data()
    w = np.where(y == 0, 5.0, 0.5)
    a, b = _model("float64"), _model("float64")
    a.fit(X, y, client=client, strategy="average", epochs=2, batch_size=16, sample_weight=w)
    b.fit(X, y, client=client, strategy="average", epochs=2, batch_size=16)
    assert np.all(np.isfinite(a.params)) and not np.allclose(a.params, b.params)
    recall = lambda m: np.mean(np.argmax(m.predict(X), axis=1)[y == 0] == 0)  # noqa: E731
    assert recall(a) >= recall(b)


def test_gradient_strategy_through_model_rows_and_batches():
    parts = fgd.global_batches([5, 7], 4, seed=3)
    assert len(parts) == 3
    for s, r in enumerate([5, 7]):
        got = np.sort(np.concatenate([p[s] for p in parts]))
        np.testing.assert_array_equal(got, np.arange(r))  # every row exactly once per epoch
    again = fgd.global_batches([5, 7], 4, seed=3)
    assert all(np.array_equal(a, b) for pa, pb in zip(parts, again) for a, b in zip(pa, pb))
    plain = fgd.global_batches([4], 2, seed=3, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in plain]), np.arange(4))


def test_average_strategy_converges_and_is_reproducible(client):
    X, y = datasets.make_classification(600, 8, 3, seed=2, class_sep=2.0, dtype=np.float64)
    local = _model(seed=5)
    local.fit(X, y, epochs=8, batch_size=32, verbose=0)
    local_acc = local.evaluate(X, y)["accuracy"]
    runs = []
    for _ in range(2):
        m = _model(seed=5)
        fgd.fit(m, X, y, client=client, strategy="average", epochs=8, batch_size=32, sync_every=2)
        runs.append(m)
    np.testing.assert_array_equal(runs[0].params, runs[1].params)  # fixed seed and workers: bit-identical
    acc = runs[0].evaluate(X, y)["accuracy"]
    assert acc >= local_acc - 0.05, (acc, local_acc)
    assert runs[0].epochs_done == 8


def test_dask_arrays_keep_their_chunks(client):
    da = pytest.importorskip("dask.array")
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=(80, 4)), da.from_array(y, chunks=80)
    remote, local = _model(), _model()
    fgd.fit(remote, Xd, yd, client=client, strategy="gradient", epochs=1, batch_size=120)
    _replay_locally(local, X, y, [80, 80, 80], epochs=1, batch_size=120)
    np.testing.assert_allclose(remote.params, local.params, rtol=0, atol=1e-12 * np.abs(local.params).max())


def test_dask_arrays_carry_sample_weights(client):
    """Dask X, y with NumPy or Dask weights: the same result as the NumPy arrays cut the same way."""
    da = pytest.importorskip("dask.array")
    X, y = _data()
    w = np.random.default_rng(3).uniform(0.0, 3.0, len(X))
    numpy_fit = _model()
    fgd.fit(numpy_fit, X, y, client=client, strategy="gradient", epochs=1, batch_size=60, sample_weight=w)
    for weights in (w, da.from_array(w, chunks=50)):
        dask_fit = _model()
        fgd.fit(dask_fit, da.from_array(X, chunks=(120, 8)), da.from_array(y, chunks=120), client=client,
                strategy="gradient", epochs=1, batch_size=60, sample_weight=weights)
        np.testing.assert_array_equal(dask_fit.params, numpy_fit.params)
    unweighted = _model()
    fgd.fit(unweighted, da.from_array(X, chunks=(120, 8)), da.from_array(y, chunks=120), client=client,
            strategy="gradient", epochs=1, batch_size=60)
    assert not np.array_equal(unweighted.params, numpy_fit.params)
    with pytest.raises(ValueError, match="sample_weight"):
        fgd.fit(_model(), da.from_array(X, chunks=(120, 8)), da.from_array(y, chunks=120), client=client,
                sample_weight=-w)


def test_threads_per_worker_reaches_numba(client):
    def numba_threads():
        import numba
        return numba.get_num_threads()

    X, y = _data(40)
    fgd.fit(_model(), X, y, client=client, epochs=1, batch_size=40, threads_per_worker=1)
    # a later task runs in the same worker thread (1 thread per worker): the cap set there persists
    got = client.gather([client.submit(numba_threads, workers=[w], pure=False) for w in fgd._workers(client)])
    assert got == [1, 1]


def test_nonfinite_update_is_rolled_back(client):
    # climbing from a bias at 0.45 x the largest float64 with a rate of 0.6 x: the loss of the two rows
    # is finite, the first update overflows
    big = float(np.finfo(np.float64).max)
    X, y = _data(2)
    m = Sequential([Dense(8, 1)], loss="mae", optimizer=SGD(lr=0.6 * big, maximize=True), dtype="float64", seed=0)
    m.layers[0].b = np.full(1, 0.45 * big)
    before = m.params.copy()
    with pytest.raises(FloatingPointError, match="epoch 1, step 1.*rolled back"):
        fgd.fit(m, X, y.astype(np.float64), client=client, epochs=1, batch_size=2)
    np.testing.assert_array_equal(m.params, before)
    assert m.optimizer.step_count == 0


def test_bad_arguments(client):
    X, y = _data(20)
    with pytest.raises(ValueError, match="strategy"):
        fgd.fit(_model(), X, y, client=client, strategy="ring")
    with pytest.raises(ValueError, match="sync_every"):
        fgd.fit(_model(), X, y, client=client, sync_every=0)
    with pytest.raises(TypeError, match="client"):
        fgd.fit(_model(), X, y, client="tcp://nowhere")
    with pytest.raises(ValueError, match="X"):
        fgd.fit(_model(), X[:, :3], y, client=client)


def test_workers_are_asked_of_the_scheduler_not_the_cached_identity(client, monkeypatch):
    """Client.scheduler_info() can return the periodic refresh's identity, which lists no
    workers (a CI run failed with "the Dask cluster has no workers" on a live cluster)."""
    blank = dict(client.scheduler_info(), workers={})
    monkeypatch.setattr(client, "scheduler_info", lambda *a, **k: blank)
    assert len(fgd._workers(client)) == 2
    X, y = _data(40)
    m = _model()
    fgd.fit(m, X, y, client=client, epochs=1, batch_size=20)
    assert m.optimizer.step_count == 2  # 40 rows in global batches of 20


def test_a_dead_worker_costs_only_its_round(client):
    X, y = _data()
    remote, local = _model(), _model()

    class KillOneWorker(fastgrad.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                pids = client.run(os.getpid)
                os.kill(sorted(pids.values())[-1], signal.SIGKILL)

    fgd.fit(remote, X, y, client=client, strategy="gradient", epochs=3, batch_size=60, callbacks=[KillOneWorker()])
    _replay_locally(local, X, y, _shard_rows(len(X)), epochs=3, batch_size=60)
    np.testing.assert_allclose(remote.params, local.params, rtol=0, atol=1e-12 * np.abs(local.params).max())
    client.wait_for_workers(2, timeout=60)


def _quadratic_grad(x):
    return np.array([2 * x[0] * x[1] ** 2, 2 * x[0] ** 2 * x[1] + np.cos(x[2]), -x[1] * np.sin(x[2]) + 3 * x[3] ** 2,
                     6 * x[2] * x[3]])


def test_hessian_from_gradient_equals_local(client):
    x = np.array([0.3, -1.2, 0.7, 2.0])
    local = fastgrad.diff.hessian_from_gradient(_quadratic_grad, x)
    remote = fgd.hessian_from_gradient(_quadratic_grad, x, client=client, block_size=1)
    np.testing.assert_array_equal(remote, local)


def test_model_hessian_equals_local(client):
    X, y = _data(30, n_in=3)
    m = Sequential([Dense(3, 4, activation="tanh"), Dense(4, 3)], loss="softmax_cross_entropy", dtype="float64",
                   seed=0)
    np.testing.assert_array_equal(m.hessian(X, y, client=client, block_size=7), m.hessian(X, y))


def test_bench_rows_run_what_they_name(client):
    """The ``fastgrad bench distributed`` rows at toy sizes, on this module's cluster: each
    callable runs a real round or epoch (the parameters move, the loss is finite), and the
    rows are measured only when asked for."""
    from fastgrad.benchmarks import dask_workloads, workloads
    rows = dask_workloads.workloads(tiny=True)
    assert [w.name for w in rows] == ["dask round 2,762 params"] + [
        f"dask epoch {s} 2000x100 {k}w" for s in ("gradient", "average") for k in (1, 2)]
    assert all(w.opt_in and w.family == "distributed" for w in rows)
    assert not any(w.opt_in for w in workloads.select())
    assert {w.family for w in workloads.select(["distributed"])} == {"distributed"}
    for w in rows[:2] + rows[3:4]:
        funcs, absent = w.build(None)
        assert not absent and set(funcs) == {"fastgrad", "reference"}
        for name, func in funcs.items():
            loss = func()
            assert loss is not None and np.isfinite(loss), (w.name, name)
    session = dask_workloads.Session(client, dask_workloads.mlp(64, (32, 16), 10), *_bench_round_data())
    before = session.model.params.copy()
    session.gradient_epoch(dask_workloads.ROUND_ROWS)
    assert session.model.optimizer.step_count == 1          # one round: one update
    assert not np.array_equal(session.model.params, before)


def _bench_round_data():
    X, y = datasets.make_classification(64, 64, 10, seed=0)
    return X.astype(np.float32), y

"""The ``fastgrad bench`` rows of fastgrad.sklearn (fastgrad/benchmarks/sklearn_workloads.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastgrad.benchmarks import runner, sklearn_workloads, workloads  # noqa: E402

TINY_BUDGET = runner.Budget(seconds=0.002, min_repeats=1, max_repeats=2, sample=0.0002, slow_peers=False)
TINY_FULL_BUDGET = runner.Budget(seconds=0.002, min_repeats=1, max_repeats=2, sample=0.0002, slow_peers=True)


def test_rows_are_in_the_table_and_selected_by_family():
    keys = [w.key for w in workloads.select(["sklearn"])]
    assert keys == ["MLPClassifier.fit digits (128,64) 50 epochs [float32]",
                    "MLPClassifier.predict digits (128,64) 450 rows [float32]",
                    "MLPClassifier.fit synthetic 100000x50 (128,64) 10 epochs [float32]",
                    "MLPClassifier.predict synthetic 100000x50 (128,64) 10000 rows [float32]"]
    plain = {w.key for w in workloads.select([])}
    assert set(keys[:2]) <= plain  # the digits rows: measured by a plain `fastgrad bench`
    assert not set(keys[2:]) & plain  # the synthetic rows (a minute of scikit-learn): when named
    assert [w.key for w in workloads.select(["synthetic"])] == keys[2:]
    fit = workloads.find(keys[0])
    assert set(fit.factories) == {"fastgrad", "reference"} and fit.single_shot == {"reference"}
    synthetic = workloads.find(keys[2])
    assert synthetic.single_shot == synthetic.slow == {"reference"}  # --quick leaves scikit-learn out
    assert {w.compile_key for w in workloads.select(["sklearn"])} == {"sklearn-float32"}  # one compile column
    assert sklearn_workloads.PARAMS == dict(hidden_layer_sizes=(128, 64), solver="adam", max_iter=50,
                                            random_state=0, tol=0.0)


def test_synthetic_split_is_100000_by_50_stratified_90_10():
    X_train, X_test, y_train, y_test = sklearn_workloads.synthetic_split(np.float32, rows=2000)
    assert X_train.shape == (1800, 50) and X_test.shape == (200, 50) and X_train.dtype == np.float32
    np.testing.assert_allclose(np.bincount(y_test, minlength=10) / 200, np.bincount(y_train, minlength=10) / 1800,
                               atol=0.01)
    assert sklearn_workloads.SYNTHETIC_ROWS == 100_000 and sklearn_workloads.SYNTHETIC_FEATURES == 50


def test_digits_split_is_stratified_75_25():
    X_train, X_test, y_train, y_test = sklearn_workloads.digits_split(np.float32)
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64) and X_train.dtype == np.float32
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    np.testing.assert_allclose(np.bincount(y_test) / 450, np.bincount(y_train) / 1347, atol=0.01)


@pytest.mark.parametrize("index", (0, 1, 2, 3))
def test_tiny_rows_time_both_libraries(index):
    workload = sklearn_workloads.workloads(tiny=True)[index]
    timing = runner.run_workload(workload, TINY_FULL_BUDGET if index >= 2 else TINY_BUDGET)
    assert timing["status"] == "ok", timing["reason"]
    for name in ("fastgrad", "reference"):
        assert timing["competitors"][name] == "ok" and timing["medians"][name] > 0
    assert timing["speedup"]["reference"] > 0


def test_quick_budget_leaves_scikit_learn_out_of_the_synthetic_rows():
    timing = runner.run_workload(sklearn_workloads.workloads(tiny=True)[2], TINY_BUDGET)
    assert timing["competitors"] == {"reference": "skipped (--quick)", "fastgrad": "ok"}


@pytest.mark.parametrize("index", (0, 2))
def test_fit_callables_train_the_two_libraries_alike(index):
    """What the fit rows time is a whole fit of each library's estimator with the same settings."""
    workload = sklearn_workloads.workloads(tiny=True)[index]
    funcs, absent = workload.build(None)
    assert not absent
    ours, theirs = funcs["fastgrad"](), funcs["reference"]()
    assert type(ours).__module__.startswith("fastgrad.sklearn")
    assert type(theirs).__module__.startswith("sklearn.neural_network")
    assert ours.n_iter_ == theirs.n_iter_ == 2
    assert ours.get_params()["hidden_layer_sizes"] == theirs.get_params()["hidden_layer_sizes"] == (8,)
    assert ours.model_.dtype == np.float32


def test_the_comparison_scripts_gemm_floor_times_every_batchs_products():
    """bench/sklearn_vs_fastgrad.py's third process: the fit's matrix products alone. Its child
    code runs here with a counting np.dot: 2 epochs of the digits' 1347 rows at batch 200 are
    14 batches of 8 products (3 forward, 3 a^T delta, 2 delta W^T), each timed max(1, 3) times."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "sklearn_vs_fastgrad.py")
    spec = importlib.util.spec_from_file_location("sklearn_vs_fastgrad", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    source = script.CHILD.split("\nlib, workload = ")[0]
    shapes = []

    class CountingNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def dot(a, b, out):
            assert out.shape == (a.shape[0], b.shape[1]) and a.shape[1] == b.shape[0]
            shapes.append((a.shape, b.shape))
            return np.dot(a, b, out)
    scope = {}
    exec(source, scope)
    scope["np"] = CountingNumpy()
    scope["gemm_floor"](1347, (64, 128, 64, 10), 2, 1)
    assert len(shapes) == 3 * 2 * 7 * 8
    assert shapes[:8] == [((200, 64), (64, 128)), ((64, 200), (200, 128)), ((200, 128), (128, 64)),
                          ((128, 200), (200, 64)), ((200, 64), (64, 128)), ((200, 64), (64, 10)),
                          ((64, 200), (200, 10)), ((200, 10), (10, 64))]
    last = [pair for pair in shapes if 147 in pair[0] + pair[1]]  # the last batch: 1347 - 6 * 200 rows
    assert len(last) == 3 * 2 * 8 and all(200 in a + b for a, b in shapes if (a, b) not in last)

"""The ``fastgrad bench`` rows of fastgrad.sklearn (fastgrad/benchmarks/sklearn_workloads.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastgrad.benchmarks import runner, sklearn_workloads, workloads  # noqa: E402

TINY_BUDGET = runner.Budget(seconds=0.002, min_repeats=1, max_repeats=2, sample=0.0002, slow_peers=False)


def test_rows_are_in_the_table_and_selected_by_family():
    keys = [w.key for w in workloads.select(["sklearn"])]
    assert keys == ["MLPClassifier.fit digits (128,64) 50 epochs [float32]",
                    "MLPClassifier.predict digits (128,64) 450 rows [float32]"]
    assert set(keys) <= {w.key for w in workloads.select([])}  # measured by a plain `fastgrad bench`
    fit = workloads.find(keys[0])
    assert set(fit.factories) == {"fastgrad", "reference"} and fit.single_shot == {"reference"}
    assert sklearn_workloads.PARAMS == dict(hidden_layer_sizes=(128, 64), solver="adam", max_iter=50,
                                            random_state=0, tol=0.0)


def test_digits_split_is_stratified_75_25():
    X_train, X_test, y_train, y_test = sklearn_workloads.digits_split(np.float32)
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64) and X_train.dtype == np.float32
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    np.testing.assert_allclose(np.bincount(y_test) / 450, np.bincount(y_train) / 1347, atol=0.01)


@pytest.mark.parametrize("index", (0, 1))
def test_tiny_rows_time_both_libraries(index):
    workload = sklearn_workloads.workloads(tiny=True)[index]
    timing = runner.run_workload(workload, TINY_BUDGET)
    assert timing["status"] == "ok", timing["reason"]
    for name in ("fastgrad", "reference"):
        assert timing["competitors"][name] == "ok" and timing["medians"][name] > 0
    assert timing["speedup"]["reference"] > 0


def test_fit_callables_train_the_two_libraries_alike():
    """What the fit row times is a whole fit of each library's estimator with the same settings."""
    workload = sklearn_workloads.workloads(tiny=True)[0]
    funcs, absent = workload.build(None)
    assert not absent
    ours, theirs = funcs["fastgrad"](), funcs["reference"]()
    assert type(ours).__module__.startswith("fastgrad.sklearn")
    assert type(theirs).__module__.startswith("sklearn.neural_network")
    assert ours.n_iter_ == theirs.n_iter_ == 2
    assert ours.get_params()["hidden_layer_sizes"] == theirs.get_params()["hidden_layer_sizes"] == (8,)
    assert ours.model_.dtype == np.float32

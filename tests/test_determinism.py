"""Results do not depend on the thread count or the run (issue 9.6), and a switch that
changes generated code never reuses code compiled under another switch (issue 9.5).

Reductions split their work into blocks fixed by the input size and add the block
results in order; these tests compare bits, not tolerances. The cross-process test also
compares code compiled fresh with code loaded from the disk cache: with fast-math's
``reassoc``/``contract`` the two differed in the last bit (LLVM inlines a callee only
when its IR is at hand, i.e. not when it came from the cache).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastgrad
import fastgrad.functional as F
from fastgrad.kernels import grad_utils as KG
from fastgrad.optim.grad_utils import clip_grad_norm, grad_stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _results():
    """Every reduction of this helper's kernels on inputs that take the parallel block path."""
    rng = np.random.default_rng(2)
    c = rng.standard_normal(100_000)
    out = {"grad_norm": float(KG.grad_norm(c, 2.0)), "grad_norm_1": float(KG.grad_norm(c, 1.0)),
           "grad_norm_3": float(KG.grad_norm(c, 3.0))}
    g = c.astype(np.float32)
    out["clip_norm"] = clip_grad_norm(g, 1.0)
    out["clipped"] = float(np.sum(g.astype(np.float64) * np.arange(g.size)))
    out["stats"] = grad_stats([c, g])
    t = rng.standard_normal(100_000)
    for name in ("mse", "mae", "huber", "binary_cross_entropy_with_logits"):
        tt = 1 / (1 + np.exp(-t)) if name.startswith("binary") else t
        for dt in (np.float32, np.float64):
            out[f"{name}-{np.dtype(dt)}"] = getattr(F, name)(c.astype(dt), tt.astype(dt))[0]
    logits = rng.standard_normal((20_000, 10))
    labels = rng.integers(0, 10, 20_000)
    for dt in (np.float32, np.float64):
        out[f"ce-{np.dtype(dt)}"] = F.softmax_cross_entropy(logits.astype(dt), labels, label_smoothing=0.1)[0]
    return out


def _hex(results):
    return json.dumps({k: ({kk: float(vv).hex() for kk, vv in v.items()} if isinstance(v, dict) else float(v).hex())
                       for k, v in results.items()}, sort_keys=True)


def test_issue_example_grad_norm_thread_independent():
    c = np.random.default_rng(2).standard_normal(100_000)
    try:
        fastgrad.set_num_threads(1)
        one = KG.grad_norm(c, 2.0)
        fastgrad.set_num_threads(2)
        two = KG.grad_norm(c, 2.0)
    finally:
        fastgrad.set_num_threads(2)
    assert one.hex() == two.hex()
    assert one == pytest.approx(315.9206459025167, rel=1e-15)


def test_reductions_bit_identical_for_1_and_2_threads():
    try:
        fastgrad.set_num_threads(1)
        one = _hex(_results())
        fastgrad.set_num_threads(2)
        two = _hex(_results())
    finally:
        fastgrad.set_num_threads(2)
    assert one == two


_CHILD = """
import sys, fastgrad
sys.path.insert(0, {tests!r})
from test_determinism import _hex, _results
fastgrad.set_num_threads({threads})
print(_hex(_results()))
"""


def _child_env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def test_reductions_bit_identical_across_processes():
    outs = []
    for threads in (1, 2):
        code = _CHILD.format(tests=os.path.join(ROOT, "tests"), threads=threads)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env=_child_env(), timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout.strip().splitlines()[-1])
    assert outs[0] == outs[1] == _hex(_results())


_SWITCH_CHILD = """
import json, sys
import numpy as np
from fastgrad.kernels import stream
a = np.zeros(8)
stream.triad(a, a, a, 1.0)
out = {"triad": [sum(stream.triad.stats.cache_hits.values()), sum(stream.triad.stats.cache_misses.values())]}
if sys.argv[1] == "value":
    import fastgrad.functional as F
    out["value"] = F.log_softmax(np.array([[1e8, 1e8]], np.float32)).tolist()
print(json.dumps(out))
"""


def _switch_run(cache_dir, what="stats", **switches):
    proc = subprocess.run([sys.executable, "-c", _SWITCH_CHILD, what], capture_output=True, text=True, cwd=ROOT,
                          env=_child_env(NUMBA_CACHE_DIR=str(cache_dir), **switches), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_code_switches_are_part_of_the_cache_key(tmp_path):
    """Fresh processes on one NUMBA_CACHE_DIR: a run with other FASTGRAD_FASTMATH /
    FASTGRAD_PARALLEL switches compiles its own code (a cache miss, [hits, misses] = [0, 1])
    and gets the strict result; a run with the same switches again loads that code (a hit).
    The key is one digest for every kernel, so a small kernel shows it."""
    assert _switch_run(tmp_path, FASTGRAD_FASTMATH="reassoc")["triad"] == [0, 1]
    second = _switch_run(tmp_path, "value")
    assert second["triad"] == [0, 1]
    assert second["value"] == [[float(np.float32(-0.6931472))] * 2]
    assert _switch_run(tmp_path)["triad"] == [1, 0]
    # Numba keeps one source stamp per function's index: a new switch replaces the entries
    # (a miss, never a load of the other switch's code)
    assert _switch_run(tmp_path, FASTGRAD_FASTMATH="reassoc")["triad"] == [0, 1]
    assert _switch_run(tmp_path, FASTGRAD_PARALLEL="0")["triad"] == [0, 1]
    assert _switch_run(tmp_path, FASTGRAD_FASTMATH="1")["triad"] == [0, 1]



def test_numba_code_switches_are_part_of_the_cache_key(tmp_path):
    """Numba keys its cache on the signature and the CPU only: code compiled under
    NUMBA_BOUNDSCHECK=1 or NUMBA_DEBUGINFO=1 (bounds checks, debug info: 2.8x slower on a training
    step) was loaded by the next plain process. fastgrad's digest holds Numba's code switches, so
    a plain run after either compiles its own code (a miss), and loads it the time after (a hit)."""
    assert _switch_run(tmp_path, NUMBA_BOUNDSCHECK="1")["triad"] == [0, 1]
    assert _switch_run(tmp_path)["triad"] == [0, 1]
    assert _switch_run(tmp_path)["triad"] == [1, 0]
    assert _switch_run(tmp_path, NUMBA_DEBUGINFO="1")["triad"] == [0, 1]
    assert _switch_run(tmp_path)["triad"] == [0, 1]

_WIDE_FIT = """
import hashlib, sys
import numpy as np
import fastgrad
import fastgrad.functional as F
from fastgrad import Dense, Sequential
from fastgrad import _cpu_load, _threads
if sys.argv[2] == "busy":      # following the load on a simulated machine where others hold a core
    fastgrad.set_num_threads("auto")
    _cpu_load.others_use = lambda start, end: 1.6
    _threads._LOAD.last = (0.0, 0.0, -1e9)
else:
    fastgrad.set_num_threads(int(sys.argv[2]))
X, y = fastgrad.datasets.make_classification(512, 128, 10, seed=1)
model = Sequential([Dense(128, 256, activation="relu"), Dense(256, 10)], loss="softmax_cross_entropy",
                   dtype=sys.argv[1], seed=0)
model.fit(X, y, epochs=1, batch_size=32, verbose=0)
out = [model.params, model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)]
x = X[:64].astype(sys.argv[1])
W = model.layers[0].W
y1, z = F.dense_forward(x, W, model.layers[0].b, "relu", return_preactivation=True)
out += [y1, *F.dense_backward(x, W, z, np.cos(y1), "relu")]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def _wide_fit(dtype, threads):
    proc = subprocess.run([sys.executable, "-c", _WIDE_FIT, dtype, str(threads)], capture_output=True, text=True,
                          cwd=ROOT, env=_child_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_layers_bit_identical_across_thread_counts_load_and_processes(dtype):
    """Layers wide enough that the products are cut into pieces run on two threads (128 -> 256
    at batch 32): fit, predict and the functional dense layer give the same bits at 1 and 2
    threads, when following a busy machine's load, and in two processes. (OpenBLAS's own
    float32 products change with its thread count: (32, 128) @ (128, 256) differed in 3593 of
    8192 entries between 1 and 2 BLAS threads, which made float32 fits differ before the
    products were cut into pieces of one BLAS thread each, kernels/gemm.py.)"""
    first = _wide_fit(dtype, 2)
    assert _wide_fit(dtype, 1) == first
    assert _wide_fit(dtype, "busy") == first
    assert _wide_fit(dtype, 2) == first

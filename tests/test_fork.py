"""fork after a parallel kernel ran: children compute on one thread and agree with the parent.

GNU OpenMP cannot run a thread team in a process forked after the parent used one; Numba
kills such a child at its first parallel region (ProcessPoolExecutor -> BrokenProcessPool,
multiprocessing.Pool.map -> hangs). fastgrad resets the child to one thread at the fork.
Every case runs in its own interpreter with a timeout, so a hang or a kill fails the test.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = textwrap.dedent('''
    import concurrent.futures as cf
    import multiprocessing as mp
    import os
    import threading

    import numpy as np

    import fastgrad
    from fastgrad import functional as F
    from fastgrad.optim import Adam, clip_grad_norm

    def work(seed):
        """Parallel kernels at 100,000 elements: elementwise, a reduction, an optimizer step."""
        x = np.random.default_rng(seed).standard_normal(100_000)
        p = x.copy()
        Adam(lr=1e-2).step(p, np.cos(x))
        g = x.copy()
        norm = clip_grad_norm(g, 1.0)
        return F.relu(x), norm, p, g

    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(a, b))

    parent = work(0)   # the parent runs parallel kernels first: OpenMP's pool exists
    ctx = mp.get_context("fork")
''')


def run_case(tmp_path, body, timeout=900):
    script = tmp_path / "case.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + "\nprint('CASE OK')\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_THREADING_LAYER", None)
    try:
        proc = subprocess.run([sys.executable, str(script)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the case hung (no answer in {timeout} s): {exc.stderr}")
    assert proc.returncode == 0 and "CASE OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_process_pool_executor_children_agree_with_the_parent(tmp_path):
    run_case(tmp_path, '''
        assert fastgrad._jit.threading_layer() == "omp"
        with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            results = list(pool.map(work, [0, 0, 0], timeout=600))
        assert all(same(r, parent) for r in results)
    ''')


def test_multiprocessing_pool_map_does_not_hang(tmp_path):
    run_case(tmp_path, '''
        with ctx.Pool(2) as pool:
            results = pool.map_async(work, [0, 0, 0]).get(timeout=600)
        assert all(same(r, parent) for r in results)
    ''')


def test_threads_and_grandchildren_of_a_forked_child(tmp_path):
    run_case(tmp_path, '''
        def child(queue):
            from fastgrad._jit import get_numba_threads
            out = []
            t = threading.Thread(target=lambda: out.append(work(0)))
            t.start(); t.join()
            with ctx.Pool(1) as pool:   # a grandchild, forked from the forked child
                grand = pool.map_async(work, [0]).get(timeout=600)[0]
            queue.put((same(out[0], parent), same(grand, parent), get_numba_threads()))

        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(queue,))
        proc.start()
        result = queue.get(timeout=600)
        proc.join(60)
        assert result == (True, True, 1) and proc.exitcode == 0, (result, proc.exitcode)
    ''')


def test_more_threads_in_a_forked_child_raise_naming_spawn(tmp_path):
    run_case(tmp_path, '''
        def child(queue):
            try:
                fastgrad.set_num_threads(2)
                queue.put("no error")
            except RuntimeError as exc:
                queue.put(str(exc))

        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(queue,))
        proc.start()
        message = queue.get(timeout=600)
        proc.join(60)
        assert "'spawn'" in message, message
        fastgrad.set_num_threads(2)   # the parent keeps its threads
        assert same(work(0), parent)
    ''')


def test_spawn_children_keep_their_threads(tmp_path):
    run_case(tmp_path, '''
        def threads(_):
            from fastgrad._jit import get_numba_threads
            work(0)
            return get_numba_threads()

        if __name__ == "__main__":
            with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                assert list(pool.map(threads, [0], timeout=600)) == [2]
    ''')

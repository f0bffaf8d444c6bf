"""Hostile input to the entries of io, callbacks.ModelCheckpoint and the thread policy.

Every case runs in its own interpreter, so a crash (segfault, abort, SIGTERM) or a hang is
a failing test rather than a dead test run. Model-file cases also measure, with
tracemalloc (NumPy reports its array buffers to it), that rejecting a file allocates no
more than a small multiple of the file's size. The fork cases live in tests/test_fork.py
and the cache cases in tests/test_cache.py, each likewise in fresh interpreters.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
MAX_ALLOCATION_RATIO = 10     # peak bytes allocated while rejecting / file size
ALLOCATION_SLACK = 1 << 20    # plus this much for the Python objects of the checks


def run_isolated(code, tmp_path, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code) + "\nprint('CASE OK')\n"],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")
    assert proc.returncode == 0 and "CASE OK" in proc.stdout, \
        f"exit code {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


LOAD_FORGERY = '''
import os, re, tracemalloc
import fastgrad
from fastgrad import Sequential
from model_files import FORGERIES, small_model
small_model().save("warm.npz")
Sequential.load("warm.npz")          # every lazy import of the loader happens before measuring
build, reason = FORGERIES[{name!r}]
build("forged.npz")
size = os.path.getsize("forged.npz")
tracemalloc.start()
try:
    Sequential.load("forged.npz")
    raise SystemExit("loaded a forged file")
except ValueError as exc:
    message = str(exc)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert re.search("forged.npz is not a valid fastgrad model file: .*" + reason, message), message
assert peak <= {ratio} * size + {slack}, (peak, size)
print(size, peak)
'''
DANGEROUS = ["npy_file", "truncated", "nested_brackets", "nested_objects", "params_header_2_40",
             "params_negative_shape", "dense_100000_squared", "epochs_done_negative", "pickled_config",
             "config_huge_int", "config_unterminated_escapes", "compressed", "opt_state_wrong_shape",
             "rng_state_garbage", "n_in_string"]


@pytest.mark.parametrize("name", DANGEROUS)
def test_forged_model_file_is_rejected_cheaply(tmp_path, name):
    run_isolated(LOAD_FORGERY.format(name=name, ratio=MAX_ALLOCATION_RATIO, slack=ALLOCATION_SLACK), tmp_path)


def test_many_member_archive_is_rejected_before_zipfile_reads_its_directory(tmp_path):
    run_isolated(f'''
        import os, tracemalloc, zipfile
        from fastgrad import Sequential
        with zipfile.ZipFile("many.npz", "w") as zf:
            for i in range(20_000):
                zf.writestr(f"m{{i}}.npy", b"")
        size = os.path.getsize("many.npz")
        Sequential.load  # imported
        tracemalloc.start()
        try:
            Sequential.load("many.npz")
        except ValueError as exc:
            assert "lists 20000 members" in str(exc), exc
        peak = tracemalloc.get_traced_memory()[1]
        assert peak <= {MAX_ALLOCATION_RATIO} * size + {ALLOCATION_SLACK}, (peak, size)
    ''', tmp_path)


def test_huge_sparse_file_is_rejected_without_reading_it(tmp_path):
    run_isolated('''
        from fastgrad import Sequential
        with open("sparse.npz", "wb") as f:
            f.write(b"PK\\x03\\x04")
            f.truncate(64 << 30)          # 64 GiB, sparse: nothing but the first bytes on disk
        try:
            Sequential.load("sparse.npz")
            raise SystemExit("loaded")
        except ValueError as exc:
            assert "not a valid fastgrad model file" in str(exc), exc
    ''', tmp_path)


def test_paths_that_are_not_files(tmp_path):
    run_isolated('''
        import os
        from fastgrad import Sequential
        os.mkfifo("fifo.npz")              # opening a FIFO for reading would block forever
        os.mkdir("folder.npz")
        for path in ("fifo.npz", "folder.npz", "/dev/zero", "missing.npz"):
            try:
                Sequential.load(path)
                raise SystemExit(f"loaded {path}")
            except (ValueError, FileNotFoundError) as exc:  # FileNotFoundError: the missing one only
                assert "no model file" in str(exc) and isinstance(exc, ValueError) != (path == "missing.npz"), exc
        for bad in (None, 3):
            try:
                Sequential.load(bad)
                raise SystemExit("loaded")
            except TypeError:
                pass
    ''', tmp_path)


def test_save_over_a_read_only_target_keeps_the_old_file_and_names_the_path(tmp_path):
    run_isolated('''
        import os
        from model_files import small_model
        model = small_model()
        os.mkdir("ro")
        model.save("ro/m.npz")
        before = open("ro/m.npz", "rb").read()
        os.chmod("ro", 0o500)
        try:
            if os.geteuid() != 0:   # root writes anywhere; the check is for everyone else
                try:
                    model.save("ro/m.npz")
                    raise SystemExit("saved into a read-only folder")
                except PermissionError as exc:
                    assert "ro/m.npz" in str(exc) and ".fastgrad-" not in str(exc), exc
                assert open("ro/m.npz", "rb").read() == before
        finally:
            os.chmod("ro", 0o700)
        assert [n for n in os.listdir("ro")] == ["m.npz"]
    ''', tmp_path)


def test_checkpoint_with_an_unknown_placeholder_fails_before_the_first_epoch(tmp_path):
    run_isolated('''
        import os
        import numpy as np
        from fastgrad.callbacks import ModelCheckpoint
        from model_files import small_model
        X = np.random.default_rng(0).standard_normal((16, 3))
        y = (X[:, 0] > 0).astype(np.int64)
        model = small_model()
        for template, name in [("ck-{val_loss}.npz", "val_loss"), ("ck-{epoch}-{acc}.npz", "acc"),
                               ("ck-{epoch:{val_loss}}.npz", "cannot be formatted")]:
            try:
                model.fit(X, y, epochs=2, verbose=0, callbacks=[ModelCheckpoint(template)])
                raise SystemExit(f"trained with {template}")
            except ValueError as exc:
                assert name in str(exc), exc
        assert model.epochs_done == 0 and not [n for n in os.listdir(".") if n.startswith("ck-")]
    ''', tmp_path)


@pytest.mark.parametrize("n, error", [("0", "ValueError"), ("10**9", "ValueError"), ("'2'", "TypeError"),
                                      ("2.0", "TypeError"), ("True", "TypeError"), ("None", "TypeError")])
def test_set_num_threads_rejects_bad_counts(tmp_path, n, error):
    run_isolated(f'''
        import fastgrad
        before = fastgrad.get_num_threads()
        try:
            fastgrad.set_num_threads({n})
            raise SystemExit("accepted {n}")
        except {error} as exc:
            assert "n must" in str(exc), exc
        assert fastgrad.get_num_threads() == before
    ''', tmp_path)

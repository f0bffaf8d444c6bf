"""Model files: round trip, permissions, errors that name the user's path, forged files, ModelCheckpoint.

The forged files of tests/model_files.py are loaded here in-process (each must be a clean
``ValueError``); tests/test_hostile.py loads the dangerous ones again in subprocesses
with an allocation bound.
"""
import os
import stat

import numpy as np
import pytest

from fastgrad import Dense, Sequential
from fastgrad.callbacks import ModelCheckpoint
from fastgrad.optim import SGD
from model_files import FORGERIES, small_model


def test_round_trip_keeps_everything(tmp_path):
    model = small_model()
    model.epochs_done = 3
    model.optimizer.step_count = 7
    model.optimizer.state[0][:] = np.arange(model.optimizer.state[0].size).reshape(2, -1)
    model.rng.random(5)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.optimizer.state[0], model.optimizer.state[0])
    assert loaded.epochs_done == 3 and loaded.optimizer.step_count == 7
    assert loaded.rng.random() == model.rng.random()
    assert loaded.layers[0].activation_options == {"alpha": 0.2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_numpy_scalars_in_the_config_are_saved_as_python_values(tmp_path):
    model = Sequential([Dense(np.int64(3), np.int32(2), "leaky_relu", alpha=np.float32(0.25))], loss="mse",
                       optimizer=SGD(lr=np.float32(0.5), momentum=np.float64(0.9)), seed=np.int64(3),
                       l2=np.float32(0.125))
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded.layers[0].activation_options["alpha"] == 0.25
    assert loaded.optimizer.lr == 0.5 and loaded.l2 == 0.125 and loaded.seed == 3
    np.testing.assert_array_equal(loaded.params, model.params)


def test_saved_file_has_the_permissions_np_savez_gives(tmp_path):
    old = os.umask(0o022)
    try:
        small_model().save(tmp_path / "new.npz")
        np.savez(tmp_path / "numpy.npz", a=np.ones(2))
        assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o644
        assert stat.S_IMODE(os.stat(tmp_path / "numpy.npz").st_mode) == 0o644
        os.umask(0o077)
        small_model().save(tmp_path / "private.npz")
        assert stat.S_IMODE(os.stat(tmp_path / "private.npz").st_mode) == 0o600
        os.umask(0o022)
        os.chmod(tmp_path / "new.npz", 0o640)
        small_model().save(tmp_path / "new.npz")  # replacing a file keeps its mode, as open(path, "wb") does
        assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640
    finally:
        os.umask(old)


def test_save_errors_name_the_users_path(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        small_model().save(missing)
    assert str(missing) in str(info.value) and ".fastgrad-" not in str(info.value)
    folder = tmp_path / "a_folder.npz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        small_model().save(folder)
    assert str(folder) in str(info.value) and ".fastgrad-" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.npz", "no"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.npz"]
    assert not [p for p in tmp_path.rglob(".fastgrad-*")]


def test_save_refuses_a_config_it_cannot_store(tmp_path):
    model = small_model()
    model.seed = object()
    with pytest.raises(TypeError, match="cannot store"):
        model.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_file_is_rejected_with_its_reason(tmp_path, name):
    build, reason = FORGERIES[name]
    path = tmp_path / "forged.npz"
    build(path)
    with pytest.raises(ValueError, match=r"forged\.npz is not a valid fastgrad model file: .*" + reason):
        Sequential.load(path)


def test_missing_file_and_bad_backend(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):  # as open(), so `except OSError` catches it
        Sequential.load(tmp_path / "missing.npz")
    small_model().save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="backend"):
        Sequential.load(tmp_path / "m.npz", backend="gpu")


def _fit_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    return X, (X[:, 0] > 0).astype(np.int64)


def test_checkpoint_placeholders_are_checked_when_training_begins(tmp_path):
    X, y = _fit_data()
    model = small_model()
    ckpt = ModelCheckpoint(tmp_path / "ck-{val_loss}.npz")
    with pytest.raises(ValueError, match=r"\{val_loss\}"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[ckpt])
    assert model.epochs_done == 0  # refused before the first epoch
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy", save_best_only=True)
    with pytest.raises(ValueError, match="val_accuracy"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[best])
    bad_spec = ModelCheckpoint(tmp_path / "ck-{loss:d}.npz")
    with pytest.raises(ValueError, match="cannot be formatted"):
        model.fit(X, y, epochs=1, verbose=0, callbacks=[bad_spec])
    ok = ModelCheckpoint(tmp_path / "ck-{epoch:02d}-{val_loss:.3f}-{accuracy:.2f}-{lr}.npz")
    model.fit(X, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[ok])
    assert len(ok.saved) == 2 and os.path.basename(ok.saved[1]).startswith("ck-02-")
    assert all(os.path.isfile(p) for p in ok.saved)


@pytest.mark.parametrize("template", ["ck-{}.npz", "ck-{0}.npz", "ck-{loss[0]}.npz", "ck-{loss.real}.npz", "ck-{.npz"])
def test_checkpoint_template_must_use_names(template):
    with pytest.raises(ValueError, match="template|placeholder"):
        ModelCheckpoint(template)


def test_checkpoint_path_type():
    with pytest.raises(TypeError, match="path"):
        ModelCheckpoint(3)


def test_every_truncation_and_every_flipped_byte_is_a_clean_outcome(tmp_path):
    """Cut the file at many lengths, or flip many single bytes: the load succeeds (the byte was not
    significant, e.g. a zip timestamp) or raises the documented ValueError; nothing else."""
    good = tmp_path / "good.npz"
    small_model().save(good)
    data = good.read_bytes()
    path = tmp_path / "bad.npz"
    for cut in range(0, len(data), 31):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a valid fastgrad model file"):
            Sequential.load(path)
    outcomes = {"loaded": 0, "rejected": 0}
    for at in range(0, len(data), 5):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            Sequential.load(path)
            outcomes["loaded"] += 1
        except ValueError as exc:
            assert "not a valid fastgrad model file" in str(exc), (at, exc)
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > len(data) // 10, outcomes

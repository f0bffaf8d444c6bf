"""Saving and loading models: one .npz, written atomically, read without unpickling.

The file holds only numeric arrays and one JSON string (never Python objects):
``format`` (the format name and version), ``config`` (architecture, loss, dtype,
penalties, optimizer class and hyperparameters, optimizer step count, epochs done,
the shuffling RNG's state), ``params`` and ``opt_state`` (the optimizer's state rows).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "fastgrad.Sequential"
VERSION = 1


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (.npz): to a temporary file in the same folder, then renamed
    over ``path``, so that a crash never leaves a half-written checkpoint."""
    opt = model.optimizer
    config = {
        "layers": [layer.config() for layer in model.layers], "loss": model.loss, "dtype": model.dtype.name,
        "l1": model.l1, "l2": model.l2, "huber_delta": model.huber_delta, "seed": model.seed,
        "optimizer": {"class": type(opt).__name__, "hyperparameters": opt.hyperparameters(),
                      "step": opt.step_count, "n_skipped": opt.n_skipped},
        "epochs_done": model.epochs_done, "rng_state": model.rng.bit_generator.state,
    }
    arrays = {"format": np.array(f"{FORMAT} {VERSION}"), "config": np.array(json.dumps(config)),
              "params": model.params}
    if opt.state is not None:
        arrays["opt_state"] = opt.state[0]
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastgrad-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"{path!s} is not a readable fastgrad model file ({type(exc).__name__}: {exc})") from exc
    if "format" not in arrays or str(arrays["format"]) != f"{FORMAT} {VERSION}":
        found = str(arrays["format"]) if "format" in arrays else "no format entry"
        raise ValueError(f"{path!s} is not a fastgrad model file of format version {VERSION} ({found})")
    for name in ("config", "params"):
        if name not in arrays:
            raise ValueError(f"{path!s} lacks the {name!r} entry: truncated or not written by fastgrad")
    try:
        config = json.loads(str(arrays["config"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path!s} has a corrupted config ({exc})") from exc
    return config, arrays


def load_model(path, backend="compiled"):
    """Rebuild the model saved at ``path``; training resumes exactly where it stopped.

    Raises ``ValueError`` for a missing, truncated, corrupted or foreign file.
    """
    from fastgrad import optim
    from fastgrad.layers import Dense
    from fastgrad.model import Sequential
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"no model file at {path!s}")
    config, arrays = _read(path)
    try:
        opt_cfg = config["optimizer"]
        opt_class = {"SGD": optim.SGD, "RMSprop": optim.RMSprop, "Adagrad": optim.Adagrad,
                     "Adam": optim.Adam, "AdamW": optim.AdamW}[opt_cfg["class"]]
        optimizer = opt_class(**opt_cfg["hyperparameters"])
        layers = [Dense(c["n_in"], c["n_out"], c["activation"], init=c["init"], **c["activation_options"])
                  for c in config["layers"]]
        model = Sequential(layers, loss=config["loss"], optimizer=optimizer, l1=config["l1"], l2=config["l2"],
                           dtype=config["dtype"], seed=config["seed"], backend=backend,
                           huber_delta=config["huber_delta"])
        params = arrays["params"]
        if params.shape != model.params.shape or params.dtype != model.params.dtype:
            raise ValueError(f"params has shape {params.shape} and dtype {params.dtype}; the architecture "
                             f"needs {model.params.shape} of {model.params.dtype}")
        model.params[:] = params
        state = [arrays["opt_state"]] if "opt_state" in arrays else None
        optimizer.load_state_dict({"step": opt_cfg["step"], "n_skipped": opt_cfg["n_skipped"], "state": state,
                                   "hyperparameters": opt_cfg["hyperparameters"]})
        if state is not None:
            optimizer._ensure_state([model.params], optimizer.kernel_spec()[1])
        model.rng.bit_generator.state = config["rng_state"]
        model.epochs_done = int(config["epochs_done"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!s} has an incomplete or corrupted config ({type(exc).__name__}: {exc})") from exc
    return model

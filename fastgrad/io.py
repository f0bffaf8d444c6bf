"""Saving and loading models: one .npz, written atomically, read without unpickling or trusting.

The file holds only numeric arrays and one JSON string (never Python objects):
``format`` (the format name and version), ``config`` (architecture, loss, dtype,
penalties, optimizer class and hyperparameters, optimizer step count, epochs done,
the shuffling RNG's state, Dropout's seed), ``params``, ``state`` (non-trainable values:
BatchNorm1d's running statistics) and ``opt_state`` (the optimizer's state rows).

Version 2 (this one) adds every layer kind, ``state`` and ``dropout_seed``; version-1
files (Dense layers only) still load.

Loading checks, in this order and before allocating anything of the size a file
*declares*: the archive and every ``.npy`` header against the bytes present
(:mod:`fastgrad._safe_npz`), the config against a schema (:mod:`fastgrad._schema`:
every key, type and range), then the parameter count the layers declare against the
stored ``params`` header. Every fault is a ``ValueError`` reading
``"<path> is not a valid fastgrad model file: <reason>"``.
"""
from __future__ import annotations

import json
import os
import secrets

import numpy as np

from fastgrad._safe_npz import FLOAT, TEXT, InvalidFile, NpzMembers
from fastgrad._schema import AnyOf, Bool, Int, ListOf, MapOf, Null, Num, Record, Schema, Str, parse_json

FORMAT = "fastgrad.Sequential"
VERSION = 2
# Per format version: the archive's members (name -> kind) and those that must be present.
MEMBERS = {1: ({"format": TEXT, "config": TEXT, "params": FLOAT, "opt_state": FLOAT},
               ("format", "config", "params")),
           2: ({"format": TEXT, "config": TEXT, "params": FLOAT, "state": FLOAT, "opt_state": FLOAT},
               ("format", "config", "params", "state"))}
MAX_COUNT = 2 ** 62


# ----- saving ---------------------------------------------------------------------------------
def _json_default(value):
    """NumPy scalars and small arrays in a config become Python values (``json`` knows neither)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "biuf":
        return value.tolist()
    raise TypeError(f"the model's config holds {type(value).__name__} {value!r:.60}, which a model file "
                    "cannot store (numbers, strings, booleans and lists only)")


def _config(model) -> dict:
    opt = model.optimizer
    return {
        "layers": [{"kind": type(layer).__name__, **layer.config()} for layer in model.layers],
        "loss": model.loss, "dtype": model.dtype.name, "dropout_seed": model.dropout_seed,
        "l1": model.l1, "l2": model.l2, "huber_delta": model.huber_delta, "seed": model.seed,
        "optimizer": {"class": type(opt).__name__, "hyperparameters": opt.hyperparameters(),
                      "step": opt.step_count, "n_skipped": getattr(opt, "n_skipped", 0)},
        "epochs_done": model.epochs_done, "rng_state": model.rng.bit_generator.state,
        "metrics": list(model.metrics), "l1_mode": model.l1_mode,
    }


def _open_temp(folder, target):
    """A new file beside ``target``, created with mode 0666 so that the umask applies, as for
    ``np.savez(path)``; replacing an existing file keeps that file's permissions."""
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = None
    while True:
        tmp = os.path.join(folder, f".fastgrad-{secrets.token_hex(8)}.npz.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        return fd, tmp


def _sync_folder(folder):
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (.npz): to a temporary file in the same folder, then renamed
    over ``path``, so that a crash never leaves a half-written checkpoint.

    The file gets the permissions ``np.savez`` would give it (a new file: 0666 minus the
    umask; an existing file keeps its own). Raises ``TypeError`` when the config holds a
    value a file cannot store, and ``OSError`` naming ``path`` when writing fails (the
    previous file at ``path``, if any, is left intact).
    """
    from fastgrad.custom import model_functions
    custom = [f for f in model_functions(model) if f is not None]
    if custom:
        raise ValueError(f"a model with {' and '.join(map(repr, custom))} cannot be saved to a file: files hold no "
                         "code (and loading never unpickles); save model.get_weights() with np.savez and "
                         "rebuild the model, or pickle it")
    opt = model.optimizer
    text = json.dumps(_config(model), default=_json_default, allow_nan=False)
    arrays = {"format": np.array(f"{FORMAT} {VERSION}"), "config": np.array(text), "params": model.params,
              "state": model.state}
    if not isinstance(opt.state, dict) and opt.state is not None:  # LBFGS's history (a dict) is not saved
        arrays["opt_state"] = opt.state[0]
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = _open_temp(folder, path)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _sync_folder(folder)
    except OSError as exc:
        if exc.errno is None:
            raise OSError(f"could not save the model to {path}: {exc}") from exc
        raise type(exc)(exc.errno, f"could not save the model to {path}: {exc.strerror}", path) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# ----- the config schema ----------------------------------------------------------------------
_COUNT = Int(1, MAX_COUNT)
_OPTIONS = MapOf(AnyOf(Num(), Bool(), Str(max_len=40), describe="a number, boolean or short string"))


def _dense_kind():
    from fastgrad.layers import Dense
    schema = Record({"kind": Str(choices=("Dense",)), "n_in": _COUNT, "n_out": _COUNT,
                     "activation": Str(max_len=40), "init": Str(max_len=40), "use_bias": Bool(),
                     "activation_options": _OPTIONS}, optional=("kind", "use_bias"))

    def build(c):
        return Dense(c["n_in"], c["n_out"], c["activation"], init=c["init"], use_bias=c.get("use_bias", True),
                     **c["activation_options"])
    return schema, build


def _activation_kind():
    from fastgrad.layers import Activation
    schema = Record({"kind": Str(), "activation": Str(max_len=40), "activation_options": _OPTIONS})
    return schema, lambda c: Activation(c["activation"], **c["activation_options"])


def _dropout_kind():
    from fastgrad.layers import Dropout
    return Record({"kind": Str(), "p": Num(0.0, 1.0)}), lambda c: Dropout(c["p"])


def _layer_norm_kind():
    from fastgrad.layers import LayerNorm
    schema = Record({"kind": Str(), "n": _COUNT, "eps": Num(0.0, low_open=True), "elementwise_affine": Bool()})
    return schema, lambda c: LayerNorm(c["n"], eps=c["eps"], elementwise_affine=c["elementwise_affine"])


def _batch_norm_kind():
    from fastgrad.layers import BatchNorm1d
    schema = Record({"kind": Str(), "n": _COUNT, "eps": Num(0.0, low_open=True), "momentum": Num(0.0, 1.0),
                     "affine": Bool(), "track_running_stats": Bool()})
    return schema, lambda c: BatchNorm1d(c["n"], eps=c["eps"], momentum=c["momentum"], affine=c["affine"],
                                         track_running_stats=c["track_running_stats"])


def _residual_kind():
    from fastgrad.layers import Residual
    schema = Record({"kind": Str(), "layers": ListOf(_Layer(), min_len=1)})
    return schema, lambda c: Residual([_build_layer(inner, f"{i}") for i, inner in enumerate(c["layers"])])


# Layer kind (the ``kind`` key of a layer's config; "Dense" when absent) -> factory of
# (schema, build). A new layer kind is one row here.
LAYER_KINDS = {"Dense": _dense_kind, "Activation": _activation_kind, "Dropout": _dropout_kind,
               "LayerNorm": _layer_norm_kind, "BatchNorm1d": _batch_norm_kind, "Residual": _residual_kind}


def _build_layer(c, where):
    return _calling(f"config['layers'][{where}]", LAYER_KINDS[c.get("kind", "Dense")]()[1], c)


class _Layer(Schema):
    """A layer config: checked against the schema of its ``kind``."""

    def check(self, value, where):
        kind = value.get("kind", "Dense") if isinstance(value, dict) else None
        if kind not in LAYER_KINDS:
            self.fail(value, where, f"a layer config with 'kind' one of {sorted(LAYER_KINDS)}")
        LAYER_KINDS[kind]()[0].check(value, where)


def _optimizers() -> dict:
    from fastgrad import optim
    return {cls.__name__: cls for cls in (optim.SGD, optim.RMSprop, optim.Adagrad, optim.Adam, optim.AdamW,
                                          optim.LBFGS)}


def _config_schema():
    from fastgrad.metrics import METRICS
    from fastgrad._model_options import L1_MODES
    from fastgrad.model import LOSSES
    number = Num()
    return Record({
        "layers": ListOf(_Layer(), min_len=1),
        "loss": Str(choices=LOSSES),
        "dropout_seed": Int(0, 2 ** 62),
        "dtype": Str(choices=("float32", "float64")),
        "l1": Num(0.0), "l2": Num(0.0), "huber_delta": Num(0.0, low_open=True),
        "seed": AnyOf(Null(), Int(0), ListOf(Int(0), max_len=64),
                      describe="null, an integer >= 0 or a list of them"),
        "optimizer": Record({
            "class": Str(choices=tuple(_optimizers())),
            "hyperparameters": MapOf(AnyOf(number, Bool(), Null(), ListOf(number, max_len=4),
                                           Str(choices=("strong_wolfe",)),
                                           describe="a number, boolean, null, a short list of numbers or "
                                                    "'strong_wolfe'")),
            "step": Int(0, MAX_COUNT), "n_skipped": Int(0, MAX_COUNT)}),
        "epochs_done": Int(0, MAX_COUNT),
        "rng_state": Record({"bit_generator": Str(choices=("PCG64",)),
                             "state": Record({"state": Int(0, 2 ** 128), "inc": Int(0, 2 ** 128)}),
                             "has_uint32": Int(0, 2), "uinteger": Int(0, 2 ** 32)}),
        "metrics": ListOf(Str(choices=METRICS), max_len=len(METRICS)),
        "l1_mode": Str(choices=L1_MODES),
    }, optional=("dropout_seed", "metrics", "l1_mode"))


# ----- loading --------------------------------------------------------------------------------
def _calling(what, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its ValueError/TypeError turned into a reason naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise InvalidFile(f"{what}: {exc}") from None


def _version(files) -> int:
    text = files.text("format")
    name, _, version = text.partition(" ")
    if name != FORMAT or not version.isdigit() or int(version) not in MEMBERS:
        raise InvalidFile(f"format {text[:60]!r}, expected {FORMAT!r} with a version in {sorted(MEMBERS)}")
    return int(version)


def _check_arrays(files, n_params, n_state, dtype):
    """The stored arrays' headers against the config (nothing has been read yet)."""
    if files.shape("params") != (n_params,) or files.dtype("params") != dtype:
        raise InvalidFile(f"the layers declare {n_params} parameters of {dtype.name}, but 'params' holds "
                          f"shape {files.shape('params')} of {files.dtype('params').name}")
    if "state" in files and (files.shape("state") != (n_state,) or files.dtype("state") != dtype):
        raise InvalidFile(f"the layers declare {n_state} state values of {dtype.name}, but 'state' holds "
                          f"shape {files.shape('state')} of {files.dtype('state').name}")
    if "opt_state" in files:
        shape = files.shape("opt_state")
        if len(shape) != 2 or shape[1] != n_params or shape[0] > 8 or files.dtype("opt_state") != dtype:
            raise InvalidFile(f"'opt_state' must have shape (slots, {n_params}) of {dtype.name}, got "
                              f"{shape} of {files.dtype('opt_state').name}")


def _build(files, config, backend):
    from fastgrad.model import Sequential
    from fastgrad._program import build_program
    layers = [_build_layer(c, i) for i, c in enumerate(config["layers"])]
    dtype = np.dtype(config["dtype"])
    built = _calling("config['layers']", build_program, layers, None, dtype)[2]  # counts only: nothing allocated
    _check_arrays(files, built.n_params, built.n_state, dtype)
    opt_cfg = config["optimizer"]
    hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in opt_cfg["hyperparameters"].items()}
    optimizer = _calling("config['optimizer']['hyperparameters']", _optimizers()[opt_cfg["class"]], **hyper)
    model = _calling("config", Sequential, layers, loss=config["loss"], optimizer=optimizer, l1=config["l1"],
                     l2=config["l2"], dtype=config["dtype"], seed=config["seed"], backend=backend,
                     huber_delta=config["huber_delta"], metrics=config.get("metrics"),
                     l1_mode=config.get("l1_mode", "subgradient"))
    model.params[:] = files.array("params")
    if "state" in files:
        model.state[:] = files.array("state")
    if "dropout_seed" in config:
        model.dropout_seed = config["dropout_seed"]
    state = [files.array("opt_state")] if "opt_state" in files else None
    if opt_cfg["class"] != "LBFGS":  # LBFGS's curvature history is not saved: the next fit starts afresh
        _calling("'opt_state'", optimizer.load_state_dict,
                 {"step": opt_cfg["step"], "n_skipped": opt_cfg["n_skipped"], "state": state,
                  "hyperparameters": optimizer.hyperparameters()})
        if state is not None:
            _calling("'opt_state'", optimizer._ensure_state, [model.params], optimizer.kernel_spec()[1])
    _calling("config['rng_state']", setattr, model.rng.bit_generator, "state", config["rng_state"])
    model.epochs_done = config["epochs_done"]
    return model


def load_model(path, backend="compiled"):
    """Rebuild the model saved at ``path``; training resumes exactly where it stopped.

    Never unpickles, and allocates at most a small multiple of the file's size before
    rejecting it. Raises ``ValueError`` (``"<path> is not a valid fastgrad model file:
    <reason>"``) for a foreign, truncated, forged or inconsistent file,
    ``FileNotFoundError`` ``"no model file at <path>"`` when nothing is there (as ``open``), and
    ``ValueError`` with that message for a path that is not a regular file (a folder, a FIFO).
    """
    from fastgrad.model import _backend
    _backend(backend)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!s}")
    if not os.path.isfile(path):
        raise ValueError(f"no model file at {path!s} (not a regular file)")
    every_member = {name: kind for kinds, _ in MEMBERS.values() for name, kind in kinds.items()}
    try:
        with NpzMembers(path, every_member, required=("format",)) as files:
            version = _version(files)
            kinds, required = MEMBERS[version]
            files.expect(kinds, required)
            config = parse_json(files.text("config"))
            _config_schema().check(config, "config")
            return _build(files, config, backend)
    except InvalidFile as exc:
        raise ValueError(f"{path!s} is not a valid fastgrad model file: {exc}") from None

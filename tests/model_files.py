"""Forged model files for tests/test_io.py and tests/test_hostile.py: a real file, then one fault.

Each ``FORGERIES`` entry is ``name -> (build(path), reason regex)``; ``build`` writes a file
that ``Sequential.load`` must reject with ``ValueError("<path> is not a valid fastgrad
model file: <reason>")``. Nothing here compiles a kernel (saving does not), so the cases
are cheap to run one per subprocess.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np


def small_model():
    from fastgrad import Dense, Sequential
    from fastgrad.optim import Adam
    model = Sequential([Dense(3, 4, "leaky_relu", alpha=0.2), Dense(4, 2)], loss="softmax_cross_entropy",
                       optimizer=Adam(lr=1e-2), seed=3)
    model.optimizer._ensure_state([model.params], model.optimizer.kernel_spec()[1])
    return model


def members_of_saved(path) -> dict:
    """name -> array of a file fastgrad wrote (trusted: made by the test itself)."""
    small_model().save(path)
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def npy_bytes(array=None, header=None, data=b"") -> bytes:
    """The bytes of a .npy member: of ``array``, or a hand-written ``header`` dict then ``data``."""
    buf = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buf, array, allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


def write_npz(path, members: dict, compression=zipfile.ZIP_STORED) -> None:
    """Write ``members`` (name -> array or raw .npy bytes) as an .npz archive."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, value in members.items():
            zf.writestr(name + ".npy", value if isinstance(value, bytes) else npy_bytes(value))


def with_config(path, edit) -> None:
    """A saved model whose config dict went through ``edit(config)`` (which may return text)."""
    members = members_of_saved(path)
    config = json.loads(str(members["config"]))
    result = edit(config)
    members["config"] = np.array(result if isinstance(result, str) else json.dumps(config))
    write_npz(path, members)


def with_member(path, name, value) -> None:
    members = members_of_saved(path)
    if value is None:
        del members[name]
    else:
        members[name] = value
    write_npz(path, members)


def _set(keys, value):
    def edit(config):
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _rename(path, old, new):
    members = dict(np.load(path, allow_pickle=False))
    members[new] = members.pop(old)
    write_npz(path, members)


def _truncated(path):
    members_of_saved(path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])


def _huge_dense(config):
    config["layers"] = [{"kind": "Dense", "n_in": 100_000, "n_out": 100_000, "activation": "identity",
                         "init": "auto", "activation_options": {}}]


FORGERIES = {
    "npy_file": (lambda p: np.save(open(p, "wb"), np.ones(3)), "single .npy array"),
    "text_file": (lambda p: open(p, "w").write("hello"), "not an .npz"),
    "empty_file": (lambda p: open(p, "wb").close(), "not an .npz"),
    "truncated": (_truncated, "unreadable archive"),
    "nested_brackets": (lambda p: with_config(p, lambda c: "[" * 100_000 + "]" * 100_000), "nested more than"),
    "nested_objects": (lambda p: with_config(p, lambda c: '{"a":' * 50_000 + "1" + "}" * 50_000),
                       "nested more than"),
    "params_header_2_40": (lambda p: with_member(p, "params", npy_bytes(
        header={"descr": "<f4", "fortran_order": False, "shape": (2 ** 40,)}, data=b"\0" * 64)),
        r"declares shape \(1099511627776,\)"),
    "params_negative_shape": (lambda p: with_member(p, "params", npy_bytes(
        header={"descr": "<f4", "fortran_order": False, "shape": (-4,)}, data=b"")), "invalid shape"),
    "dense_100000_squared": (lambda p: with_config(p, _huge_dense), r"declare 10000100000 parameters"),
    "epochs_done_negative": (lambda p: with_config(p, _set(["epochs_done"], -5)),
                             r"config\['epochs_done'\] must be an integer >= 0"),
    "l1_string": (lambda p: with_config(p, _set(["l1"], "0.1")), r"config\['l1'\] must be a finite number"),
    "n_in_string": (lambda p: with_config(p, _set(["layers", 0, "n_in"], "3")),
                    r"config\['layers'\]\[0\]\['n_in'\] must be an integer"),
    "n_in_bool": (lambda p: with_config(p, _set(["layers", 0, "n_in"], True)), r"\['n_in'\] must be an integer"),
    "layers_not_list": (lambda p: with_config(p, _set(["layers"], {"a": 1})), r"config\['layers'\] must be a list"),
    "layer_kind_unknown": (lambda p: with_config(p, _set(["layers", 0, "kind"], "os.system")), r"'kind' one of"),
    "step_float": (lambda p: with_config(p, _set(["optimizer", "step"], 1.5)),
                   r"config\['optimizer'\]\['step'\] must be an integer"),
    "optimizer_class": (lambda p: with_config(p, _set(["optimizer", "class"], "builtins.eval")),
                        r"config\['optimizer'\]\['class'\] must be one of"),
    "hyper_negative_lr": (lambda p: with_config(p, _set(["optimizer", "hyperparameters", "lr"], -1.0)),
                          r"hyperparameters'\]: lr must be >= 0"),
    "hyper_unknown": (lambda p: with_config(p, _set(["optimizer", "hyperparameters", "evil"], 1)),
                      r"hyperparameters'\]: .*evil"),
    "activation_option_list": (lambda p: with_config(p, _set(["layers", 0, "activation_options", "alpha"], [1])),
                               r"\['activation_options'\]\['alpha'\] must be"),
    "activation_unknown": (lambda p: with_config(p, _set(["layers", 0, "activation"], "__import__")),
                           r"config\['layers'\]\[0\]: activation must be one of"),
    "loss_unknown": (lambda p: with_config(p, _set(["loss"], "hinge")), r"config\['loss'\] must be one of"),
    "dtype_float16": (lambda p: with_config(p, _set(["dtype"], "float16")), r"config\['dtype'\] must be one of"),
    "seed_string": (lambda p: with_config(p, _set(["seed"], "x")), r"config\['seed'\] must be null"),
    "rng_state_garbage": (lambda p: with_config(p, _set(["rng_state", "state", "state"], -1)),
                          r"config\['rng_state'\]\['state'\]\['state'\] must be an integer >= 0"),
    "unknown_key": (lambda p: with_config(p, _set(["surprise"], 1)), r"unknown key\(s\) \['surprise'\]"),
    "missing_key": (lambda p: with_config(p, lambda c: c.pop("loss") and None), r"lacks the key 'loss'"),
    "config_nan": (lambda p: with_config(p, lambda c: json.dumps(c).replace('"l1": 0.0', '"l1": NaN')),
                   "non-standard JSON value NaN"),
    "config_huge_int": (lambda p: with_config(p, lambda c: json.dumps(c).replace(
        '"epochs_done": 0', '"epochs_done": ' + "9" * 5000)), "not valid JSON"),
    "config_unterminated_escapes": (lambda p: with_config(p, lambda c: '"\\"' * 200_000), "not valid JSON"),
    "config_not_json": (lambda p: with_config(p, lambda c: "{'a': 1}"), "not valid JSON"),
    "config_not_text": (lambda p: with_member(p, "config", np.ones(3)), "must be a text scalar"),
    "pickled_config": (lambda p: with_member(p, "config", npy_bytes(
        header={"descr": "|O", "fortran_order": False, "shape": (1,)}, data=b"\x80\x04K\x01.")),
        "must be a text scalar"),
    "params_int": (lambda p: with_member(p, "params", np.arange(26)), "must hold float32 or float64"),
    "params_missing": (lambda p: with_member(p, "params", None), r"missing member\(s\) \['params'\]"),
    "params_wrong_dtype": (lambda p: with_member(p, "params", np.zeros(26, np.float64)), "parameters of float32"),
    "opt_state_wrong_shape": (lambda p: with_member(p, "opt_state", np.zeros((2, 5), np.float32)),
                              r"'opt_state' must have shape \(slots, 26\)"),
    "opt_state_wrong_slots": (lambda p: with_member(p, "opt_state", np.zeros((3, 26), np.float32)),
                              "'opt_state'"),
    "extra_member": (lambda p: with_member(p, "surprise", np.ones(2)), "lists 6 members, expected at most 5"),
    "unknown_member": (lambda p: with_member(p, "opt_state", None) or _rename(p, "params", "weights"), "unexpected member"),
    "wrong_format": (lambda p: with_member(p, "format", np.array("fastgrad.Sequential 99")), "format"),
    "compressed": (lambda p: write_npz(p, members_of_saved(p), zipfile.ZIP_DEFLATED), "is compressed"),
}

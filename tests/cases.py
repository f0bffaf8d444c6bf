"""Tables of cases shared by tests/ and bench/: each function with the options it is tested at."""
import numpy as np

# (activation name, options): every activation and each of its modes.
ACTIVATION_CASES = [
    ("identity", {}), ("relu", {}), ("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 1.3}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("sigmoid", {}), ("tanh", {}),
    ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 5.0}), ("silu", {}),
    ("softmax", {}), ("log_softmax", {}),
]
# Activations with a kink at 0, where finite differences are not a derivative.
KINKED = {"relu", "leaky_relu", "elu"}
ROWWISE = {"softmax", "log_softmax"}


def case_id(case):
    name, options = case
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def random_z(rng, shape, dtype, name=None, scale=3.0):
    """Normal samples; kept at least 1e-3 away from a kink of ``name``."""
    z = rng.standard_normal(shape) * scale
    if name in KINKED or name == "softplus":
        z = np.where(np.abs(z) < 1e-3, 1e-3 + np.abs(z), z)
    return z.astype(dtype)


def loss_inputs(name, rng, shape, dtype):
    """(pred, target) for the elementwise loss ``name``: normal values, probabilities where the
    loss needs them, and for mae/huber no difference within 1e-3 of the kinks |d| = 0, 0.3
    (a delta the tests use) and 1 (the default delta), where finite differences fail."""
    pred = rng.standard_normal(shape) * 2
    target = rng.standard_normal(shape) * 2
    if name == "binary_cross_entropy":
        pred = rng.uniform(0.02, 0.98, shape)
    if name.startswith("binary"):
        target = rng.uniform(0, 1, shape)
    if name in ("mae", "huber"):
        d = pred - target
        bad = (np.abs(d) < 1e-3) | (np.abs(np.abs(d) - 0.3) < 1e-3) | (np.abs(np.abs(d) - 1) < 1e-3)
        pred = np.where(bad, pred + 0.01, pred)
    return pred.astype(dtype), target.astype(dtype)

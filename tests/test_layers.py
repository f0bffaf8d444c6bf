"""The layer kinds of the model program (issue 11): Dense without bias, Activation, Dropout,
LayerNorm, BatchNorm1d and Residual, inside the compiled epoch and its NumPy twin.

Each kind: the compiled path equals the reference path; the model's gradient equals central
differences of its loss in float64 (training and evaluation mode); the forward pass and
gradients equal PyTorch's modules of the same name (when torch is installed); running
statistics, modes, saving and loading, and the construction errors.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cases import ACTIVATION_CASES, case_id
from conftest import loss_of_params

from fastgrad import Activation, BatchNorm1d, Dense, Dropout, LayerNorm, Residual, Sequential, diff
from fastgrad.optim import SGD, Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _every_kind(p=0.25, affine=True, track=True):
    """A model using every layer kind (10 inputs, 3 classes)."""
    return [Dense(10, 12, "tanh"), BatchNorm1d(12, affine=affine, track_running_stats=track), Dropout(p),
            Residual([Dense(12, "relu"), LayerNorm(12, elementwise_affine=affine), Dense(12, use_bias=False)]),
            Activation("elu", alpha=0.5), LayerNorm(12), Dense(3)]


def _data(n=40, n_in=10, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.integers(0, k, n)


def _model(layers=None, dtype="float64", backend="compiled", optimizer=None, **kw):
    return Sequential(_every_kind() if layers is None else layers, loss="softmax_cross_entropy",
                      optimizer=optimizer or Adam(lr=1e-2), dtype=dtype, seed=3, backend=backend, **kw)


@pytest.mark.parametrize("kinds", [dict(), dict(affine=False, track=False), dict(p=0.0)],
                         ids=["affine-tracked", "plain", "no-dropout"])
def test_compiled_epoch_equals_reference_epoch(kinds):
    X, y = _data()
    runs = []
    for backend in ("compiled", "reference"):
        model = _model(_every_kind(**kinds), backend=backend, l1=1e-4, l2=1e-3)
        history = model.fit(X, y, epochs=3, batch_size=8, clip_norm=2.0, verbose=0, diagnostics=True)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.state, b.state, rtol=1e-9, atol=1e-12)
    for key in hb.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-9)
    for key in hb.diagnostics:
        np.testing.assert_allclose(ha.diagnostics[key], hb.diagnostics[key], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.evaluate(X, y)["loss"], b.evaluate(X, y)["loss"], rtol=1e-9)


def test_float32_close_to_float64():
    X, y = _data()
    out = []
    for dtype in ("float32", "float64"):
        model = _model(dtype=dtype)
        model.fit(X, y, epochs=2, batch_size=8, verbose=0)
        out.append(model.predict(X).astype(np.float64))
        assert model.params.dtype == model.state.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out[0], out[1], atol=2e-3)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("kinds", [dict(), dict(affine=False, track=False)], ids=["affine-tracked", "plain"])
def test_gradient_matches_finite_differences(mode, kinds):
    X, y = _data(n=12)
    model = _model(_every_kind(**kinds), l1=0.0, l2=1e-2)
    model.fit(X, y, epochs=1, batch_size=4, verbose=0)  # running statistics away from (0, 1)
    getattr(model, mode)()
    loss, grad = model.loss_and_grad(X, y)
    f, p0 = loss_of_params(model, X, y)
    fd = diff.gradient(f, p0)
    assert loss == pytest.approx(f(p0), rel=1e-13)
    assert np.max(np.abs(fd - grad)) <= 1e-6 * max(1.0, np.max(np.abs(grad)))


def test_train_and_eval_modes():
    X, y = _data()
    model = _model()
    assert model.training is False
    np.testing.assert_array_equal(model.forward(X), model.forward(X))
    np.testing.assert_allclose(model.forward(X), model.forward(X, batch_size=7), rtol=1e-13)  # no batch statistics
    model.train()
    first = model.forward(X)
    np.testing.assert_array_equal(first, model.forward(X))  # the mask of the next step, fixed until a step
    assert not np.allclose(first, model.eval().forward(X))
    model.train()
    state = model.state.copy()
    model.train_step(X, y)
    assert not np.array_equal(first, model.forward(X))       # a new step, a new mask
    assert not np.array_equal(state, model.state)            # train_step updates running statistics
    state = model.state.copy()
    model.loss_and_grad(X, y)
    model.forward(X)
    np.testing.assert_array_equal(state, model.state)        # loss_and_grad and forward never do
    np.testing.assert_array_equal(model.predict(X), model.eval().predict(X))  # predict always evaluates
    with pytest.raises(TypeError, match="mode must be True or False"):
        model.train("yes")


def test_running_statistics_follow_pytorch_rule():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 4)) * 3 + 1
    bn = BatchNorm1d(4, momentum=0.3)
    model = Sequential([bn, Dense(4, 1)], loss="mse", optimizer=SGD(lr=0.0), dtype="float64", seed=0)
    mean, var = np.zeros(4), np.ones(4)
    for lo in (0, 6):
        batch = X[lo:lo + 6]
        mean = 0.7 * mean + 0.3 * batch.mean(axis=0)
        var = 0.7 * var + 0.3 * batch.var(axis=0, ddof=1)
    model.fit(X, np.zeros(12), epochs=1, batch_size=6, shuffle=False, verbose=0)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-13)
    np.testing.assert_allclose(model.state, np.concatenate([mean, var]), rtol=1e-13)
    expected = (X - mean) / np.sqrt(var + 1e-5) @ model.layers[1].W + model.layers[1].b
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12)


def test_batch_norm_refuses_a_training_batch_of_one_row():
    X, y = _data(n=9)
    model = _model()
    with pytest.raises(ValueError, match="batch of 1 row"):
        model.fit(X, y, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="batch of 1 row"):
        model.train_step(X[:1], y[:1])
    model.fit(X, y, batch_size=3, verbose=0)
    model.predict(X[:1])  # evaluation uses the running statistics: one row is fine


def test_dropout_masks_are_reproducible_and_scaled():
    X = np.ones((200, 50))
    model = Sequential([Dropout(0.3)], loss="mse", n_in=50, dtype="float64", seed=5).train()
    out = model.forward(X)
    kept = out != 0
    assert set(np.unique(out)) == {0.0, 1 / 0.7}
    n = kept.size
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.21 / n)
    again = Sequential([Dropout(0.3)], loss="mse", n_in=50, dtype="float64", seed=5).train().forward(X)
    np.testing.assert_array_equal(out, again)
    other = Sequential([Dropout(0.3)], loss="mse", n_in=50, dtype="float64", seed=6).train().forward(X)
    assert not np.array_equal(out, other)
    np.testing.assert_array_equal(model.eval().forward(X), X)
    zero = Sequential([Dropout(1.0)], loss="mse", n_in=50, dtype="float64", seed=5).train().forward(X)
    np.testing.assert_array_equal(zero, 0.0)


_SEEDED_FIT = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
from fastgrad import set_num_threads
set_num_threads(int(sys.argv[1]))
sys.path.insert(0, {tests!r})
from test_layers import _data, _model
X, y = _data(n=300)
model = _model(dtype="float32")
model.fit(X, y, epochs=2, batch_size=32, verbose=0)
print(model.params.tobytes().hex()[:4000], model.state.tobytes().hex())
"""


def test_seeded_fit_bit_identical_across_processes_and_threads():
    code = _SEEDED_FIT.format(root=ROOT, tests=os.path.join(ROOT, "tests"))
    outs = []
    for threads in ("1", "2", "2"):
        run = subprocess.run([sys.executable, "-c", code, threads], capture_output=True, text=True, cwd=ROOT,
                             timeout=1800)
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(run.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_save_and_load_every_kind(tmp_path):
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.state, model.state)
    assert repr(loaded.layers) == repr(model.layers)
    assert loaded.dropout_seed == model.dropout_seed
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    loaded.fit(X, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(loaded.params, model.params)  # the same masks and shuffles
    np.testing.assert_array_equal(loaded.state, model.state)


def test_version_1_files_still_load(tmp_path):
    """A file as format version 1 wrote it (Dense layers only, no state, no dropout seed)."""
    import json
    model = Sequential([Dense(3, 4, "relu"), Dense(4, 2)], loss="mse", seed=0)
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), verbose=0)
    model.save(tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as f:
        config = json.loads(str(f["config"]))
        arrays = {"params": f["params"], "opt_state": f["opt_state"]}
    config.pop("dropout_seed")
    for layer in config["layers"]:
        layer.pop("use_bias")
        layer.pop("kind")
    np.savez(tmp_path / "v1.npz", format=np.array("fastgrad.Sequential 1"), config=np.array(json.dumps(config)),
             **arrays)
    loaded = Sequential.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.predict(np.ones((2, 3))), model.predict(np.ones((2, 3))))


def test_load_checks_state_against_the_layers(tmp_path):
    model = _model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["state"] = arrays["state"][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="state values"):
        Sequential.load(tmp_path / "bad.npz")


def test_construction_errors():
    with pytest.raises(ValueError, match="output width must equal its input width 12"):
        Sequential([Dense(10, 12), Residual([Dense(12, 5)])], loss="mse")
    with pytest.raises(ValueError, match="layer 1 expects 6 inputs but layer 0 gives 5"):
        Sequential([Dense(3, 5), LayerNorm(6)], loss="mse")
    with pytest.raises(ValueError, match="layer 1.0 expects 4 inputs"):
        Sequential([Dense(3, 5), Residual([Dense(4, 5)])], loss="mse")
    with pytest.raises(ValueError, match="cannot infer its input width"):
        Sequential([Dropout(0.5), Dense(3)], loss="mse")
    with pytest.raises(ValueError, match="non-empty list of fastgrad layers"):
        Residual([])
    with pytest.raises(ValueError, match="p must be <= 1"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="eps must be > 0"):
        LayerNorm(4, eps=0)
    with pytest.raises(TypeError, match="use_bias must be True or False"):
        Dense(3, 4, use_bias="no")
    with pytest.raises(TypeError, match="affine must be True or False"):
        BatchNorm1d(3, affine=1)
    layer = Dense(4, 4)
    with pytest.raises(ValueError, match="appears twice"):
        Sequential([layer, Residual([layer])], loss="mse")


def test_inferred_widths_bias_and_views():
    model = Sequential([Dense(8, "relu"), Dense(4, use_bias=False), BatchNorm1d(4), Activation("softmax")],
                       loss="mse", n_in=3, dtype="float64", seed=0)
    dense, nobias, bn = model.layers[:3]
    assert (dense.n_in, nobias.n_in, model.n_in, model.n_out) == (3, 8, 3, 4)
    assert nobias.b is None and nobias.grad_b is None
    assert model.n_params == model.count_params() == 3 * 8 + 8 + 8 * 4 + 2 * 4
    np.testing.assert_array_equal(bn.weight, 1.0)
    np.testing.assert_array_equal(bn.bias, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    assert np.shares_memory(bn.weight, model.params) and np.shares_memory(bn.running_mean, model.state)
    bn.running_mean = np.full(4, 0.5)
    assert model.state[0] == 0.5
    with pytest.raises(ValueError, match="running_mean must have shape"):
        bn.running_mean = np.zeros(3)
    with pytest.raises(ValueError, match="state must have dtype float64"):
        model.state = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="has no b"):
        nobias.b = np.zeros(4)
    X = np.random.default_rng(0).standard_normal((5, 3))
    z = np.maximum(X @ dense.W + dense.b, 0) @ nobias.W
    z = (z - 0.5) / np.sqrt(1 + 1e-5)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict(X), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(model(X), model.predict(X))


def test_optimizer_penalty_and_hessian_leave_state_alone():
    X, y = _data(n=16)
    model = _model(l1=1e-3, l2=1e-2, optimizer=SGD(lr=0.1, weight_decay=0.1))
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    state = model.state.copy()
    small = Sequential([Dense(10, 3, "tanh"), BatchNorm1d(3), Dense(2)], loss="softmax_cross_entropy",
                       dtype="float64", seed=0)
    small.fit(X, y % 2, epochs=1, batch_size=8, verbose=0)
    small_state = small.state.copy()
    H = small.hessian(X, y % 2)
    assert H.shape == (small.n_params,) * 2
    np.testing.assert_allclose(H, H.T, atol=1e-5 * max(1.0, np.abs(H).max()))
    np.testing.assert_array_equal(small.state, small_state)
    assert model.state.size == 24 and np.array_equal(model.state, state)


def test_summary_lists_every_kind_aligned():
    out = []
    _model().summary(print_fn=out.append)
    text = out[0]
    for name in ("BatchNorm1d(12", "Dropout(p=0.25)", "Residual (x + block(x))", "  LayerNorm(12",
                 "use_bias=False", "Activation('elu', alpha=0.5)", "state: 24 values"):
        assert name in text, name
    rows = text.splitlines()[1:-1]   # header and layer rows: the columns end at the same place
    assert len({len(row) for row in rows}) == 1, rows
    long = Sequential([Dense(3, 4, "leaky_relu", alpha=0.125, init="glorot_uniform", use_bias=False)], loss="mse")
    out.clear()
    long.summary(print_fn=out.append)
    assert len({len(row) for row in out[0].splitlines()[1:-1]}) == 1


# ----- PyTorch parity ---------------------------------------------------------------------------
def _torch_twin(model):
    """The PyTorch network with the same weights (modules of the same names)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def convert(layer):
        if isinstance(layer, Dense):
            lin = nn.Linear(layer.n_in, layer.n_out, bias=layer.use_bias, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.T.copy()))
                if layer.use_bias:
                    lin.bias.copy_(torch.from_numpy(layer.b.copy()))
            act = {"identity": nn.Identity(), "relu": nn.ReLU(), "tanh": nn.Tanh()}[layer.activation]
            return nn.Sequential(lin, act)
        if isinstance(layer, Activation):
            return nn.ELU(alpha=layer.activation_options["alpha"])
        if isinstance(layer, Dropout):
            return nn.Identity()  # compared with p = 0 below
        if isinstance(layer, (LayerNorm, BatchNorm1d)):
            if isinstance(layer, LayerNorm):
                mod = nn.LayerNorm(layer.n_out, eps=layer.eps, elementwise_affine=layer.affine, dtype=torch.float64)
            else:
                mod = nn.BatchNorm1d(layer.n_out, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                                     track_running_stats=layer.track_running_stats, dtype=torch.float64)
                if layer.track_running_stats:
                    mod.running_mean.copy_(torch.from_numpy(layer.running_mean.copy()))
                    mod.running_var.copy_(torch.from_numpy(layer.running_var.copy()))
            if layer.affine:
                with torch.no_grad():
                    mod.weight.copy_(torch.from_numpy(layer.weight.copy()))
                    mod.bias.copy_(torch.from_numpy(layer.bias.copy()))
            return mod
        block = nn.Sequential(*[convert(inner) for inner in layer.layers])

        class Skip(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = block

            def forward(self, x):
                return x + self.block(x)
        return Skip()
    return torch, nn.Sequential(*[convert(layer) for layer in model.layers])


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("kinds", [dict(p=0.0), dict(p=0.0, affine=False, track=False)], ids=["affine", "plain"])
def test_equals_pytorch(mode, kinds):
    X, y = _data(n=16)
    model = _model(_every_kind(**kinds))
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    torch, net = _torch_twin(model)
    getattr(model, mode)()
    getattr(net, mode)()
    loss, grad = model.loss_and_grad(X, y)
    xt = torch.from_numpy(X)
    out = net(xt)
    ref = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    ref.backward()
    np.testing.assert_allclose(model.forward(X), out.detach().numpy(), rtol=1e-11, atol=1e-12)
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    # the flat gradient, in fastgrad's order (W row-major = torch's weight transposed)
    flat = []
    for layer in [leaf for top in model.layers for leaf in top._leaves()]:
        if isinstance(layer, Dense):
            flat += [layer.grad_W.ravel()] + ([layer.grad_b] if layer.use_bias else [])
        elif isinstance(layer, (LayerNorm, BatchNorm1d)) and layer.affine:
            flat += [layer.grad_weight, layer.grad_bias]
    torch_flat = []
    for p in net.parameters():
        g = p.grad.numpy()
        torch_flat.append(g.T.ravel() if g.ndim == 2 else g)
    np.testing.assert_allclose(np.concatenate(flat), np.concatenate(torch_flat), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, np.concatenate(torch_flat), rtol=1e-10, atol=1e-12)


def test_batch_norm_training_steps_equal_pytorch():
    """Three SGD steps: parameters and running statistics as torch.nn.BatchNorm1d's."""
    X, y = _data(n=24)
    layers = [Dense(10, 6, "relu"), BatchNorm1d(6, momentum=0.2), Dense(3)]
    model = Sequential(layers, loss="softmax_cross_entropy", optimizer=SGD(lr=0.1), dtype="float64", seed=0)
    torch, net = _torch_twin(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for lo in (0, 8, 16):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(X[lo:lo + 8])), torch.from_numpy(y[lo:lo + 8])).backward()
        opt.step()
    model.fit(X, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    bn = net[1]
    np.testing.assert_allclose(layers[1].running_mean, bn.running_mean.numpy(), rtol=1e-11)
    np.testing.assert_allclose(layers[1].running_var, bn.running_var.numpy(), rtol=1e-11)
    np.testing.assert_allclose(layers[2].W, net[2][0].weight.detach().numpy().T, rtol=1e-10, atol=1e-13)
    net.eval()
    np.testing.assert_allclose(model.forward(X), net(torch.from_numpy(X)).detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,options", ACTIVATION_CASES, ids=[case_id(c) for c in ACTIVATION_CASES])
def test_every_activation_as_a_layer(name, options):
    """Activation(name) between two Dense layers: compiled == reference, gradient == finite differences,
    and the same as Dense(..., activation=name)."""
    X, y = _data(n=10, n_in=4)
    models = [Sequential([Dense(4, 5), Activation(name, **options), Dense(3)], loss="softmax_cross_entropy",
                         dtype="float64", seed=1, backend=backend) for backend in ("compiled", "reference")]
    fused = Sequential([Dense(4, 5, name, **options), Dense(3)], loss="softmax_cross_entropy", dtype="float64",
                       seed=1)
    fused.params = models[0].params.copy()
    models[1].params = models[0].params.copy()
    (loss, grad), (loss_ref, grad_ref) = (m.loss_and_grad(X, y) for m in models)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-13)
    fused_loss, fused_grad = fused.loss_and_grad(X, y)
    assert loss == pytest.approx(fused_loss, rel=1e-13)
    np.testing.assert_allclose(grad, fused_grad, rtol=1e-12, atol=1e-14)
    f, p0 = loss_of_params(models[0], X, y)
    fd = diff.gradient(f, p0)
    assert np.max(np.abs(fd - grad)) <= 1e-6 * max(1.0, np.max(np.abs(grad)))


def test_get_and_set_weights():
    model = _model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(10, 12), (12,), (12,), (12,), (12,), (12,), (12, 12), (12,),
                                          (12,), (12,), (12, 12), (12,), (12,), (12, 3), (3,)]
    assert sum(w.size for w in weights) == model.n_params + model.state.size
    weights[0][...] = 7.0
    assert not np.any(model.layers[0].W == 7.0)  # copies out
    model.set_weights(weights)
    np.testing.assert_array_equal(model.layers[0].W, 7.0)  # copies in
    before = model.params.copy()
    bad = list(weights)
    bad[3] = np.zeros(5)
    with pytest.raises(ValueError, match=r"weights\[3\] must have shape \(12,\)"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match="list of 15 arrays"):
        model.set_weights(weights[:-1])
    np.testing.assert_array_equal(model.params, before)


def test_any_seed_saves_and_loads(tmp_path):
    for seed in (2 ** 62 - 1, 2 ** 63 - 1):
        model = Sequential([Dense(4, 4), Dropout(0.5)], loss="mse", seed=seed)
        model.save(tmp_path / "s.npz")
        assert Sequential.load(tmp_path / "s.npz").dropout_seed == model.dropout_seed


def test_early_stopping_restores_running_statistics():
    from fastgrad.callbacks import EarlyStopping
    X, y = _data(n=48)
    model = _model([Dense(10, 8, "relu"), BatchNorm1d(8), Dense(3)], optimizer=Adam(lr=0.2))
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    history = model.fit(X[:32], y[:32], epochs=20, batch_size=8, validation_data=(X[32:], y[32:]),
                        callbacks=[stop], verbose=0)
    assert model.evaluate(X[32:], y[32:])["loss"] == pytest.approx(min(history.history["val_loss"]), rel=1e-12)
    np.testing.assert_array_equal(model.params, stop.best_params)
    np.testing.assert_array_equal(model.state, stop.best_state)


def test_options_tunable_after_build_take_effect_and_are_checked(tmp_path):
    """Dropout.p, LayerNorm.eps and BatchNorm1d's eps and momentum may change on a built model,
    as in PyTorch: the next batch uses the new value, the file saves it; bad values are refused."""
    X = np.random.default_rng(1).standard_normal((6, 5))
    model = Sequential([Dropout(0.0)], loss="mse", n_in=5, dtype="float64", seed=0).train()
    np.testing.assert_array_equal(model.forward(X), X)
    model.layers[0].p = 1.0
    np.testing.assert_array_equal(model.forward(X), np.zeros_like(X))
    with pytest.raises(ValueError, match="p"):
        model.layers[0].p = 1.5
    assert model.layers[0].p == 1.0

    norm = Sequential([LayerNorm(5, elementwise_affine=False)], loss="mse", dtype="float64")
    norm.layers[0].eps = 10.0
    expected = (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + 10.0)
    np.testing.assert_allclose(norm.predict(X), expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="eps"):
        norm.layers[0].eps = 0.0

    bn_model = Sequential([BatchNorm1d(5), Dense(5, 1)], loss="mse", dtype="float64", optimizer=SGD(lr=0.1))
    bn = bn_model.layers[0]
    bn.momentum = 1.0
    bn_model.train_step(X, np.zeros(6))
    np.testing.assert_allclose(bn.running_mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, X.var(0, ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        bn.momentum = -0.1
    bn_model.save(tmp_path / "bn.npz")
    assert Sequential.load(tmp_path / "bn.npz").layers[0].momentum == 1.0


@pytest.mark.parametrize("layer, name, value", [
    (Dense(3, 4), "activation", "tanh"), (Dense(3, 4), "n_out", 5), (Dense(3, 4), "use_bias", False),
    (Activation("relu"), "activation", "tanh"), (BatchNorm1d(3), "track_running_stats", False),
    (LayerNorm(3), "affine", False), (LayerNorm(3), "elementwise_affine", False), (Residual([Dense(3, 3)]), "layers", [])])
def test_build_options_are_fixed_once_in_a_model(layer, name, value):
    """What the program and buffers were built from cannot change afterwards (AttributeError
    naming it); before the layer is in a model it can."""
    before = getattr(layer, name)
    Sequential([layer], loss="mse", n_in=3, dtype="float64")
    with pytest.raises(AttributeError, match=name):
        setattr(layer, name, value)
    assert getattr(layer, name) == before
    if name != "elementwise_affine":   # PyTorch's read-only alias of affine
        fresh = type(layer).__new__(type(layer))
        fresh.__dict__.update({k: v for k, v in layer.__dict__.items() if k != "_model"}, _model=None)
        setattr(fresh, name, value)
        assert getattr(fresh, name) == value


def test_activation_options_are_a_copy(tmp_path):
    """Editing the returned dict changes neither the model nor what save writes."""
    X = np.random.default_rng(0).standard_normal((4, 3))
    dense = Dense(3, 2, "leaky_relu", alpha=0.1)
    model = Sequential([dense], loss="mse", dtype="float64", seed=0)
    before = model.predict(X)
    dense.activation_options["alpha"] = 0.9
    assert dense.activation_options == {"alpha": 0.1} and "alpha=0.1" in repr(dense)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(Sequential.load(tmp_path / "m.npz").predict(X), before)


def test_a_one_row_validation_set_is_refused_before_training():
    X, y = _data()
    model = _model([Dense(10, 4), BatchNorm1d(4, track_running_stats=False), Dense(3)])
    before = model.params.copy()
    with pytest.raises(ValueError, match="validation_data got X of 1 row"):
        model.fit(X, y, epochs=1, batch_size=8, validation_data=(X[:1], y[:1]), verbose=0)
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.step_count == 0


def test_batch_statistics_in_evaluation_use_all_rows_at_once():
    """BatchNorm1d(track_running_stats=False) normalizes with its input's statistics in
    evaluation too: predict/evaluate take X whole (not in chunks of batch_size), as module(X)
    in PyTorch, and refuse a single row."""
    X = np.random.default_rng(2).standard_normal((9, 4)) * 2 + 1
    model = Sequential([BatchNorm1d(4, affine=False, track_running_stats=False)], loss="mse", dtype="float64")
    expected = (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-5)
    for batch_size in (1, 2, 4, 1024):
        np.testing.assert_allclose(model.predict(X, batch_size=batch_size), expected, rtol=1e-12, atol=1e-14)
        loss = model.evaluate(X, np.zeros_like(X), batch_size=batch_size)["loss"]
        assert loss == pytest.approx(np.mean(expected ** 2), rel=1e-12)
    with pytest.raises(ValueError, match="1 row"):
        model.predict(X[:1])

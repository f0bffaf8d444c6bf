"""Learning-rate schedules stepped per optimizer step in fit (issue 13): the rates go to the
compiled epoch as one array; OneCycleLR as PyTorch's (rates and momentum, when torch is
installed); a fit with a per-step schedule equals train_step at the schedule's rates."""
from __future__ import annotations

import numpy as np
import pytest

from fastgrad import Dense, Sequential
from fastgrad.optim import SGD, Adagrad, Adam, CosineAnnealingLR, LinearWarmupCosine, OneCycleLR, StepLR


def _model(optimizer, seed=0):
    return Sequential([Dense(5, 8, "tanh"), Dense(8, 3)], loss="softmax_cross_entropy", optimizer=optimizer,
                      dtype="float64", seed=seed)


def _data(n=50):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def _replay(model, X, y, schedule, epochs, batch_size):
    """What fit with a per-step schedule must do: train_step per batch at lr_at(t), momentum_at(t)."""
    t = 0
    for _ in range(epochs):
        perm = model.rng.permutation(len(X))
        for lo in range(0, len(X), batch_size):
            schedule._set_momentum(t)
            model.optimizer.lr = schedule.lr_at(t)
            idx = perm[lo:lo + batch_size]
            model.train_step(X[idx], y[idx])
            t += 1
        model.epochs_done += 1


@pytest.mark.parametrize("make", [
    lambda opt: LinearWarmupCosine(opt, warmup_steps=5, total_steps=30, interval="step"),
    lambda opt: CosineAnnealingLR(opt, T_max=12, interval="step"),
    lambda opt: StepLR(opt, step_size=4, gamma=0.5, interval="step"),
    lambda opt: OneCycleLR(opt, max_lr=0.05, total_steps=21),
])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_with_a_per_step_schedule_equals_train_step_at_its_rates(make, optimizer):
    X, y = _data()
    opt_a = Adam(lr=0.01) if optimizer == "adam" else SGD(lr=0.01, momentum=0.9)
    opt_b = Adam(lr=0.01) if optimizer == "adam" else SGD(lr=0.01, momentum=0.9)
    fitted, replayed = _model(opt_a), _model(opt_b)
    schedule = make(fitted.optimizer)
    fitted.fit(X, y, epochs=3, batch_size=8, callbacks=[schedule], verbose=0)   # 7 batches per epoch
    _replay(replayed, X, y, make(replayed.optimizer), epochs=3, batch_size=8)
    np.testing.assert_array_equal(fitted.params, replayed.params)
    assert schedule.last_epoch == 21 and fitted.optimizer.lr == schedule.lr_at(21)


def test_epoch_interval_is_unchanged_and_one_per_step_schedule_only():
    X, y = _data()
    model = _model(Adam(lr=0.1))
    schedule = StepLR(model.optimizer, step_size=1, gamma=0.5)
    history = model.fit(X, y, epochs=3, batch_size=10, callbacks=[schedule], verbose=0)
    assert history.history["lr"] == [0.1, 0.05, 0.025] and schedule.last_epoch == 3
    two = [StepLR(model.optimizer, 1, interval="step"), CosineAnnealingLR(model.optimizer, 5, interval="step")]
    with pytest.raises(ValueError, match="at most one schedule"):
        model.fit(X, y, epochs=1, callbacks=two, verbose=0)
    with pytest.raises(ValueError, match="interval"):
        StepLR(model.optimizer, 1, interval="batch")
    mixed = [StepLR(model.optimizer, 1), CosineAnnealingLR(model.optimizer, 5, interval="step")]
    with pytest.raises(ValueError, match="StepLR would set it too"):
        model.fit(X, y, epochs=1, callbacks=mixed, verbose=0)


def test_one_cycle_refuses_to_run_past_its_total_steps_before_training():
    X, y = _data()
    model = _model(Adam(lr=0.01))
    schedule = OneCycleLR(model.optimizer, max_lr=0.1, total_steps=10)
    model.fit(X, y, epochs=1, batch_size=8, callbacks=[schedule], verbose=0)      # steps 0-6
    before = model.params.copy()
    with pytest.raises(ValueError, match="epoch 2 has 7 batches, steps 7 to 13.*total_steps is 10"):
        model.fit(X, y, epochs=1, batch_size=8, callbacks=[schedule], verbose=0)  # would need 7-13
    np.testing.assert_array_equal(model.params, before)
    assert schedule.last_epoch == 7
    with pytest.raises(ValueError, match="momentum"):
        OneCycleLR(Adagrad(), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="momentum > 0"):
        OneCycleLR(SGD(lr=0.1), max_lr=0.1, total_steps=10)
    OneCycleLR(SGD(lr=0.1), max_lr=0.1, total_steps=10, cycle_momentum=False)
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(Adam(), max_lr=0.1)
    with pytest.raises(ValueError, match="pct_start"):
        OneCycleLR(Adam(), max_lr=0.1, total_steps=10, pct_start=0.0)
    with pytest.raises(TypeError, match="cycle_momentum"):
        OneCycleLR(Adam(), max_lr=0.1, total_steps=10, cycle_momentum="no")


@pytest.mark.parametrize("kw", [{}, {"three_phase": True}, {"anneal_strategy": "linear", "pct_start": 0.25},
                                {"cycle_momentum": False, "div_factor": 10.0, "final_div_factor": 100.0}])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_one_cycle_equals_pytorch(kw, optimizer):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "adam":
        t_opt, f_opt = torch.optim.Adam([param], lr=1e-3), Adam(lr=1e-3)
    else:
        t_opt, f_opt = torch.optim.SGD([param], lr=1e-3, momentum=0.9), SGD(lr=1e-3, momentum=0.9)
    t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=0.1, epochs=4, steps_per_epoch=10, **kw)
    f_sched = OneCycleLR(f_opt, max_lr=0.1, epochs=4, steps_per_epoch=10, **kw)
    for _ in range(40):
        group = t_opt.param_groups[0]
        assert f_opt.lr == pytest.approx(group["lr"], rel=1e-14, abs=1e-18)
        t_mom = group["betas"][0] if optimizer == "adam" else group["momentum"]
        f_mom = f_opt.betas[0] if optimizer == "adam" else f_opt.momentum
        assert f_mom == pytest.approx(t_mom, rel=1e-14)
        t_opt.step()
        t_sched.step()
        f_sched.step()

"""Optional: trajectories against torch.optim and torch's schedulers, step for step (float64)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_optim import CASES, _problem, case_id  # noqa: E402
from fastgrad.optim import SGD  # noqa: E402
from fastgrad.schedules import (CosineAnnealingLR, ExponentialLR, LinearWarmupCosine,  # noqa: E402
                                ReduceLROnPlateau, StepLR)

TORCH_OPTIM = {"SGD": torch.optim.SGD, "RMSprop": torch.optim.RMSprop, "Adagrad": torch.optim.Adagrad,
               "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_100_steps_match_torch(case):
    cls, kw = case
    params, grads = _problem(64, np.float64)
    p_torch = torch.tensor(params.copy(), dtype=torch.float64, requires_grad=True)
    topt = TORCH_OPTIM[cls.__name__]([p_torch], **kw, foreach=False)
    opt = cls(**kw)
    for g in grads:
        opt.step(params, g)
        p_torch.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(params, p_torch.detach().numpy(), rtol=1e-12, atol=1e-12)
    torch_state = topt.state[p_torch]
    for name, row in zip(opt.slot_names, opt.state[0]):
        np.testing.assert_allclose(row, torch_state[name].numpy(), rtol=1e-11, atol=1e-13)


def _torch_opt(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


@pytest.mark.parametrize("ours, theirs", [
    (lambda o: StepLR(o, 4, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 4, gamma=0.5)),
    (lambda o: ExponentialLR(o, 0.93), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.93)),
    (lambda o: CosineAnnealingLR(o, 15, eta_min=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 15, eta_min=0.01)),
    (lambda o: LinearWarmupCosine(o, 5, 25, min_lr=0.01),
     lambda o: torch.optim.lr_scheduler.LambdaLR(
         o, lambda t: (t / 5 if t < 5 else (0.01 + 0.99 * (1 + math.cos(math.pi * (t - 5) / 20)) / 2
                                            if t <= 25 else 0.01)))),
])
def test_schedules_match_torch(ours, theirs):
    opt, topt = SGD(lr=1.0), _torch_opt(1.0)
    s, ts = ours(opt), theirs(topt)
    for _ in range(40):
        assert s.get_last_lr()[0] == pytest.approx(ts.get_last_lr()[0], rel=1e-12, abs=1e-15)
        opt.step(np.zeros(1), np.zeros(1))
        topt.step()
        s.step()
        ts.step()


@pytest.mark.parametrize("kw", [
    dict(factor=0.5, patience=2, cooldown=1), dict(mode="max", threshold_mode="abs", threshold=0.05, patience=0),
    dict(factor=0.3, patience=1, min_lr=0.05, threshold=0.01), dict(mode="max", patience=3, cooldown=2, eps=0.2),
])
def test_plateau_matches_torch(kw):
    metrics = np.random.default_rng(5).standard_normal(60).cumsum() * 0.1 + 5.0
    opt, topt = SGD(lr=1.0), _torch_opt(1.0)
    s, ts = ReduceLROnPlateau(opt, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for m in metrics:
        s.step(m)
        ts.step(m)
        assert s.get_last_lr()[0] == ts.get_last_lr()[0]
        assert (s.num_bad_epochs, s.cooldown_counter, s.best) == (ts.num_bad_epochs, ts.cooldown_counter, ts.best)

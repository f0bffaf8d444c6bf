"""Learning-rate schedules against their closed forms and PyTorch's documented behaviour."""
import math

import pytest

from fastgrad.optim import SGD
from fastgrad.schedules import CosineAnnealingLR, ExponentialLR, LinearWarmupCosine, ReduceLROnPlateau, StepLR


def _run(sched, steps):
    """lr after construction, then after each of ``steps`` steps."""
    lrs = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def test_step_lr():
    lrs = _run(StepLR(SGD(lr=0.5), step_size=3, gamma=0.1), 10)
    assert lrs == pytest.approx([0.5 * 0.1 ** (t // 3) for t in range(11)], rel=1e-15)


def test_exponential_lr():
    opt = SGD(lr=0.2)
    lrs = _run(ExponentialLR(opt, gamma=0.9), 20)
    assert lrs == pytest.approx([0.2 * 0.9 ** t for t in range(21)], rel=1e-14)
    assert opt.lr == lrs[-1]


def test_cosine_annealing_lr():
    lrs = _run(CosineAnnealingLR(SGD(lr=1.0), T_max=10, eta_min=0.1), 25)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(26)]
    assert lrs == pytest.approx(expected, abs=1e-15)
    assert lrs[10] == pytest.approx(0.1) and lrs[20] == pytest.approx(1.0)  # periodic as in PyTorch


def test_linear_warmup_cosine():
    sched = LinearWarmupCosine(SGD(lr=1.0), warmup_steps=4, total_steps=12, min_lr=0.2)
    lrs = _run(sched, 15)
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert lrs[8] == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi * 4 / 8)) / 2)
    assert lrs[12] == pytest.approx(0.2) and lrs[13:] == [0.2, 0.2, 0.2]
    assert [sched.lr_at(t) for t in range(16)] == lrs


def test_plateau_min_rel_with_patience_and_cooldown():
    opt = SGD(lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1)
    metrics = [10, 9, 9, 9, 9, 9, 9, 9, 9, 8.9999, 8.99]
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.lr)
    # bad steps: epochs 3, 4, 5 -> reduce at the third (num_bad > patience); cooldown 1 eats epoch 6;
    # epochs 7, 8, 9 bad again (8.9999 is not below 9 * (1 - 1e-4)) -> reduce at 9; 8.99 improves.
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert sched.get_last_lr() == [0.25] and sched.best == 8.99


def test_plateau_max_abs_and_min_lr_and_eps():
    opt = SGD(lr=1e-2)
    sched = ReduceLROnPlateau(opt, mode="max", threshold=0.5, threshold_mode="abs", patience=0, min_lr=4e-3)
    for m in (1.0, 1.4, 2.0, 2.1):  # 1.4 and 2.1 are not > best + 0.5
        sched.step(m)
    assert opt.lr == pytest.approx(1e-4 * 40)  # 1e-2 -> 1e-3 clipped to min_lr 4e-3
    tiny = SGD(lr=1e-8)
    sched = ReduceLROnPlateau(tiny, patience=0)
    sched.step(1.0)
    sched.step(2.0)
    assert tiny.lr == 1e-8  # a change of 9e-9 is below eps = 1e-8: lr kept


def test_schedule_state_dict_round_trip():
    a = CosineAnnealingLR(SGD(lr=1.0), T_max=7)
    _run(a, 3)
    b = CosineAnnealingLR(SGD(lr=1.0), T_max=7)
    b.load_state_dict(a.state_dict())
    assert _run(a, 4) == _run(b, 4)


@pytest.mark.parametrize("make, name", [
    (lambda o: StepLR(o, 0), "step_size"), (lambda o: ExponentialLR(o, 0.0), "gamma"),
    (lambda o: CosineAnnealingLR(o, 0), "T_max"), (lambda o: LinearWarmupCosine(o, 5, 5), "total_steps"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), "factor"), (lambda o: ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
])
def test_bad_arguments(make, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        make(SGD())


def test_plateau_rel_threshold_uses_magnitude_of_negative_best():
    """Issue 9.8: a constant negative metric is a plateau (PyTorch never reduces here)."""
    opt = SGD(lr=0.1)
    sched = ReduceLROnPlateau(opt, mode="min", patience=2)
    for _ in range(8):
        sched.step(-1.0)
    assert opt.lr == pytest.approx(1e-3)  # reduced after the 4th and the 7th step
    opt = SGD(lr=0.1)
    sched = ReduceLROnPlateau(opt, mode="max", patience=2)
    for _ in range(8):
        sched.step(-1.0)
    assert opt.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("mode,metrics", [("min", [-1.0, -1.5, -2.0, -2.5, -3.0, -3.5]),
                                          ("max", [-3.0, -2.5, -2.0, -1.5, -1.0, -0.5]),
                                          ("min", [-1.0, -1.00001, -1.00002, -1.00003, -1.00004])])
def test_plateau_rel_threshold_negative_metrics_improving_or_within_threshold(mode, metrics):
    """Steps larger than |best| threshold improve; steps inside it (the last case) do not."""
    opt = SGD(lr=0.1)
    sched = ReduceLROnPlateau(opt, mode=mode, patience=2, threshold=1e-4)
    for m in metrics:
        sched.step(m)
    within = abs(metrics[1] - metrics[0]) < 1e-4 * abs(metrics[0])
    assert opt.lr == pytest.approx(0.01 if within else 0.1)


def test_plateau_positive_metrics_match_torch():
    torch = pytest.importorskip("torch")
    metrics = [5.0, 4.0, 4.0, 3.9999, 4.1, 4.2, 3.0, 3.0, 3.0, 3.0, 2.99999]
    for mode in ("min", "max"):
        for threshold_mode in ("rel", "abs"):
            opt = SGD(lr=0.1)
            ours = ReduceLROnPlateau(opt, mode=mode, patience=1, threshold_mode=threshold_mode)
            p = torch.nn.Parameter(torch.zeros(1))
            topt = torch.optim.SGD([p], lr=0.1)
            theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, mode=mode, patience=1,
                                                                threshold_mode=threshold_mode)
            for m in metrics:
                ours.step(m)
                theirs.step(m)
                assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)

"""LR schedule: the authors' exact values, and setting an optimiser's rate."""

from __future__ import annotations

import pytest
import torch

from xami.train.schedule import ScheduleConfig, lr_at, set_lr


def test_lr_at_matches_the_authors_lambda_lr() -> None:
    # authors: lr = 3e-4 * (1 - 0.05 t) for t < 16, then 3e-4 * 0.2
    for t in range(16):
        assert lr_at(t) == pytest.approx(3e-4 * (1 - 0.05 * t), rel=1e-12)
    assert lr_at(0) == 3e-4
    assert lr_at(1) == pytest.approx(2.85e-4, rel=1e-12)
    assert lr_at(15) == pytest.approx(7.5e-5, rel=1e-12)
    assert [lr_at(t) for t in (16, 17, 100, 10**6)] == [6e-5] * 4


def test_schedule_config_and_constant_schedule() -> None:
    assert ScheduleConfig().lr(1) == lr_at(1)
    combined = ScheduleConfig(lr0=3e-5, lr_final=3e-5, decay_steps=0)
    assert [combined.lr(t) for t in (0, 5)] == [3e-5, 3e-5]
    assert lr_at(2, lr0=1.0, lr_final=0.0, decay_steps=4) == 0.5


def test_set_lr_updates_every_group() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=3e-4)
    set_lr(opt, lr_at(15))
    assert [g["lr"] for g in opt.param_groups] == [lr_at(15)] * 2


def test_schedule_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        lr_at(-1)
    with pytest.raises(ValueError, match="decay_steps must be >= 0"):
        ScheduleConfig(decay_steps=-2)
    with pytest.raises(ValueError, match="lr0 must be a finite number"):
        ScheduleConfig(lr0=float("nan"))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -0\.1"):
        set_lr(opt, -0.1)

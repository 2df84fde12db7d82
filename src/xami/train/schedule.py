"""Learning rate as a pure function of the optimiser step, and the one place that applies it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ScheduleConfig:
    """Segmentor learning-rate schedule; the defaults are the paper's recipe.

    Attributes
    ----------
    lr0 : float
        Learning rate at step 0 (paper §3: 3e-4).
    lr_final : float
        Learning rate from ``decay_steps`` on (paper §3: 6e-5).
    decay_steps : int
        Optimiser steps of the linear decay (paper §3: 16; the paper calls it a "warmup", the
        authors' code decays). The combined stage's constant 3e-5 is ``lr0 = lr_final = 3e-5``.
    """

    lr0: float = 3e-4
    lr_final: float = 6e-5
    decay_steps: int = 16

    def __post_init__(self) -> None:
        for name in ("lr0", "lr_final"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.decay_steps < 0:
            raise ValueError(f"decay_steps must be >= 0, got {self.decay_steps!r}")

    def lr(self, step: int) -> float:
        """Learning rate at optimiser step ``step`` under this schedule (see `lr_at`)."""
        return lr_at(step, lr0=self.lr0, lr_final=self.lr_final, decay_steps=self.decay_steps)


def lr_at(step: int, *, lr0: float = ScheduleConfig.lr0, lr_final: float = ScheduleConfig.lr_final,
          decay_steps: int = ScheduleConfig.decay_steps) -> float:
    """Learning rate at optimiser step ``step``: linear from ``lr0`` to ``lr_final``, then constant.

    ``lr0 + (lr_final - lr0) * step / decay_steps`` for ``step < decay_steps``, ``lr_final`` from
    ``decay_steps`` on. With the defaults: 3.0e-4, 2.85e-4, ..., 7.5e-5 at step 15, then 6e-5,
    exactly the authors' ``LambdaLR`` factor ``1 - 0.05 t`` (then 0.2).

    Parameters
    ----------
    step : int
        Number of optimiser steps already taken (0 for the first step), >= 0.
    lr0, lr_final : float, optional
        Learning rates at step 0 and from ``decay_steps`` on.
    decay_steps : int, optional
        Length of the linear part, >= 0 (0 means ``lr_final`` throughout).

    Returns
    -------
    float
        The learning rate.

    Raises
    ------
    ValueError
        If ``step`` or ``decay_steps`` is negative.

    Examples
    --------
    >>> lr_at(0), lr_at(16), lr_at(1000)
    (0.0003, 6e-05, 6e-05)
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    if decay_steps < 0:
        raise ValueError(f"decay_steps must be >= 0, got {decay_steps!r}")
    if step >= decay_steps:
        return lr_final
    return lr0 + (lr_final - lr0) * step / decay_steps


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optimizer``.

    Call it before each ``optimizer.step()`` with ``lr_at(step)``; no scheduler object holds state,
    so a resumed run only needs the step count.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimiser to update in place.
    lr : float
        The new learning rate, finite and >= 0.

    Raises
    ------
    ValueError
        If ``lr`` is negative or not finite.
    """
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    for group in optimizer.param_groups:
        group["lr"] = lr

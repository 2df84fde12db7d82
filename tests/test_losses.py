"""Segmentor losses against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from xami.train.losses import (
    LossConfig,
    dice_loss,
    focal_loss,
    iou_head_loss,
    segmentor_loss,
    soft_iou,
)

LN2, LN3 = math.log(2.0), math.log(3.0)


def _one_by_two() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (0, ln 3) -> p = (1/2, 3/4); targets (1, 0)."""
    return torch.tensor([[[0.0, LN3]]], dtype=torch.float64), torch.tensor([[[1.0, 0.0]]],
                                                                           dtype=torch.float64)


def _two_by_two_by_two() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 2x2 masks: p = (1/2, 3/4, 3/4, 1/2) and (3/4, 3/4, 1/4, 1/2); targets (1, 0, 0, 1)."""
    logits = torch.tensor([[[0.0, LN3], [LN3, 0.0]], [[LN3, LN3], [-LN3, 0.0]]],
                          dtype=torch.float64)
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]] * 2, dtype=torch.float64)
    return logits, targets


def test_focal_loss_hand_values_one_by_two() -> None:
    logits, targets = _one_by_two()
    # pixel 1: t=1, p_t=1/2, BCE=ln 2, 0.7 * (1/2)^2 * ln 2 = 0.175 ln 2
    # pixel 2: t=0, p_t=1/4, BCE=ln 4, 0.3 * (3/4)^2 * 2 ln 2 = 0.3375 ln 2
    expected = (0.175 + 0.3375) * LN2 / 2
    assert focal_loss(logits, targets).tolist() == pytest.approx([expected], rel=1e-12)


def test_focal_loss_hand_values_two_masks() -> None:
    logits, targets = _two_by_two_by_two()
    mask0 = 2 * (0.175 + 0.3375) * LN2 / 4
    # mask 1: (t=1, p=3/4): 0.7 (1/4)^2 ln(4/3); (t=0, p=3/4): 0.3 (3/4)^2 ln 4;
    #         (t=0, p=1/4): 0.3 (1/4)^2 ln(4/3); (t=1, p=1/2): 0.7 (1/2)^2 ln 2
    ln43 = math.log(4 / 3)
    mask1 = (0.04375 * ln43 + 0.16875 * 2 * LN2 + 0.01875 * ln43 + 0.175 * LN2) / 4
    assert focal_loss(logits, targets).tolist() == pytest.approx([mask0, mask1], rel=1e-12)


def test_focal_loss_gamma0_alpha_half_is_half_bce(rng) -> None:
    logits = torch.from_numpy(rng.normal(size=(3, 4, 5)))
    targets = torch.from_numpy((rng.random((3, 4, 5)) > 0.5).astype(float))
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(1, 2))
    got = focal_loss(logits, targets, alpha=0.5, gamma=0.0)
    torch.testing.assert_close(got, 0.5 * bce, rtol=1e-12, atol=0)


def test_focal_loss_alpha_weights_positives_and_gamma_focuses() -> None:
    pos = focal_loss(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), alpha=0.7, gamma=0.0)
    neg = focal_loss(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), alpha=0.7, gamma=0.0)
    assert float(pos / neg) == pytest.approx(0.7 / 0.3)
    easy = torch.full((1, 1, 1), 3.0)  # confident and right: gamma shrinks it by (1 - p)^2
    ratio = focal_loss(easy, torch.ones(1, 1, 1)) / focal_loss(easy, torch.ones(1, 1, 1), gamma=0)
    assert float(ratio) == pytest.approx((1 - torch.sigmoid(easy)).item() ** 2)


def test_dice_loss_hand_values() -> None:
    logits, targets = _one_by_two()
    # s = (1/2, 3/4): 1 - (2 * 1/2 + 1) / (5/4 + 1 + 1) = 1 - 8/13
    assert dice_loss(logits, targets).tolist() == pytest.approx([5 / 13], rel=1e-12)
    logits, targets = _two_by_two_by_two()
    # mask 0: sum(s g) = 1, sum s = 5/2, sum g = 2: 1 - 3 / 5.5 = 5/11
    # mask 1: sum(s g) = 5/4, sum s = 9/4: 1 - 3.5 / 5.25 = 1/3
    assert dice_loss(logits, targets).tolist() == pytest.approx([5 / 11, 1 / 3], rel=1e-12)
    # eps = 1e-6 (the authors'): mask 0 gives 1 - (2 + 1e-6) / (4.5 + 1e-6)
    assert float(dice_loss(logits, targets, eps=1e-6)[0]) == pytest.approx(1 - 2 / 4.5, rel=1e-6)


def test_soft_iou_and_iou_head_loss_hand_values() -> None:
    logits, targets = _two_by_two_by_two()
    # mask 0: 1 / (5/2 + 2 - 1) = 2/7;  mask 1: (5/4) / (9/4 + 2 - 5/4) = 5/12
    assert soft_iou(logits, targets).tolist() == pytest.approx([2 / 7, 5 / 12], rel=1e-12)
    pred = torch.tensor([0.5, 0.5], dtype=torch.float64)
    mse = iou_head_loss(pred, logits, targets)
    assert mse.tolist() == pytest.approx([(3 / 14) ** 2, (1 / 12) ** 2], rel=1e-12)
    l1 = iou_head_loss(pred, logits, targets, kind="l1")
    assert l1.tolist() == pytest.approx([3 / 14, 1 / 12], rel=1e-12)


def test_iou_head_target_is_detached() -> None:
    logits, targets = _two_by_two_by_two()
    logits.requires_grad_(True)
    pred = torch.tensor([0.5, 0.5], dtype=torch.float64, requires_grad=True)
    loss = iou_head_loss(pred, logits, targets).sum()
    grad_logits, grad_pred = torch.autograd.grad(loss, (logits, pred), allow_unused=True)
    assert grad_logits is None  # no path from the IoU loss to the mask
    assert grad_pred.tolist() == pytest.approx([2 * (0.5 - 2 / 7), 2 * (0.5 - 5 / 12)])


def test_segmentor_loss_is_weighted_sum_of_means_over_masks() -> None:
    logits, targets = _two_by_two_by_two()
    pred = torch.tensor([0.5, 0.5], dtype=torch.float64)
    terms = segmentor_loss(logits, pred, targets)
    focal = focal_loss(logits, targets).mean()
    dice = (5 / 11 + 1 / 3) / 2
    iou = ((3 / 14) ** 2 + (1 / 12) ** 2) / 2
    assert float(terms.focal) == pytest.approx(float(focal), rel=1e-12)
    assert float(terms.dice) == pytest.approx(dice, rel=1e-12)
    assert float(terms.iou) == pytest.approx(iou, rel=1e-12)
    assert float(terms.total) == pytest.approx(20 * float(focal) + dice + iou, rel=1e-12)
    l1 = segmentor_loss(logits, pred, targets,
                        config=LossConfig(focal_weight=0, dice_weight=0, iou_kind="l1"))
    assert float(l1.total) == pytest.approx((3 / 14 + 1 / 12) / 2, rel=1e-12)
    assert set(terms.as_floats()) == {"total", "focal", "dice", "iou"}


def test_segmentor_loss_with_no_masks_backpropagates_zeros() -> None:
    logits = torch.zeros(0, 4, 4, requires_grad=True)
    pred = torch.zeros(0, requires_grad=True)
    terms = segmentor_loss(logits, pred, torch.zeros(0, 4, 4))
    assert list(terms.as_floats().values()) == [0.0, 0.0, 0.0, 0.0]
    terms.total.backward()
    assert logits.grad is not None and logits.grad.shape == (0, 4, 4)


def test_segmentor_loss_gradient_reaches_logits_and_iou_pred() -> None:
    logits, targets = _two_by_two_by_two()
    logits.requires_grad_(True)
    pred = torch.tensor([0.5, 0.5], dtype=torch.float64, requires_grad=True)
    segmentor_loss(logits, pred, targets).total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert pred.grad.abs().sum() > 0


def test_loss_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="iou_kind must be one of"):
        LossConfig(iou_kind="huber")
    with pytest.raises(ValueError, match="alpha must be in"):
        LossConfig(alpha=1.5)
    with pytest.raises(ValueError, match="iou_kind must be one of"):
        iou_head_loss(torch.zeros(1), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), kind="l2")
    with pytest.raises(ValueError, match=r"logits and targets must both be \[N, H, W\]"):
        dice_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"iou_pred must be \[N\]"):
        iou_head_loss(torch.zeros(2), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))

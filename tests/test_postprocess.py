"""Post-processing: the faint rule (Haar low-pass, background band, mask replacement) and the
read-out-streak column fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xami.classes import BY_NAME
from xami.postprocess import (
    FaintRuleConfig,
    StreakFitConfig,
    apply_faint_rule,
    apply_streak_fit,
    background_band,
    faint_fraction,
    fit_streak_mask,
    haar_lowpass,
)
from xami.sim import simulate_image
from xami.sim.config import ArtefactConfig
from xami.structures import Instances, masks_to_boxes

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SL, OT, ROS, SR = (BY_NAME[n].coco_id for n in ("star-loop", "other", "read-out-streak",
                                                  "smoke-ring"))


def _small_window_frame() -> np.ndarray:
    """8x32 frame, 75% uncovered: 4x4 blocks 40, 40, 40 (faint sky) and 80 in columns 0-7."""
    frame = np.zeros((8, 32), np.uint8)
    frame[:, :8] = 40
    frame[4:, 4:8] = 80
    return frame


def _mask(rows: slice, cols: slice, shape: tuple[int, int] = (8, 32)) -> np.ndarray:
    """One boolean mask with a rectangle set."""
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


FAINT = _mask(slice(0, 8), slice(0, 4))  # 32 px of 40
BRIGHT = _mask(slice(4, 8), slice(4, 8))  # 16 px of 80
THREE_QUARTERS = _mask(slice(2, 6), slice(2, 6))  # 12 px of 40, 4 px of 80
DETECTOR_MASK = _mask(slice(0, 2), slice(0, 2))


def test_haar_lowpass_block_means_and_partial_edge_blocks() -> None:
    image = np.zeros((5, 4))
    image[:4] = np.arange(16).reshape(4, 4)  # block mean 7.5
    image[4] = [1, 2, 3, 6]  # a partial block: the mean of its 4 pixels, 3
    expected = np.array([[7.5] * 4] * 4 + [[3.0] * 4])
    np.testing.assert_allclose(haar_lowpass(image), expected, rtol=1e-15)
    # level 1 (2x2 blocks) on a 2x3 image: (0+1+3+4)/4 = 2, then (2+5)/2 = 3.5
    np.testing.assert_allclose(haar_lowpass(np.arange(6.0).reshape(2, 3), levels=1),
                               [[2, 2, 3.5], [2, 2, 3.5]])


def test_background_band_covered_pixels_only_vs_authors_whole_frame() -> None:
    frame = _small_window_frame()
    # ours, covered low-pass values: 3 blocks of 40 and one of 80 (16 px each):
    # level 50, sigma = sqrt((3 * 10^2 + 30^2) / 4) = sqrt(300) = 17.32 -> band [32.7, 67.3]
    level, sigma = background_band(frame)
    assert (level, sigma) == pytest.approx((50.0, math.sqrt(300.0)), rel=1e-12)
    assert faint_fraction(frame, FAINT, level, sigma) == 1.0
    # the authors' statistic over all 256 px (the low-pass of this block frame is the frame):
    # mean = (48 * 40 + 16 * 80) / 256 = 12.5, E[x^2] = (48 * 1600 + 16 * 6400) / 256 = 700,
    # sigma = sqrt(700 - 12.5^2) = sqrt(543.75) = 23.32 -> band [-10.8, 35.8]: 40 is outside
    np.testing.assert_array_equal(haar_lowpass(frame), frame)
    assert (frame.mean(), frame.std()) == pytest.approx((12.5, math.sqrt(543.75)), rel=1e-12)
    assert faint_fraction(frame, FAINT, 12.5, math.sqrt(543.75)) == 0.0


def test_background_band_channels_nan_gaps_and_no_coverage() -> None:
    frame = _small_window_frame()
    rgb = np.stack([frame, np.full_like(frame, 7), np.full_like(frame, 200)], axis=-1)
    assert background_band(rgb) == background_band(frame)  # channel 0 only
    float_image = np.where(frame == 0, np.nan, frame / 255.0)
    level, sigma = background_band(float_image)
    assert (level, sigma) == pytest.approx((50 / 255, math.sqrt(300) / 255), rel=1e-12)
    assert background_band(frame, sigmas=2.0).sigma == pytest.approx(2 * math.sqrt(300))
    assert all(math.isnan(v) for v in background_band(np.zeros((4, 4), np.uint8)))


def test_faint_fraction_hand_values() -> None:
    frame = _small_window_frame()
    assert faint_fraction(frame, BRIGHT, 50.0, math.sqrt(300)) == 0.0
    assert faint_fraction(frame, THREE_QUARTERS, 50.0, math.sqrt(300)) == 0.75
    assert faint_fraction(frame, np.zeros_like(FAINT), 50.0, 20.0) == 0.0  # empty mask
    assert faint_fraction(frame, FAINT, 45.0, 5.0) == 1.0  # band edges are inclusive
    with pytest.raises(ValueError, match=r"mask must be the image's size \(8, 32\)"):
        faint_fraction(frame, np.zeros((8, 8), bool), 50.0, 20.0)


def _pair(labels: list[int]) -> tuple[Instances, Instances]:
    """SAM instances (faint, faint, bright, three-quarter masks) and their detections."""
    sam_masks = np.stack([FAINT, FAINT, BRIGHT, THREE_QUARTERS])
    sam = Instances.from_masks(sam_masks, labels, scores=[0.9, 0.8, 0.7, 0.6])
    detector = Instances.from_masks(np.stack([DETECTOR_MASK] * 4), labels,
                                    scores=[0.5, 0.5, 0.5, 0.5])
    return sam, detector


def test_apply_faint_rule_replaces_only_faint_star_loop_and_other() -> None:
    frame = _small_window_frame()
    sam, detector = _pair([SL, ROS, OT, OT])
    out = apply_faint_rule(frame, sam, detector)
    assert len(out) == len(sam) == 4
    np.testing.assert_array_equal(out.masks[0], DETECTOR_MASK)  # star-loop, fraction 1.0
    np.testing.assert_array_equal(out.boxes[0], detector.boxes[0])
    np.testing.assert_array_equal(out.masks[1:], sam.masks[1:])  # streak; bright; 0.75 not > 0.75
    np.testing.assert_array_equal(out.labels, sam.labels)
    np.testing.assert_array_equal(out.scores, sam.scores)
    np.testing.assert_array_equal(sam.masks[0], FAINT)  # inputs untouched


def test_apply_faint_rule_threshold_and_classes_from_config() -> None:
    frame = _small_window_frame()
    sam, detector = _pair([SL, ROS, OT, OT])
    lower = apply_faint_rule(frame, sam, detector, config=FaintRuleConfig(threshold=0.7))
    replaced = [bool((m == DETECTOR_MASK).all()) for m in lower.masks]
    assert replaced == [True, False, False, True]
    streaks = FaintRuleConfig(classes=("read-out-streak",))
    assert streaks.coco_ids == (ROS,)
    out = apply_faint_rule(frame, sam, detector, config=streaks)
    assert [bool((m == DETECTOR_MASK).all()) for m in out.masks] == [False, True, False, False]


def test_apply_faint_rule_empty_and_uncovered_frames() -> None:
    empty = Instances.empty(8, 32)
    assert len(apply_faint_rule(_small_window_frame(), empty, empty)) == 0
    sam, detector = _pair([SL, SL, SL, SL])
    out = apply_faint_rule(np.zeros((8, 32), np.uint8), sam, detector)  # NaN band: nothing faint
    np.testing.assert_array_equal(out.masks, sam.masks)


def test_faint_rule_errors_name_the_value() -> None:
    frame = _small_window_frame()
    sam, detector = _pair([SL, ROS, OT, OT])
    with pytest.raises(ValueError, match="one instance per detection, got 4 and 3"):
        apply_faint_rule(frame, sam, detector[[0, 1, 2]])
    with pytest.raises(ValueError, match="must have one size"):
        apply_faint_rule(frame[:, :16], sam, detector)
    with pytest.raises(ValueError, match="unknown class names"):
        FaintRuleConfig(classes=("ghost",))
    with pytest.raises(ValueError, match="threshold must be in"):
        FaintRuleConfig(threshold=1.5)
    with pytest.raises(ValueError, match=r"image must be \[H, W\]"):
        background_band(np.zeros(5))


def test_faint_fraction_ignores_pixels_without_coverage():
    image = np.array([[0, 0, 50, 52]], dtype=np.uint8)
    mask = np.ones((1, 4), bool)
    assert faint_fraction(image, mask, 50.0, 5.0) == 1.0
    assert faint_fraction(image, np.array([[True, True, False, False]]), 50.0, 5.0) == 0.0


# --------------------------------------------------------------------------- streak fit
def test_streak_fit_constants_are_the_simulators() -> None:
    sim = ArtefactConfig()
    assert StreakFitConfig().sigma == sim.streak_sigma / 4
    assert StreakFitConfig().level == sim.mask_level


def test_streak_fit_recovers_simulated_streak_masks_from_wide_boxes() -> None:
    ious = []
    for seed in range(12):
        sim = simulate_image(seed)
        for mask in sim.masks[sim.labels == ROS]:
            box = masks_to_boxes(mask[None])[0] + [-6, 0, 6, 0]  # a detector's widened box
            fitted = fit_streak_mask(sim.frame, box, config=StreakFitConfig(full_height=False))
            ious.append(0.0 if fitted is None else (fitted & mask).sum() / (fitted | mask).sum())
    assert len(ious) >= 30
    assert np.median(ious) >= 0.8  # 5-column masks: one column off is IoU 0.83
    assert np.mean(np.array(ious) >= 0.5) >= 0.8


def _streak_frame() -> np.ndarray:
    """64x48 frame: sky 50, a streak in columns 20-22 (peak 21), no coverage from column 40."""
    frame = np.full((64, 48), 50, np.uint8)
    frame[:, 40:] = 0
    frame[4:, 20:23] = [70, 110, 70]
    return frame


def test_fit_streak_mask_centre_columns_rows_and_coverage() -> None:
    frame = _streak_frame()
    mask = fit_streak_mask(frame, np.array([14.0, 0.0, 30.0, 64.0]))
    # centre 21; a Gaussian of sigma 1.25 holds >= 10 % of its peak within 2 columns
    assert np.flatnonzero(mask.any(axis=0)).tolist() == [19, 20, 21, 22, 23]
    assert np.flatnonzero(mask.any(axis=1)).tolist() == list(range(64))  # every covered row
    short_box = np.array([14.0, 10.0, 30.0, 20.0])
    full = fit_streak_mask(frame, short_box)
    assert np.flatnonzero(full.any(axis=1)).tolist() == list(range(64))  # every covered row
    narrow = fit_streak_mask(frame, short_box, config=StreakFitConfig(full_height=False))
    assert np.flatnonzero(narrow.any(axis=1)).tolist() == list(range(10, 20))
    assert fit_streak_mask(np.full((64, 48), 50, np.uint8), np.array([14.0, 0, 30, 64])) is None
    assert fit_streak_mask(frame, np.array([44.0, 0, 47, 64])) is None  # no coverage there


def test_apply_streak_fit_refits_streaks_drops_duplicates_keeps_others() -> None:
    frame = _streak_frame()
    wide = np.zeros((64, 48), bool)
    wide[:, 14:30] = True
    ring = np.zeros((64, 48), bool)
    ring[30:40, 30:38] = True
    found = Instances.from_masks(np.stack([wide, ring, wide]), [ROS, SR, ROS], [0.5, 0.8, 0.9])
    out = apply_streak_fit(frame, found)
    assert out.labels.tolist() == [SR, ROS] and out.scores.tolist() == [0.8, 0.9]
    np.testing.assert_array_equal(out.masks[0], ring)
    assert np.flatnonzero(out.masks[1].any(axis=0)).tolist() == [19, 20, 21, 22, 23]
    np.testing.assert_array_equal(out.boxes[1], [19, 0, 24, 64])
    assert len(apply_streak_fit(frame, Instances.empty(64, 48))) == 0
    with pytest.raises(ValueError, match="one size"):
        apply_streak_fit(frame[:32], found)
    with pytest.raises(ValueError, match="level"):
        StreakFitConfig(level=1.5)

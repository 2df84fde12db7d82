"""Instrument priors on generated frames: the central ring, smoke rings and read-out streaks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xami.classes import BY_NAME
from xami.cli import build_parser
from xami.cli.predict import pipeline_spec
from xami.pipeline import PipelineSpec
from xami.predict.provenance import provenance, provenance_cards
from xami.priors import (
    BrightSource,
    CentralRingPrior,
    PriorConfig,
    SmokeRingPrior,
    StarLoopPrior,
    StreakPrior,
    apply_priors,
    find_bright_sources,
)
from xami.priors.central_ring import apply_central_ring_prior, ring_likelihood
from xami.priors.smoke_ring import apply_smoke_ring_prior, propose_rings
from xami.priors.star_loop import apply_star_loop_prior
from xami.priors.streaks import apply_streak_prior, column_parents, visible_segments
from xami.structures import Instances

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

CR, OT, ROS, SR, SL = (BY_NAME[n].coco_id for n in ("central-ring", "other", "read-out-streak",
                                                     "smoke-ring", "star-loop"))
RING_BOX = [227.5, 230.0, 268.5, 262.0]  # 41 x 32 at the fixed position (248, 246)


def _boxes(boxes: list[list[float]], labels: list[int], scores: list[float],
           size: tuple[int, int] = (512, 512)) -> Instances:
    """Instances whose masks are their (integer) boxes."""
    masks = np.zeros((len(boxes), *size), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes, strict=True):
        mask[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
    return Instances(np.array(boxes, float).reshape(-1, 4), masks, labels, scores)


def _star(frame: np.ndarray, x: float, y: float, radius: float) -> None:
    """Paint a saturated disc of ``radius`` pixels at ``(x, y)`` (pixel centres)."""
    rows, cols = np.ogrid[:frame.shape[0], :frame.shape[1]]
    frame[(cols + 0.5 - x) ** 2 + (rows + 0.5 - y) ** 2 <= radius**2] = 255


# --------------------------------------------------------------------------- central ring
def test_ring_likelihood_is_gaussian_in_distance_and_log_size():
    shifted = np.array(RING_BOX) + np.array([12, 0, 12, 0])
    doubled = [207.0, 214.0, 289.0, 278.0]
    values = ring_likelihood(np.array([RING_BOX, shifted, doubled]), 512)
    assert values == pytest.approx([1.0, math.exp(-0.5), math.exp(-2 * math.log(2) ** 2 / 0.5)])
    assert ring_likelihood(np.array([[455.0, 460.0, 537.0, 524.0]]), 1024) == pytest.approx([1.0])


def test_one_central_ring_survives_the_best_placed():
    frame = np.full((512, 512), 40, np.uint8)
    found = _boxes([[100, 100, 130, 130], RING_BOX, [258, 230, 299, 262]], [CR, CR, CR],
                   [0.9, 0.5, 0.6])
    kept = apply_central_ring_prior(frame, found)
    assert kept.boxes.tolist() == [RING_BOX] and kept.scores.tolist() == [0.5]
    low = apply_central_ring_prior(frame, found, config=CentralRingPrior(others="downscore"))
    assert low.scores == pytest.approx([0.9 * math.exp(-(148**2 + 131**2) / 288 - 2 * (
        math.log(30 / 41) ** 2 + math.log(30 / 32) ** 2)), 0.5, 0.6 * math.exp(-30.5**2 / 288)])


def test_ring_is_proposed_where_covered_and_none_without_coverage():
    frame = np.full((512, 512), 40, np.uint8)
    far = _boxes([[100, 100, 130, 130], [10, 10, 20, 20]], [CR, SR], [0.9, 0.4])
    proposed = apply_central_ring_prior(frame, far)
    assert proposed.labels.tolist() == [SR, CR] and proposed.scores.tolist() == [0.4, 0.1]
    assert proposed.boxes[1].tolist() == [228.0, 230.0, 268.0, 262.0]
    frame[200:300, 200:300] = 0  # a window layout that leaves the ring's place uncovered
    assert apply_central_ring_prior(frame, _boxes([RING_BOX], [CR], [0.9])).labels.tolist() == []
    no_proposal = CentralRingPrior(propose=False)
    assert len(apply_central_ring_prior(np.full((512, 512), 9, np.uint8), far,
                                        config=no_proposal)) == 1


def test_non_square_frames_are_left_alone():
    found = _boxes([[10, 10, 40, 40], [50, 10, 80, 40]], [CR, CR], [0.9, 0.8], size=(256, 512))
    kept = apply_central_ring_prior(np.full((256, 512), 40, np.uint8), found)
    assert kept.scores.tolist() == [0.9, 0.8]


# --------------------------------------------------------------------------- smoke ring
@pytest.fixture
def star_frame() -> np.ndarray:
    """512 frame, sky 40, one saturated star 150 px right of the centre."""
    frame = np.full((512, 512), 40, np.uint8)
    _star(frame, 406.0, 256.0, 4.0)
    return frame


def test_bright_sources_are_the_saturated_cores(star_frame):
    star_frame[10, 10] = 255  # a hot pixel is not a source
    (source,) = find_bright_sources(star_frame)
    assert (source.x, source.y) == (406.0, 256.0)
    assert source.radius == pytest.approx(math.sqrt(52 / math.pi))


def test_smoke_rings_outward_of_a_parent_are_boosted_others_lowered(star_frame):
    sources = find_bright_sources(star_frame)
    found = _boxes([[429, 249, 443, 263], [369, 249, 383, 263], [399, 249, 413, 263],
                    [429, 249, 443, 263], [411, 221, 461, 291]],
                   [SR, SR, SR, SL, SL], [0.5, 0.5, 0.5, 0.3, 0.3])
    out = apply_smoke_ring_prior(star_frame, found, sources)
    # outward ghost boosted; inward one lowered; the ring on the star itself lowered (it has no
    # parent) but kept; a ring-sized star loop at the ghost's place relabelled; a real-sized
    # star loop left alone
    assert out.labels.tolist() == [SR, SR, SR, SR, SL]
    assert out.scores == pytest.approx([0.75, 0.25, 0.25, 0.45, 0.3])
    cores = apply_smoke_ring_prior(star_frame, found, sources,
                                   config=SmokeRingPrior(drop_cores=True))
    assert cores.boxes[:, 0].tolist() == [429, 369, 429, 411]  # the star itself dropped
    plain = apply_smoke_ring_prior(star_frame, found, sources, config=SmokeRingPrior(
        drop_cores=False, relabel_size=0, boost=1.0))
    assert plain.labels.tolist() == [SR, SR, SR, SL, SL]
    assert plain.scores == pytest.approx([0.5, 0.25, 0.25, 0.3, 0.3])


@pytest.fixture
def ghost_frame() -> tuple[np.ndarray, np.ndarray]:
    """512 frame, sky 40 +- 3, a saturated star 150 px right of the centre; and the same frame
    with its faint ghost (an annulus of radii 3.4-7.5 px, +5) at 1.21 times its distance."""
    rng = np.random.default_rng(1)
    sky = 40 + rng.normal(0, 3, (512, 512))
    rows, cols = np.ogrid[:512, :512]
    radius = np.hypot(cols + 0.5 - 437.5, rows + 0.5 - 256.0)
    frames = [sky, sky + 5 * ((radius >= 3.4) & (radius <= 7.5))]
    frames = [frame.clip(1, 254).astype(np.uint8) for frame in frames]
    for frame in frames:
        _star(frame, 406.0, 256.0, 4.0)
    return frames[0], frames[1]


def test_a_faint_ghost_of_a_parent_without_a_ring_is_proposed(ghost_frame):
    plain, ghost = ghost_frame
    sources = find_bright_sources(ghost)
    proposed = propose_rings(ghost, Instances.empty(512, 512), sources)
    assert proposed.labels.tolist() == [SR] and proposed.scores.tolist() == [0.05]
    x0, y0, x1, y1 = proposed.boxes[0]
    assert abs((x0 + x1) / 2 - 437.5) <= 2 and abs((y0 + y1) / 2 - 256) <= 2
    assert (x1 - x0, y1 - y0) == (15, 15) and proposed.masks[0].sum() == 177  # the disc
    # no patch there: nothing; a ring already found at the ghost's place: nothing more
    assert len(propose_rings(plain, Instances.empty(512, 512), sources)) == 0
    found = _boxes([[431, 249, 445, 263]], [SR], [0.6])
    assert len(propose_rings(ghost, found, sources)) == 0
    out = apply_smoke_ring_prior(ghost, found, sources)
    assert out.labels.tolist() == [SR] and out.scores == pytest.approx([0.9])
    # the whole step: proposed after the detector's instances; off with propose=False
    other = _boxes([[10, 10, 20, 20]], [SL], [0.5])
    assert apply_smoke_ring_prior(ghost, other, sources).labels.tolist() == [SL, SR]
    assert len(apply_smoke_ring_prior(ghost, other, sources,
                                      config=SmokeRingPrior(propose=False))) == 1
    # coverage too narrow for the sky around a ring: no texture to measure, no proposal
    strip = np.zeros_like(ghost)
    strip[248:264] = ghost[248:264]
    assert len(propose_rings(strip, Instances.empty(512, 512), sources)) == 0


def test_no_ring_is_proposed_for_a_parent_whose_ring_would_lie_in_its_glare():
    # 60 px from the centre the ghost is only 12.6 px out: less than a ring's 15 px diameter
    rng = np.random.default_rng(1)
    rows, cols = np.ogrid[:512, :512]
    for distance, expected in ((60.0, 0), (150.0, 1)):
        ghost_x = 256.0 + 1.21 * distance
        radius = np.hypot(cols + 0.5 - ghost_x, rows + 0.5 - 256.0)
        frame = (40 + rng.normal(0, 3, (512, 512)) + 5 * ((radius >= 3.4) & (radius <= 7.5)))
        frame = frame.clip(1, 254).astype(np.uint8)
        _star(frame, 256.0 + distance, 256.0, 4.0)
        proposed = propose_rings(frame, Instances.empty(512, 512), find_bright_sources(frame))
        assert len(proposed) == expected, distance


# --------------------------------------------------------------------------- streaks
@pytest.fixture
def streak_frame() -> np.ndarray:
    """512 frame, sky 40 +- 3, rows 0-19 uncovered, a +20 streak on columns 199-201 through a
    saturated star at (200.5, 300.5) with a halo 60 above the sky out to 14 px."""
    rng = np.random.default_rng(0)
    frame = 40 + rng.normal(0, 3, (512, 512))
    frame[:, 199:202] += 20
    rows, cols = np.ogrid[:512, :512]
    frame[(cols - 200) ** 2 + (rows - 300) ** 2 <= 14**2] += 60
    frame = frame.clip(1, 254).astype(np.uint8)
    _star(frame, 200.5, 300.5, 6.0)
    frame[:20] = 0
    return frame


def test_visible_segments_split_at_the_star_and_follow_coverage(streak_frame):
    parents = find_bright_sources(streak_frame)
    # the halo fills most of the side columns (5-9 px off the star's column) within 12 rows
    assert visible_segments(streak_frame, (199, 201), parents) == [(20, 288), (313, 512)]
    assert visible_segments(streak_frame, (300, 302), []) == []  # no streak there


def test_a_seam_between_windows_does_not_cut_the_streak(streak_frame):
    streak_frame[150] = 0  # an uncovered row between two windows of a mosaic
    streak_frame[500:] = 0  # and no coverage below row 500
    segments = visible_segments(streak_frame, (199, 201), find_bright_sources(streak_frame))
    assert segments == [(20, 288), (313, 500)]


def test_a_fainter_saturated_star_on_the_column_does_not_cut_the_streak(streak_frame):
    _star(streak_frame, 200.5, 120.5, 2.0)  # lies on the streak; the streak's source is below
    parents = find_bright_sources(streak_frame)
    assert len(parents) == 2
    assert visible_segments(streak_frame, (199, 201), parents) == [(20, 288), (313, 512)]


def test_a_small_saturated_star_is_no_streak_source(streak_frame):
    # the streak's own source is off the frame; a 3 px saturated star lies on its column
    streak_frame[280:] = streak_frame[200:232].mean().astype(np.uint8)
    streak_frame[280:, 199:202] = 60
    _star(streak_frame, 200.5, 120.5, 3.0)
    parents = find_bright_sources(streak_frame)
    assert [round(p.radius) for p in parents] == [3]
    assert visible_segments(streak_frame, (199, 201), parents) == [(20, 512)]
    cutting = StreakPrior(min_source_radius=2.0)
    assert len(visible_segments(streak_frame, (199, 201), parents, config=cutting)) == 2
    # the radius is in pixels of a 512 frame: a 1024 frame needs twice the core
    big = np.kron(streak_frame, np.ones((2, 2), np.uint8))
    assert visible_segments(big, (398, 403), find_bright_sources(big),
                            config=StreakPrior(min_source_radius=4.0)) == [(40, 1024)]


def test_the_profile_lengths_scale_with_the_frame():
    # a streak with a 70-row faint stretch (under max_gap, 96 at 512) is one segment at any size
    rng = np.random.default_rng(1)
    frame = 40 + rng.normal(0, 3, (512, 512))
    frame[:, 199:202] += 20
    frame[200:270, 199:202] -= 20
    frame = frame.clip(1, 254).astype(np.uint8)
    assert visible_segments(frame, (199, 201), []) == [(0, 512)]
    big = np.kron(frame, np.ones((2, 2), np.uint8))
    assert visible_segments(big, (398, 403), []) == [(0, 1024)]


def test_streaks_are_rescored_by_their_column_and_cut_to_segments(streak_frame):
    sources = find_bright_sources(streak_frame)
    found = _boxes([[199, 20, 202, 512], [10, 10, 30, 30], [400, 20, 403, 512]],
                   [ROS, SL, ROS], [0.6, 0.4, 0.6])
    out = apply_streak_prior(streak_frame, found, sources)
    assert out.labels.tolist() == [SL, ROS, ROS, ROS]
    assert out.scores == pytest.approx([0.4, 0.9, 0.9, 0.3])
    assert out.boxes[1:].tolist() == [[199, 20, 202, 288], [199, 313, 202, 512],
                                      [400, 20, 403, 512]]  # no streak visible: kept whole
    column = apply_streak_prior(streak_frame, found, sources, config=StreakPrior(extent="column"))
    assert column.boxes[1:].tolist() == [[199, 20, 202, 512], [400, 20, 403, 512]]
    assert column.scores == pytest.approx([0.4, 0.9, 0.3])


def test_a_clipped_streak_is_not_part_of_its_source():
    frame = np.full((512, 512), 40, np.uint8)
    frame[20:, 198:204] = 255  # the streak clipped at the top of the scale, 6 px wide
    _star(frame, 200.5, 300.5, 8.0)
    _star(frame, 400.5, 100.5, 2.0)  # a small star: kept whole
    sources = find_bright_sources(frame)
    assert len(sources) == 2
    star = sources[0]
    assert (star.x, star.y) == pytest.approx((200.5, 300.5), abs=0.3)
    assert star.radius == pytest.approx(7.5, abs=0.5)  # not the 490-row column (its caps trimmed)
    assert sources[1].radius == pytest.approx(2.0, abs=0.3)


def test_a_streak_s_parents_are_centred_on_its_columns():
    blob = BrightSource(281.0, 283.0, 32.0)  # a wide saturated galaxy (columns 262-302)
    star = BrightSource(292.4, 463.0, 2.0)
    # the blob's core reaches the streak's columns, but its own streak runs down its centre
    assert column_parents((290, 294), [blob, star]) == [star]
    assert column_parents((279, 283), [blob, star]) == [blob]
    assert column_parents((294, 297), [blob, star]) == [star]  # within 2 px


# --------------------------------------------------------------------------- star loops
def test_star_loops_are_filled_to_their_outline():
    masks = np.zeros((3, 64, 64), bool)
    masks[0, 10:50, 10:14] = masks[0, 10:14, 10:40] = masks[0, 46:50, 10:40] = True  # a "C"
    masks[1] = masks[0]  # the same C, called a read-out streak: left alone
    masks[2, 2:6, 2:6] = masks[2, 58:62, 58:62] = True  # two far patches: not one loop
    found = Instances.from_masks(masks, labels=np.array([SL, ROS, SL]),
                                 scores=np.array([0.5, 0.4, 0.3]))
    out = apply_star_loop_prior(found)
    assert out.masks.sum(axis=(1, 2)).tolist() == [40 * 30, masks[1].sum(), 32]
    assert np.array_equal(out.boxes, found.boxes) and out.scores.tolist() == [0.5, 0.4, 0.3]
    joined = apply_star_loop_prior(found, config=StarLoopPrior(max_growth=200)).masks[2]
    assert joined.sum() > 12 * 32 and joined[32, 32]  # the band between them, 12.7 times as large
    assert found.masks[0].sum() < 40 * 30  # the input is not changed


def test_a_loop_found_twice_is_kept_once():
    masks = np.zeros((4, 64, 64), bool)
    masks[0, 10:50, 10:14] = masks[0, 10:14, 10:40] = masks[0, 46:50, 10:40] = True  # a "C"
    masks[1, 12:50, 10:40] = True  # the same loop, filled, lower score: dropped
    masks[2, 40:60, 30:60] = True  # another loop overlapping a little: kept
    masks[3, 12:50, 10:40] = True  # a smoke ring there: not a loop, kept
    found = Instances.from_masks(masks, labels=np.array([SL, SL, SL, SR]),
                                 scores=np.array([0.4, 0.3, 0.6, 0.2]))
    out = apply_star_loop_prior(found)
    assert out.labels.tolist() == [SL, SL, SR] and out.scores.tolist() == [0.4, 0.6, 0.2]
    kept = apply_star_loop_prior(found, config=StarLoopPrior(duplicate_iou=1.0))
    assert len(kept) == 4


# --------------------------------------------------------------------------- all steps
def test_apply_priors_runs_the_steps_switched_on(star_frame):
    found = _boxes([[100, 100, 130, 130], [429, 249, 443, 263]], [CR, SR], [0.9, 0.5])
    out = apply_priors(star_frame, found)
    assert out.labels.tolist() == [SR, CR] and out.scores == pytest.approx([0.75, 0.1])
    off = PriorConfig(central_ring=None, smoke_ring=None, streak=None, star_loop=None)
    assert off.steps() == () and apply_priors(star_frame, found, config=off) is found
    with pytest.raises(ValueError, match="must have one size"):
        apply_priors(star_frame[:256], found)


@pytest.mark.parametrize(("config", "match"), [
    (lambda: CentralRingPrior(others="relabel"), "others must be one of"),
    (lambda: CentralRingPrior(sigma=0), "sigma and size_sigma must be > 0"),
    (lambda: SmokeRingPrior(offset_range=(0.3, 0.1)), "offset_range must be"),
    (lambda: SmokeRingPrior(propose_score=2.0), "propose_score must be in"),
    (lambda: StreakPrior(extent="half"), "extent must be one of"),
    (lambda: StreakPrior(block=0), "block, side_width and min_length must be >= 1"),
    (lambda: PriorConfig(min_core=0), "min_core must be >= 1"),
    (lambda: StarLoopPrior(max_growth=0.5), "max_growth must be >= 1"),
    (lambda: StarLoopPrior(duplicate_iou=0.0), "duplicate_iou must be in"),
])
def test_bad_settings_are_named(config, match):
    with pytest.raises(ValueError, match=match):
        config()


def test_cli_flags_spec_and_provenance():
    parse = build_parser().parse_args
    assert pipeline_spec(parse(["predict", "x.png", "--out", "o", "--no-priors"])).priors is None
    config = pipeline_spec(parse(["predict", "x.png", "--out", "o", "--no-smoke-ring-prior",
                                  "--no-star-loop-prior", "--streak-extent", "column"])).priors
    assert config.steps() == ("central_ring", "streak") and config.streak.extent == "column"
    spec = PipelineSpec(priors=config)
    assert hash(spec) == hash(PipelineSpec(priors=config))  # the Dask cache key
    cards = provenance_cards(provenance(spec))
    assert cards["PRIORS"][0] == "CR,ROS" and cards["STRKEXT"][0] == "column"
    settings = provenance(PipelineSpec(priors=None))["settings"]
    assert settings["priors"] is None
    assert provenance_cards(provenance(PipelineSpec(priors=None)))["PRIORS"][0] == "none"
    assert provenance_cards(provenance(PipelineSpec()))["PRIORS"][0] == "CR,SR,ROS,SL"
    assert provenance(PipelineSpec())["settings"]["priors"]["smoke_ring"]["boost"] == 1.5
    quiet = pipeline_spec(parse(["predict", "x.png", "--out", "o", "--no-proposals",
                                 "--no-central-ring-prior"])).priors
    assert quiet.central_ring is None
    assert not quiet.smoke_ring.propose
    assert quiet.streak.extent == "visible"  # only the proposals are switched off
    settings = provenance(PipelineSpec(priors=quiet))["settings"]
    assert settings["priors"]["smoke_ring"]["propose"] is False

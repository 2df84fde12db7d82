"""Tests of the XMM-OM simulator: physics pieces with hand-checkable numbers, and the dataset."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from pycocotools.coco import COCO

from xami.classes import BY_NAME, CLASSES
from xami.cli import main
from xami.data.polygons import polygons_to_mask
from xami.instrument import SMOKE_RING_MIN_PARENT_DISTANCE
from xami.sim import SimConfig, simulate_dataset, simulate_image
from xami.sim.artefacts import (
    Layer,
    read_out_streak,
    smoke_ring,
    smoke_ring_centre,
    streak_gap,
)
from xami.sim.config import ARCMIN_PX, CENTRE, ArtefactConfig, PsfConfig
from xami.sim.dataset import scene_of
from xami.sim.image import _display_masks
from xami.sim.layout import Window, coverage_fraction, exposure_map
from xami.sim.optics import coincidence_cap, coincidence_loss, psf_kernel, render_stars
from xami.sim.render import candidates, render_scene

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

REAL_PER_IMAGE = {"central-ring": 668 / 1055, "other": 41 / 1055, "read-out-streak": 2799 / 1055,
                  "smoke-ring": 1669 / 1055, "star-loop": 1844 / 1055}
PSF = PsfConfig()
ART = ArtefactConfig()


def test_psf_kernel_is_normalised_and_centred() -> None:
    kernel = psf_kernel(4, PSF)
    half = kernel.shape[0] // 2
    assert kernel.sum() == pytest.approx(1.0)
    assert np.unravel_index(kernel.argmax(), kernel.shape) == (half, half)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)


def test_render_stars_conserves_flux_and_position() -> None:
    image = render_stars(np.array([[1001.0, 601.0]]), np.array([250.0]), 4, PSF)
    assert image.sum() == pytest.approx(250.0, rel=1e-6)
    assert np.unravel_index(image.argmax(), image.shape) == (150, 250)  # 601 / 4, 1001 / 4


def test_coincidence_loss_is_linear_when_faint_and_saturates_when_bright() -> None:
    cap = coincidence_cap(4, PSF)
    assert cap == pytest.approx(16 / (0.011 * 64))
    faint = coincidence_loss(np.full((3, 3), 0.001 * cap), 4, PSF)
    np.testing.assert_allclose(faint, 0.001 * cap, rtol=1e-3)
    bright = np.zeros((9, 9))
    bright[4, 4] = 100 * cap
    out = coincidence_loss(bright, 4, PSF)
    assert out[4, 4] == pytest.approx(cap, rel=1e-6)  # flat-topped


def test_streak_is_labelled_above_and_below_its_star_with_the_readout_flux() -> None:
    below = read_out_streak(1002.0, 1000.0, 1000.0, 4, ART, side=-1)
    above = read_out_streak(1002.0, 1000.0, 1000.0, 4, ART, side=1)
    assert below.slices[0] == slice(0, 250) and above.slices[0] == slice(250, 512)
    for layer in (below, above):
        mask_cols = layer.slices[1].start + np.flatnonzero(layer.mask.any(axis=0))
        assert mask_cols.min() <= 250 <= mask_cols.max() and 4 <= mask_cols.size <= 6
        # one binned row holds 4 unbinned rows of the 1.58 % spread over 2048 rows
        assert layer.flux[0].sum() == pytest.approx(1000 * 0.0158 * 4 / 2048, rel=1e-4)
    gap = streak_gap(1000.0, ART)  # 44 + 30 log10(1000 / 60) = 80.7 unbinned px
    assert gap == pytest.approx(80.66, abs=0.01)
    rows = np.flatnonzero(below.mask.any(axis=1))
    assert rows.min() == 0 and rows.max() == 229  # (229 + 0.5) * 4 = 918 <= 1000 - 80.7
    rows = 250 + np.flatnonzero(above.mask.any(axis=1))
    assert rows.min() == 270 and rows.max() == 511
    assert read_out_streak(1002.0, 2030.0, 1000.0, 4, ART, side=1) is None  # too short a part


def test_loops_are_labelled_filled_and_streak_stubs_not_at_all() -> None:
    # as the real annotations: a loop's outline filled; no streak where a window shows a stub
    arc = np.zeros((40, 40), bool)
    arc[5:35, 5:9] = arc[5:9, 5:30] = arc[31:35, 5:30] = True  # a "C", open to the right
    loop = Layer(BY_NAME["star-loop"].coco_id, 100, 200, arc.astype(float), arc, 0.25)
    column = np.ones((250, 5), bool)
    streak = Layer(BY_NAME["read-out-streak"].coco_id, 0, 300, column.astype(float), column, 0.9)
    covered = np.ones((512, 512), bool)
    masks, labels = _display_masks([loop, streak], covered, ART)
    assert labels.tolist() == [BY_NAME["star-loop"].coco_id, BY_NAME["read-out-streak"].coco_id]
    assert masks[0].sum() == 30 * 25 and masks[1].sum() == 250 * 5  # the C closed, 30 x 25
    covered[:501] = False  # rows 501-511 (FITS rows 0-10) covered: 11 rows < 48 / 4
    masks, labels = _display_masks([loop, streak], covered, ART)
    assert labels.tolist() == [] and masks.shape == (0, 512, 512)
    covered[489:501] = True  # 23 rows of the streak: labelled
    masks, labels = _display_masks([streak], covered, ART)
    assert masks.sum() == 23 * 5


def test_smoke_ring_is_displaced_outward_from_the_field_centre() -> None:
    for x, y in ((1600.0, 1024.0), (300.0, 500.0), (1024.0, 1900.0)):
        cx, cy = smoke_ring_centre(x, y, ART)
        assert np.hypot(cx - CENTRE, cy - CENTRE) > np.hypot(x - CENTRE, y - CENTRE)
        cross = (x - CENTRE) * (cy - CENTRE) - (y - CENTRE) * (cx - CENTRE)
        assert cross == pytest.approx(0.0, abs=1e-6)  # along the radius
    # at 1.21 times the parent's distance, as the real labelled rings (no constant term)
    assert smoke_ring_centre(1600.0, 1024.0, ART) == pytest.approx((CENTRE + 1.21 * 576, CENTRE))
    assert smoke_ring_centre(1024.0, 1100.0, ART) == pytest.approx((CENTRE, CENTRE + 1.21 * 76))
    layer = smoke_ring(1600.0, 1024.0, 500.0, 4, ART)
    assert layer is not None and layer.mask.any()
    cols = layer.slices[1]
    c = np.nonzero(layer.mask)[1]
    assert np.mean(c) + cols.start > 1600 / 4  # the ring's centre is beyond the star


def test_exposure_map_adds_overlaps_and_counts_partial_pixels() -> None:
    windows = (Window(2, 0, 400, 400, 1000.0), Window(200, 200, 600, 600, 500.0))
    expo = exposure_map(windows, 4)
    assert expo[10, 0] == pytest.approx(500.0)  # half of the first column exposed
    assert expo[10, 10] == pytest.approx(1000.0)
    assert expo[60, 60] == pytest.approx(1500.0)
    assert expo[200, 200] == 0.0
    cov = coverage_fraction(windows, 4)
    assert cov[10, 0] == pytest.approx(0.5) and cov[60, 60] == 1.0 and cov[200, 200] == 0.0


def _empty_scene(seed: int) -> object:
    """A drawn scene stripped of sources and artefacts, one full-frame window."""
    scene = scene_of(seed, 0, SimConfig())
    return dataclasses.replace(
        scene, windows=(Window(0, 0, 2048, 2048, 2000.0, 1),), exposure=2000.0,
        star_xy=np.zeros((0, 2)), star_rate=np.zeros(0), loop_rate=np.zeros_like(scene.loop_rate),
        gradient=np.zeros(4), ring=None, others=(), fov_radius=None, blur=0.0,
        field=dataclasses.replace(scene.field, galaxies=np.zeros((0, 6))))


def test_smoke_rings_only_where_they_clear_their_parent() -> None:
    # offset 0.21 r must reach the ring's diameter (60 px): parents >= 286 px (136") off centre
    scene = dataclasses.replace(_empty_scene(1), star_xy=np.array(
        [[CENTRE + 200.0, CENTRE], [CENTRE, CENTRE - 300.0], [CENTRE + 260.0, CENTRE + 50.0]]),
        star_rate=np.full(3, 500.0))
    rings = [c for c in candidates(scene, SimConfig()) if c.func is smoke_ring]
    assert [c.args[:2] for c in rings] == [(CENTRE, CENTRE - 300.0)]  # 143"; not 95" or 126"
    assert np.hypot(260, 50) < SMOKE_RING_MIN_PARENT_DISTANCE < 300


def test_star_loops_lie_off_the_chamfer_axis_towards_their_parent() -> None:
    low, high = (d * ARCMIN_PX / 60 for d in ART.loop_distance)
    x0, y0 = ART.ring_xy
    found = 0
    for seed in range(6):
        field = scene_of(seed, 0, SimConfig()).field
        for (px, py), shape in zip(field.loop_xy, field.loop_shape, strict=True):
            dx, dy = shape[0] - x0, shape[1] - y0
            assert low <= np.hypot(dx, dy) <= high
            assert dx * (px - CENTRE) + dy * (py - CENTRE) > 0  # on the parent's side
            assert dx * (py - CENTRE) - dy * (px - CENTRE) == pytest.approx(0.0, abs=1e-6)
            found += 1
    assert found >= 10


def test_background_counts_have_the_poisson_mean_and_variance() -> None:
    scene = _empty_scene(1)
    rendered = render_scene(scene, np.random.default_rng(0), SimConfig())
    expected = scene.sky_rate * 16 * 2000.0
    assert rendered.layers == ()
    assert rendered.data.mean() == pytest.approx(expected, rel=0.01)
    assert rendered.data.var() == pytest.approx(expected, rel=0.05)


def test_simulate_image_is_deterministic_and_masks_lie_in_coverage() -> None:
    a, b = simulate_image(11), simulate_image(11)
    np.testing.assert_array_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.frame.shape == (512, 512) and a.frame.dtype == np.uint8
    assert a.masks.shape == (len(a.labels), 512, 512) and a.counts.shape == (512, 512)
    covered = a.frame > 0
    for mask in a.masks:
        assert mask.any() and not (mask & ~covered).any()
    assert set(a.labels.tolist()) <= {c.coco_id for c in CLASSES}
    assert len(a.instances()) == len(a.labels)


def test_simulate_image_rejects_other_binnings() -> None:
    with pytest.raises(ValueError, match="binning must be 1 or 4"):
        simulate_image(0, binning=2)


def test_frame_wcs_maps_true_sources_to_their_sky_positions() -> None:
    sim = simulate_image(5)
    src = sim.sources[:20]
    col = (np.asarray(src["XPOS"]) - 0.5) / 4 - 0.5
    row = 511.5 - (np.asarray(src["YPOS"]) - 0.5) / 4
    sky = sim.frame_wcs.pixel_to_world(col, row)
    sep = sky.separation(SkyCoord(src["RA"], src["DEC"], unit="deg")).arcsec
    assert sep.max() < 0.5 * 4 * 0.4764


def test_simulate_dataset_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_dataset(tmp_path, 0)
    with pytest.raises(ValueError, match="valid_fraction must be in"):
        simulate_dataset(tmp_path, 2, valid_fraction=1.5)


@pytest.fixture(scope="module")
def dataset_200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim200")
    simulate_dataset(out, 200, seed=0, progress=False, workers=2)
    return out


def test_dataset_writes_both_layouts_readable_by_pycocotools(dataset_200: Path) -> None:
    for split in ("train", "valid"):
        coco = COCO(str(dataset_200 / "coco" / split / "_annotations.coco.json"))
        assert coco.getImgIds()
        assert (dataset_200 / "yolo" / split / "images").is_dir()
        assert (dataset_200 / "yolo" / split / "labels").is_dir()
    assert (dataset_200 / "yolo" / "data.yaml").is_file()


def _annotations(root: Path) -> tuple[list[dict], list[dict]]:
    images, anns = [], []
    for split in ("train", "valid"):
        data = json.loads((root / "coco" / split / "_annotations.coco.json").read_text())
        images += data["images"]
        anns += data["annotations"]
    return images, anns


def test_every_polygon_rasterises_inside_the_image(dataset_200: Path) -> None:
    _, anns = _annotations(dataset_200)
    for ann in anns:
        polys = tuple(np.reshape(p, (-1, 2)) for p in ann["segmentation"])
        mask = polygons_to_mask(polys, 512, 512)
        assert mask.any()
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512


def test_class_frequencies_match_the_released_dataset(dataset_200: Path) -> None:
    images, anns = _annotations(dataset_200)
    assert len(images) == 200
    names = {c.coco_id: c.name for c in CLASSES}
    counts = Counter(names[a["category_id"]] for a in anns)
    assert set(counts) == set(REAL_PER_IMAGE)
    for name, real in REAL_PER_IMAGE.items():
        if name == "other":
            assert counts[name] >= 2
        else:  # the larger (real-sized, 15 px) smoke rings are fainter per pixel, and none is
            # labelled in its parent's glare (parents < 136" off centre): 0.65-0.95 of the
            # released rate over seeds (README "Gaps still measured")
            rel = 0.4 if name == "smoke-ring" else 0.25
            assert counts[name] / 200 == pytest.approx(real, rel=rel), name
    meta = images[0]
    assert {"obs_id", "filter", "exposure", "ra", "dec", "pa"} <= set(meta)
    obs = Counter(im["obs_id"] for im in images)
    assert max(obs.values()) >= 2  # some ObsIDs observed in several filters
    assert BY_NAME["central-ring"].coco_id in {a["category_id"] for a in anns}


def _label_files(root: Path) -> dict[str, bytes]:
    files = sorted((root / "yolo").rglob("*.txt")) + sorted((root / "coco").rglob("*.json"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_same_seed_gives_byte_identical_annotations(tmp_path: Path) -> None:
    assert main(["simulate", "--out", str(tmp_path / "a"), "--n", "12", "--seed", "3"]) == 0
    simulate_dataset(tmp_path / "b", 12, seed=3, progress=False, workers=2)
    a, b = _label_files(tmp_path / "a"), _label_files(tmp_path / "b")
    assert a and a == b

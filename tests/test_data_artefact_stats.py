"""Artefact statistics per class and their comparison (`xami dataset compare`) on generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xami.cli import main
from xami.data import load_dataset
from xami.data.artefact_stats import (
    MAD_TO_SIGMA,
    ArtefactComparison,
    ArtefactStats,
    artefact_stats,
    compare_artefact_stats,
    instance_contrast,
)
from xami.sim import simulate_dataset

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SIZE = 32
SIGMA = MAD_TO_SIGMA * 2.0
"""Robust sigma of the background: values 98/100/102 in diagonal stripes, median 100, MAD 2."""


def box(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
    """COCO polygon of the box covering columns x0..x1-1 and rows y0..y1-1."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def background() -> np.ndarray:
    """``uint8 [32, 32]``: 98, 100, 102 repeating along the diagonals."""
    r, c = np.mgrid[:SIZE, :SIZE]
    return (100 + 2 * ((r + c) % 3 - 1)).astype(np.uint8)


def write_coco(folder: Path) -> Path:
    """Two 32x32 PNG frames in ``images/`` and one ``annotations.coco.json`` beside them.

    Frame 1 (classes 1 and 4 annotated): central ring, box x 8-12 y 8-12 at 130; beside it a crowd
    smoke-ring region x 12-20 y 4-20 at 250 (skipped, and kept out of the ring). Frame 2 (every
    class): smoke ring, box x 4-10 y 20-23 at 120 whose left part lies on the zero (no coverage)
    columns 0-5; a read-out streak x 26-28 y 0-32 at 100 (no contrast).
    """
    one, two = background(), background()
    one[8:12, 8:12], one[4:20, 12:20] = 130, 250
    two[:, :6] = 0
    two[20:23, 6:10] = 120
    (folder / "images").mkdir(parents=True)
    Image.fromarray(one).save(folder / "images" / "one.png")
    Image.fromarray(np.repeat(two[..., None], 3, axis=2)).save(folder / "images" / "two.png")
    anns = [(1, 1, box(8, 8, 12, 12), 0), (1, 4, box(12, 4, 20, 20), 1),
            (2, 4, box(4, 20, 10, 23), 0), (2, 3, box(26, 0, 28, 32), 0)]
    data = {
        "images": [{"id": 1, "file_name": "one.png", "height": SIZE, "width": SIZE,
                    "attributes": {"annotated_category_ids": [1, 4]}},
                   {"id": 2, "file_name": "two.png", "height": SIZE, "width": SIZE}],
        "annotations": [{"id": i, "image_id": im, "category_id": cat, "segmentation": seg,
                         "iscrowd": crowd} for i, (im, cat, seg, crowd) in enumerate(anns, 1)],
        "categories": [{"id": i, "name": n} for i, n in enumerate(
            ("central-ring", "other", "read-out-streak", "smoke-ring", "star-loop"), 1)]}
    path = folder / "annotations.coco.json"
    path.write_text(json.dumps(data))
    return path


def test_hand_made_coco(tmp_path: Path) -> None:
    path = write_coco(tmp_path / "real")
    dataset = load_dataset(tmp_path / "real")
    assert dataset.image_dirs["all"] == tmp_path / "real" / "images"
    assert [a.iscrowd for a in dataset.splits["all"][0].annotations] == [False, True]
    stats = artefact_stats(dataset, name="real", ring_width=2)
    assert stats.images == 2
    assert [stats.instances(n) for n in ("central-ring", "smoke-ring", "read-out-streak")] == [
        1, 1, 1]
    cr, sr = stats.values["central-ring"], stats.values["smoke-ring"]
    assert cr["per_image"].tolist() == [1.0, 0.0]  # the crowd smoke ring is not an instance
    assert sr["per_image"].tolist() == [0.0, 1.0]
    assert stats.values["read-out-streak"]["per_image"].tolist() == [1.0]  # frame 2 only
    assert stats.values["star-loop"]["per_image"].tolist() == [0.0]
    assert (cr["width"][0], cr["height"][0], cr["aspect"][0]) == (4.0, 4.0, 1.0)
    assert (cr["x"][0], cr["y"][0]) == (160.0, 160.0)  # centre (10, 10) of 32 -> 512 frame
    assert (sr["width"][0], sr["height"][0], sr["aspect"][0]) == (6.0, 3.0, 0.5)
    assert cr["contrast"][0] == pytest.approx(30 / SIGMA, abs=1e-12)
    assert sr["contrast"][0] == pytest.approx(20 / SIGMA, abs=1e-12)
    assert stats.values["read-out-streak"]["contrast"][0] == 0.0
    assert load_dataset(path).splits["all"][1].file_name == "two.png"


def test_contrast_ignores_annotated_and_uncovered_pixels() -> None:
    frame = background().astype(np.float64)
    frame[8:12, 8:12] = 130
    mask = np.zeros_like(frame, dtype=bool)
    mask[8:12, 8:12] = True
    other = np.zeros_like(mask)
    other[:, 12:] = True
    frame[other] = 250
    assert instance_contrast(frame, mask, mask | other, ring_width=2) == pytest.approx(30 / SIGMA)
    assert instance_contrast(frame, mask, mask, ring_width=2) != pytest.approx(30 / SIGMA)
    frame[:, :12] = 0  # nothing covered: no contrast
    assert np.isnan(instance_contrast(frame, mask, mask | other, ring_width=2))


def test_ring_width_is_validated(tmp_path: Path) -> None:
    write_coco(tmp_path / "real")
    with pytest.raises(ValueError, match="ring_width must be a positive integer, got 0"):
        artefact_stats(load_dataset(tmp_path / "real"), ring_width=0)


def stats_of(widths: list[float], per_image: list[float]) -> ArtefactStats:
    """Hand-set values: every class gets the same ``widths`` and ``per_image``."""
    columns = {"per_image": np.array(per_image), "width": np.array(widths)}
    rest = dict.fromkeys(("height", "aspect", "x", "y", "contrast"), np.array(widths))
    names = ("central-ring", "other", "read-out-streak", "smoke-ring", "star-loop")
    return ArtefactStats("x", len(per_image), {n: {**columns, **rest} for n in names})


def test_ratio_flags_and_files(tmp_path: Path) -> None:
    a, b = stats_of([10, 20, 30], [1, 0, 2]), stats_of([12, 25, 40, 50], [3, 3])
    comparison = ArtefactComparison(a, b)
    assert comparison.ratio("smoke-ring", "width") == 32.5 / 20  # medians
    assert comparison.ratio("smoke-ring", "per_image") == 3.0  # means
    table = comparison.to_markdown()
    assert "| SR | box width (px) | 20 [15-25] | 32.5 [21.8-42.5] | 1.62 | B high | " in table
    assert "| SR | instances | 3 | 4 | | | | |" in table
    assert "| SR | instances per image | 1 [0.5-1.5] (mean 1.00) |" in table
    low = ArtefactComparison(a, stats_of([15, 15], [1]))
    assert low.ratio("star-loop", "width") == 0.75
    assert low.to_dict()["classes"]["star-loop"]["width"]["flag"] == "B low"
    assert ArtefactComparison(a, stats_of([19, 21], [1])).to_dict()[
        "classes"]["star-loop"]["width"]["flag"] == ""
    paths = comparison.save(tmp_path / "out")
    assert [p.name for p in paths] == ["artefact_stats.json", "artefact_stats.md"]
    saved = json.loads(paths[0].read_text())
    assert saved["classes"]["smoke-ring"]["width"]["b"]["median"] == 32.5


def test_sampling_tells_a_difference_from_chance() -> None:
    rng = np.random.default_rng(1)
    a = stats_of(list(rng.normal(100, 30, 2000)), [1] * 10)
    few = ArtefactComparison(a, stats_of([70, 75], [1]))  # 2 values, 27 % low
    many = ArtefactComparison(a, stats_of(list(rng.normal(73, 30, 200)), [1]))
    one, other = few.sampling("star-loop", "width"), many.sampling("star-loop", "width")
    assert one is not None and other is not None
    assert one.lo < 0.8 < 1.25 < one.hi  # two values cannot test 20 %
    assert 0.01 < one.p < 0.3  # 27 % off: unusual, not impossible, for a median of two
    assert other.p == 0.0 and 0.9 < other.lo < 1 < other.hi < 1.1  # 200 values: a difference
    assert few.sampling("star-loop", "width") == one  # seeded: the table is reproducible
    same = ArtefactComparison(a, a).sampling("star-loop", "width")
    assert same is not None and same.p == 1.0
    signed = ArtefactComparison(stats_of([1.0, 2.0, 3.0], [1]), stats_of([-1.0], [1]))
    assert signed.sampling("star-loop", "width").p == 0.0  # no draw changes sign
    saved = few.to_dict()["classes"]["star-loop"]["width"]["sampling"]
    assert saved == {"lo": one.lo, "hi": one.hi, "p": one.p}
    row = next(r for r in few.to_markdown().splitlines() if r.startswith("| SL | box width"))
    assert row.endswith(f"| B low | {one.lo:.2f}-{one.hi:.2f} | {one.p:.2f} |")


def test_empty_class_has_no_ratio(tmp_path: Path) -> None:
    write_coco(tmp_path / "real")
    real = load_dataset(tmp_path / "real")
    comparison = compare_artefact_stats(real, real, names=("r1", "r2"), ring_width=2)
    assert comparison.ratio("star-loop", "width") is None
    assert "| SL | box width (px) | – | – |  |  | |" in comparison.to_markdown()
    assert comparison.ratio("central-ring", "width") == 1.0


def test_cli_compare_simulated_with_coco(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    simulate_dataset(tmp_path / "sim", 4, seed=0, progress=False)
    write_coco(tmp_path / "real")
    capsys.readouterr()
    assert main(["dataset", "compare", str(tmp_path / "sim"),
                 str(tmp_path / "real" / "annotations.coco.json"),
                 "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A = sim (4 images), B = real (2 images)")
    assert "| CR | box width (px) |" in out
    saved = json.loads((tmp_path / "cmp" / "artefact_stats.json").read_text())
    assert saved["b"] == {"name": "real", "images": 2}
    assert (tmp_path / "cmp" / "artefact_stats.md").read_text() == out[:-1]

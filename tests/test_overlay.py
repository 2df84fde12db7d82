"""Overlay rendering: exact class-colour blend, outlines, labels, PNG output, show_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from _data_factory import box_mask, tiny_dataset
from xami.classes import BY_COCO_ID
from xami.errors import DatasetError
from xami.report.dataset import show_dataset
from xami.report.overlay import render_overlay, write_png

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SHAPE = (24, 32)


def test_masked_pixel_is_the_blend_of_the_class_colour() -> None:
    frame = np.full(SHAPE, 100, dtype=np.uint8)
    masks = np.stack([box_mask(4, 14, 4, 14), box_mask(0, 24, 20, 23)])
    out = render_overlay(frame, masks, [5, 3], text=False, alpha=0.45)
    for (row, col), label in (((9, 9), 5), ((12, 21), 3)):
        expected = np.rint(0.55 * 100 + 0.45 * np.array(BY_COCO_ID[label].colour))
        np.testing.assert_array_equal(out[row, col], expected)
    assert out[4, 4].tolist() == list(BY_COCO_ID[5].colour)  # outline pixel
    assert out[20, 2].tolist() == [100, 100, 100]  # untouched
    assert out.dtype == np.uint8 and out.shape == (*SHAPE, 3)


def test_overlaps_blend_in_order_and_outline_can_be_off() -> None:
    frame = np.full(SHAPE, 50, dtype=np.uint8)
    masks = np.stack([box_mask(0, 10, 0, 10), box_mask(5, 15, 5, 15)])
    out = render_overlay(frame, masks, [1, 4], text=False, outline=False, alpha=0.5)
    first = 0.5 * 50 + 0.5 * np.array(BY_COCO_ID[1].colour)
    expected = np.rint(0.5 * first + 0.5 * np.array(BY_COCO_ID[4].colour))
    np.testing.assert_array_equal(out[7, 7], expected)
    np.testing.assert_array_equal(out[0, 0], np.rint(first))


def test_labels_are_drawn_and_empty_input_gives_grey() -> None:
    frame = np.full((40, 60), 80, dtype=np.uint8)
    masks = box_mask(20, 38, 5, 50, shape=(40, 60))[None]
    plain = render_overlay(frame, masks, [2], text=False)
    labelled = render_overlay(frame, masks, [2], scores=[0.87])
    assert (labelled[:20] != plain[:20]).any()
    grey = render_overlay(frame, np.zeros((0, 40, 60), bool), [])
    assert (grey == 80).all()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"frame": np.zeros(SHAPE, np.float32)}, r"frame must be a uint8 \[H, W\] array"),
    ({"masks": np.zeros((1, 5, 5), bool)}, r"masks must be \[N, 24, 32\], got \(1, 5, 5\)"),
    ({"labels": [0]}, r"labels must be COCO ids \[1, 2, 3, 4, 5\], got \[0\]"),
    ({"labels": [1, 2]}, r"need one label \(and score\) per mask: 1 masks, 2 labels"),
    ({"scores": [0.1, 0.2]}, r"1 masks, 1 labels, 2 scores"),
    ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1\.5"),
])
def test_invalid_inputs(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"frame": np.zeros(SHAPE, np.uint8),
                               "masks": np.ones((1, *SHAPE), bool), "labels": [1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        render_overlay(**args)  # type: ignore[arg-type]


def test_write_png_round_trips(tmp_path: Path, rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(*SHAPE, 3), dtype=np.uint8)
    write_png(image, tmp_path / "sub" / "x.png")
    with Image.open(tmp_path / "sub" / "x.png") as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), image)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]


def test_show_dataset(tmp_path: Path, rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "data", rng)
    written = show_dataset(dataset, tmp_path / "show", n=4)
    assert [p.name for p in written] == ["S0000000001_U.png", "S0000000002_V.png",
                                         "S0000000003_U.png", "S0000000004_L.png"]
    with Image.open(written[0]) as im:
        pixels = np.asarray(im)
    assert pixels.shape == (*SHAPE, 3)
    assert (pixels[:, 4] == BY_COCO_ID[3].colour).all(axis=1).any()  # streak outline, under labels
    valid = show_dataset(dataset, tmp_path / "valid", n=8, split="valid")
    assert [p.name for p in valid] == ["S0000000004_L.png", "S0000000005_L.png"]
    with pytest.raises(DatasetError, match=r"split 'test' is not one of \['train', 'valid'\]"):
        show_dataset(dataset, tmp_path / "x", split="test")


def _relative_luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of an sRGB colour."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def _label(frame_value: int, label: int, shape: tuple[int, int] = (200, 240)
           ) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of one instance's label box and the colour filling most of it."""
    frame = np.full(shape, frame_value, dtype=np.uint8)
    masks = box_mask(80, 150, 60, 200, shape=shape)[None]
    plain = render_overlay(frame, masks, [label], text=False)
    labelled = render_overlay(frame, masks, [label], scores=[0.87])
    rows, cols = np.nonzero((labelled != plain).any(axis=2))
    box = labelled[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    colours, counts = np.unique(box.reshape(-1, 3), axis=0, return_counts=True)
    return box, colours[np.argmax(counts)]


@pytest.mark.parametrize("label", sorted(BY_COCO_ID))
def test_label_text_is_at_least_12_px_tall_and_contrasts_with_its_box(label: int) -> None:
    for frame_value in (0, 255):  # on black sky and on a saturated star
        box, fill = _label(frame_value, label)
        inner = box[1:-1, 1:-1].astype(int)  # inside the 1 px border
        ink = np.abs(inner - fill).sum(axis=2) > 120  # text pixels, not the fill or its edge
        rows = np.flatnonzero(ink.any(axis=1))
        assert rows.size and rows[-1] - rows[0] + 1 >= 12, f"text {rows.size} px tall"
        darkest = inner[ink].sum(axis=1).argmin()
        brightest = inner[ink].sum(axis=1).argmax()
        text = inner[ink][darkest if _relative_luminance(fill) > 0.18 else brightest]
        lum = sorted([_relative_luminance(fill), _relative_luminance(text)])
        assert (lum[1] + 0.05) / (lum[0] + 0.05) >= 4.5  # WCAG AA contrast of text on its box


def _solid_blocks(image: np.ndarray, colour: tuple[int, int, int]) -> list[tuple[slice, slice]]:
    """Bounding slices of the solid areas of one exact colour (label boxes, not 1 px outlines)."""
    solid = ndimage.binary_opening((image == colour).all(axis=2), structure=np.ones((2, 2), bool))
    groups, _ = ndimage.label(ndimage.binary_dilation(solid, iterations=3))  # glyphs cut the fill
    return ndimage.find_objects(np.where(solid, groups, 0))


def test_labels_of_boxes_with_one_corner_do_not_overlap() -> None:
    shape = (240, 320)
    frame = np.full(shape, 90, dtype=np.uint8)
    masks = np.stack([box_mask(100, 200, 120, 300, shape=shape),
                      box_mask(100, 160, 120, 220, shape=shape),
                      box_mask(100, 130, 120, 150, shape=shape)])
    out = render_overlay(frame, masks, [1, 3, 4], scores=[0.9, 0.8, 0.7], alpha=0.0)
    rects = []
    for label in (1, 3, 4):
        (block,) = _solid_blocks(out, BY_COCO_ID[label].colour)  # one whole label per class
        rects.append(block)
        assert block[0].stop - block[0].start >= 14
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            apart_rows = a[0].stop <= b[0].start or b[0].stop <= a[0].start
            apart_cols = a[1].stop <= b[1].start or b[1].stop <= a[1].start
            assert apart_rows or apart_cols, f"labels overlap: {a} {b}"


def test_labels_stay_inside_the_image() -> None:
    shape = (120, 160)
    frame = np.zeros(shape, dtype=np.uint8)
    masks = box_mask(0, 120, 150, 160, shape=shape)[None]  # a streak on the right edge
    out = render_overlay(frame, masks, [3], scores=[0.5], alpha=0.0)
    (block,) = _solid_blocks(out, BY_COCO_ID[3].colour)
    assert block[1].stop - block[1].start >= 40  # the whole "ROS 0.50", not clipped

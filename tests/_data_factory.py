"""Tiny seeded test data: datasets of grey JPEG frames and hand-drawn masks for the dataset
tools, and a 512 frame with random boxes for the segmentor tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from xami.data.polygons import mask_to_polygons
from xami.data.records import Annotation, Dataset, ImageRecord

HEIGHT, WIDTH = 24, 32


def box_mask(r0: int, r1: int, c0: int, c1: int, *, shape: tuple[int, int] = (HEIGHT, WIDTH),
             ) -> np.ndarray:
    """A boolean mask with rows ``r0:r1`` and columns ``c0:c1`` set."""
    mask = np.zeros(shape, dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def annotation(category_id: int, *masks: np.ndarray) -> Annotation:
    """An annotation whose polygons are the exact outlines of ``masks``."""
    polygons = tuple(p for m in masks for p in mask_to_polygons(m))
    return Annotation(category_id, polygons)


def write_frame(path: Path, rng: np.random.Generator, *, shape: tuple[int, int] = (HEIGHT, WIDTH),
                ) -> None:
    """A random grey frame stored as RGB JPEG with 3 equal channels (as released)."""
    grey = rng.integers(1, 255, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(path, format="JPEG")


def tiny_records() -> dict[str, tuple[ImageRecord, ...]]:
    """Train (3 images, one with a two-part instance) and valid (2 images, one empty)."""
    train = (
        ImageRecord("S0000000001_U.jpg", HEIGHT, WIDTH,
                    (annotation(3, box_mask(0, 24, 4, 6)), annotation(3, box_mask(0, 24, 20, 22)),
                     annotation(1, box_mask(10, 14, 12, 17))), meta={"exposure": 4000.0}),
        ImageRecord("S0000000002_V.jpg", HEIGHT, WIDTH,
                    (annotation(5, box_mask(2, 6, 2, 9), box_mask(15, 20, 22, 30)),)),
        ImageRecord("S0000000003_U.jpg", HEIGHT, WIDTH, ()),
    )
    valid = (
        ImageRecord("S0000000004_L.jpg", HEIGHT, WIDTH,
                    (annotation(4, box_mask(3, 9, 3, 9)), annotation(3, box_mask(0, 24, 28, 30)))),
        ImageRecord("S0000000005_L.jpg", HEIGHT, WIDTH, ()),
    )
    return {"train": train, "valid": valid}


def tiny_dataset(root: Path, rng: np.random.Generator) -> Dataset:
    """`tiny_records` with their frames written under ``root/{split}/``."""
    splits = tiny_records()
    for split, records in splits.items():
        for rec in records:
            write_frame(root / split / rec.file_name, rng)
    return Dataset(splits, {split: root / split for split in splits})


def instance_set(records: tuple[ImageRecord, ...]) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Per file name, every (class, polygon) pair, sorted: multi-part instances flattened."""
    out = {}
    for rec in records:
        pairs = [(a.category_id, p) for a in rec.annotations for p in a.polygons]
        out[rec.file_name] = sorted(pairs, key=lambda cp: (cp[0], cp[1].tolist()))
    return out


def xami_like(n: int, seed: int, *, n_obs: int | None = None) -> Dataset:
    """``n`` records with XAMI class frequencies (reference notes §1.5), no image files."""
    rng = np.random.default_rng(seed)
    presence = {1: 668 / 1055, 2: 21 / 1055, 3: 651 / 1055, 4: 576 / 1055, 5: 702 / 1055}
    per_image = {1: 1.0, 2: 2.0, 3: 4.3, 4: 2.9, 5: 2.6}
    triangle = (np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]),)
    records = []
    for i in range(n):
        anns: list[Annotation] = []
        if rng.random() > 50 / 1055:
            for cid, p in presence.items():
                if rng.random() < p:
                    count = 1 if cid == 1 else 1 + rng.poisson(per_image[cid] - 1)
                    anns += [Annotation(cid, triangle)] * count
        obs = i if n_obs is None else int(rng.integers(n_obs))
        records.append(ImageRecord(f"S{obs:010d}_{'VBUL'[i % 4]}.jpg", 64, 64, tuple(anns), i))
    return Dataset({"all": tuple(records)}, {"all": Path("images")})


def frame_512(seed: int = 0) -> np.ndarray:
    """A 512 x 512 8-bit frame with random sky and the left quarter without coverage."""
    frame = np.random.default_rng(seed).integers(1, 256, (512, 512), dtype=np.uint8)
    frame[:, :128] = 0
    return frame


def random_boxes(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """``n`` XYXY boxes inside a ``width x height`` image."""
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, width - 20, n), rng.uniform(0, height - 20, n)
    x1, y1 = rng.uniform(x0 + 10, width), rng.uniform(y0 + 10, height)
    return np.stack([x0, y0, x1, y1], axis=1)

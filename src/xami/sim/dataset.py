"""Simulate a whole dataset in the released XAMI layouts (COCO and YOLO-seg), optionally FITS."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xami.classes import BY_COCO_ID, CLASSES
from xami.data import write_dataset
from xami.data.polygons import mask_to_polygons
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.io.fits import write_fits
from xami.io.images import write_frame
from xami.sim.config import SimConfig
from xami.sim.image import SimulatedFrame, simulate_scene
from xami.sim.render import MASK_BINNING
from xami.sim.scene import Scene, draw_field, draw_filters, draw_scene

SPLITS = ("train", "valid")


@dataclass(frozen=True)
class SimulationSummary:
    """What `simulate_dataset` wrote.

    Attributes
    ----------
    out : pathlib.Path
        Output folder.
    images : dict
        Images per split.
    filters : dict
        Images per filter letter.
    instances : dict
        Instances per class name.
    empty : int
        Images without any instance.
    seconds : float
        Wall-clock time.
    """

    out: Path
    images: dict[str, int]
    filters: dict[str, int]
    instances: dict[str, int]
    empty: int
    seconds: float

    def __str__(self) -> str:
        n = sum(self.images.values())
        lines = [f"simulated {n} images in {self.seconds:.1f} s -> {self.out}",
                 "  splits:    " + ", ".join(f"{k} {v}" for k, v in self.images.items()),
                 "  filters:   " + ", ".join(f"{k} {v}" for k, v in self.filters.items()),
                 f"  instances ({sum(self.instances.values())}, {self.empty} empty images):"]
        lines += [f"    {name:16s} {count:6d}  ({count / max(n, 1):.2f} per image)"
                  for name, count in self.instances.items()]
        return "\n".join(lines)


def group_of(seed: int, index: int, config: SimConfig) -> tuple[int, int, int, int]:
    """``(group, first index, size, position)`` of image ``index``: consecutive images form
    multi-filter ObsIDs, with group sizes drawn from a fixed stream (independent of ``n``)."""
    rng = np.random.default_rng([seed, 0x0B5])
    p = np.array(config.multi_filter) / sum(config.multi_filter)
    group, first = 0, 0
    while True:
        size = int(rng.choice(len(p), p=p)) + 1
        if index < first + size:
            return group, first, size, index - first
        group, first = group + 1, first + size


def obs_id_of(seed: int, group: int) -> str:
    """A unique 10-digit ObsID per group (an injective map of the group number)."""
    proposal = 10000 + (group * 7919 + seed * 104729) % 89990
    return f"{proposal:06d}0101"


def scene_of(seed: int, index: int, config: SimConfig) -> Scene:
    """The scene of image ``index``: its ObsID's shared field seen in one of its filters."""
    group, first, size, pos = group_of(seed, index, config)
    field_rng = np.random.default_rng([seed, first, 7])
    filters = draw_filters(field_rng, config, size)
    field = draw_field(field_rng, config, obs_id=obs_id_of(seed, group), filters=filters)
    return draw_scene(np.random.default_rng([seed, index]), field, filters[pos], config)


def split_of(seed: int, index: int, valid_fraction: float, config: SimConfig) -> str:
    """``valid`` for evenly spaced ObsID groups (a share ``valid_fraction``), else ``train``."""
    group = group_of(seed, index, config)[0]
    hit = np.floor((group + 1) * valid_fraction) > np.floor(group * valid_fraction)
    return "valid" if hit else "train"


def annotations_of(sim: SimulatedFrame) -> tuple[Annotation, ...]:
    """Polygon annotations of the frame's masks (outlines of each mask, exact)."""
    out = []
    for mask, label in zip(sim.masks, sim.labels, strict=True):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        offset = np.array([cols[0], rows[0]], dtype=np.float64)
        polys = tuple(p + offset for p in mask_to_polygons(crop))
        out.append(Annotation(int(label), polys))
    return tuple(out)


def simulate_index(seed: int, index: int, *, binning: int = MASK_BINNING,
                   config: SimConfig | None = None) -> SimulatedFrame:
    """Image ``index`` of the set ``simulate_dataset(..., seed=seed)`` makes (before JPEG).

    Parameters
    ----------
    seed, index : int
        Dataset seed and image index.
    binning : {4, 1}
        4 as written without ``fits``, 1 as written with ``fits``.
    config : SimConfig, optional
        Simulator settings.

    Returns
    -------
    SimulatedFrame
        The image and its ground truth.
    """
    config = SimConfig() if config is None else config
    scene = scene_of(seed, index, config)
    return simulate_scene(scene, np.random.default_rng([seed, index, 1]), config,
                          binning=binning, seed=seed, index=index)


def _one(index: int, *, out: Path, seed: int, fits: bool, valid_fraction: float,
         config: SimConfig) -> tuple[str, ImageRecord]:
    """Simulate and write image ``index``; return its split and record."""
    sim = simulate_index(seed, index, binning=1 if fits else MASK_BINNING, config=config)
    split = split_of(seed, index, valid_fraction, config)
    name = f"{sim.stem}.jpg"
    write_frame(out / "coco" / split / name, sim.frame, quality=95)
    if fits:
        write_fits(out / "fits" / f"{sim.stem}.fits", sim.hdus())
    return split, ImageRecord(name, sim.frame.shape[0], sim.frame.shape[1],
                              annotations_of(sim), image_id=index, meta=sim.meta)


def simulate_dataset(out: str | os.PathLike[str], n: int, *, seed: int = 0, fits: bool = False,
                     valid_fraction: float = 0.25, progress: bool = True,
                     config: SimConfig | None = None, workers: int = 1) -> SimulationSummary:
    """Simulate ``n`` XMM-OM images with exact artefact masks, in the released layouts.

    Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` (plus its ObsID's shared
    field), so it does not depend on ``n``. Splits are by ObsID (all filters of one observation
    in the same split), every ``1 / valid_fraction``-th ObsID in ``valid``.

    Parameters
    ----------
    out : str or path-like
        Output folder: ``OUT/coco/{train,valid}/`` (JPEG frames ``S<ObsID>_<F>.jpg`` and
        ``_annotations.coco.json``), ``OUT/yolo/`` (YOLO-seg + ``data.yaml``), and with ``fits``
        ``OUT/fits/S<ObsID>_<F>.fits`` (2048 x 2048 float32 counts, TAN WCS, OM header cards and
        a ``SOURCES`` table of the true stars).
    n : int
        Number of images (> 0).
    seed : int, optional
        Random seed (default 0).
    fits : bool, optional
        Render at full resolution and write the FITS files (slower).
    valid_fraction : float, optional
        Share of ObsIDs in the valid split, in [0, 1] (default 0.25, as released).
    progress : bool, optional
        Show a progress bar.
    config : SimConfig, optional
        Simulator settings.
    workers : int, optional
        Processes to use (default 1); the output does not depend on it.

    Returns
    -------
    SimulationSummary
        Counts per split, filter and class, and the time taken.

    Raises
    ------
    ValueError
        ``n`` < 1, ``valid_fraction`` outside [0, 1], or ``workers`` < 1.

    Examples
    --------
    >>> print(simulate_dataset("sim", 200, seed=0))  # doctest: +SKIP
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0.0 <= valid_fraction <= 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1], got {valid_fraction!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    start, out = time.perf_counter(), Path(out)
    job = partial(_one, out=out, seed=seed, fits=fits, valid_fraction=valid_fraction,
                  config=SimConfig() if config is None else config)
    results = _run(job, n, workers, progress)
    splits = {s: tuple(r for k, r in results if k == s) for s in SPLITS}
    dataset = Dataset(splits=splits, image_dirs={s: out / "coco" / s for s in SPLITS})
    write_dataset(dataset, out / "coco", layout="coco")
    write_dataset(dataset, out / "yolo", layout="yolo")
    return _summary(out, splits, time.perf_counter() - start)


def _run(job, n: int, workers: int, progress: bool) -> list[tuple[str, ImageRecord]]:
    """Run ``job`` over ``range(n)`` in order, in this process or a pool."""
    bar = partial(tqdm, total=n, disable=not progress, desc="simulate", unit="img")
    if workers == 1:
        return list(bar(map(job, range(n))))
    with ProcessPoolExecutor(workers) as pool:
        return list(bar(pool.map(job, range(n), chunksize=8)))


def _summary(out: Path, splits: dict[str, tuple[ImageRecord, ...]],
             seconds: float) -> SimulationSummary:
    """Tally what was written."""
    records = [r for recs in splits.values() for r in recs]
    classes = Counter(BY_COCO_ID[a.category_id].name for r in records for a in r.annotations)
    return SimulationSummary(
        out=out, images={s: len(r) for s, r in splits.items()},
        filters=dict(sorted(Counter(r.meta["filter"] for r in records).items())),
        instances={c.name: classes.get(c.name, 0) for c in CLASSES},
        empty=sum(1 for r in records if not r.annotations), seconds=seconds)

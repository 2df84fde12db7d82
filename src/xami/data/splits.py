"""Stratified (optionally ObsID-grouped) k-fold splits and a held-out test split.

The authors stratified on the label-powerset string with sklearn ``StratifiedKFold`` (reference
notes §1.6): rare label sets make it warn and it balances neither instances nor ObsIDs. Here each
unit (an image, or all images of one ObsID) is described by its per-class image presence, its
per-class instance counts and its image count. Units are assigned rarest class first to the fold
that still wants most of that class (iterative stratification, Sechidis et al. 2011), then pairs
of units are swapped between folds while that brings every fold's totals closer to its share.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from xami.classes import CLASSES
from xami.data.records import Dataset, ImageRecord
from xami.instrument import parse_frame_name

_CLASS_COLUMN = {c.coco_id: i for i, c in enumerate(CLASSES)}
_MAX_PASSES = 20

FOLDS = 4
"""Number of folds of the cross-validation (the authors': 4)."""

SPLIT_SEED = 42
"""Seed of the splits (the authors': 42)."""


def kfold_assignments(dataset: Dataset, *, k: int = FOLDS, seed: int = SPLIT_SEED,
                      group_by_obsid: bool = False) -> np.ndarray:
    """Fold index of every image, stratified on the classes it contains.

    Parameters
    ----------
    dataset : Dataset
        All images, in ``dataset.records()`` order, are assigned.
    k : int, optional
        Number of folds.
    seed : int, optional
        Random seed; the same seed gives the same folds.
    group_by_obsid : bool, optional
        Keep all images of one ObsID (``meta['obs_id']`` or the file name) in one fold.

    Returns
    -------
    numpy.ndarray
        ``int64 [n_images]`` fold of each image, in ``0..k-1``.

    Raises
    ------
    ValueError
        If ``k < 2`` or there are fewer images (or ObsIDs) than folds.

    Examples
    --------
    >>> folds = kfold_assignments(dataset, k=4, group_by_obsid=True)  # doctest: +SKIP
    """
    _check_k(k)
    records = [rec for _, rec in dataset.records()]
    return _assign(records, np.full(k, 1.0 / k), np.random.default_rng(seed), group_by_obsid)


def split_dataset(dataset: Dataset, *, k: int = FOLDS, fold: int = 0, test_fraction: float = 0.0,
                  group_by_obsid: bool = False, seed: int = SPLIT_SEED) -> Dataset:
    """Re-split all images of a dataset into train / valid (/ test).

    Parameters
    ----------
    dataset : Dataset
        Every image of every split is pooled.
    k : int, optional
        Number of folds: valid is one fold of the images left after the test split.
    fold : int, optional
        Which fold is valid (``0..k-1``); the other folds are train.
    test_fraction : float, optional
        Fraction of the images held out first as a stratified ``test`` split (default 0: none).
    group_by_obsid : bool, optional
        Never put images of one ObsID in two splits.
    seed : int, optional
        Random seed; the same seed gives the same splits.

    Returns
    -------
    Dataset
        Splits ``train``, ``valid`` and, when ``test_fraction > 0``, ``test``; every record's
        ``source`` points at its image file, ids are kept.

    Raises
    ------
    ValueError
        If ``fold`` is not in ``0..k-1``, ``test_fraction`` not in ``[0, 1)``, or there are too
        few images (or ObsIDs).

    Examples
    --------
    >>> split = split_dataset(load_dataset("xami_dataset.zip"), test_fraction=0.1,
    ...                       group_by_obsid=True)  # doctest: +SKIP
    """
    _check_k(k)
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1}, got {fold!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    pool = [replace(rec, source=dataset.image_path(split, rec)) for split, rec in
            dataset.records()]
    names = np.full(len(pool), "train", dtype=object)
    rest = np.arange(len(pool))
    if test_fraction > 0:
        test = _assign(pool, np.array([1.0 - test_fraction, test_fraction]),
                       np.random.default_rng([seed, 1]), group_by_obsid) == 1
        names[test], rest = "test", np.flatnonzero(~test)
    folds = _assign([pool[i] for i in rest], np.full(k, 1.0 / k), np.random.default_rng(seed),
                    group_by_obsid)
    names[rest[folds == fold]] = "valid"
    return _regroup(pool, names)


def _check_k(k: int) -> None:
    """At least two folds."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k!r}")


def _regroup(pool: list[ImageRecord], names: np.ndarray) -> Dataset:
    """A dataset of the pooled records under their new split names."""
    splits: dict[str, tuple[ImageRecord, ...]] = {}
    dirs: dict[str, Path] = {}
    for name in ("train", "valid", "test"):
        records = tuple(rec for rec, n in zip(pool, names, strict=True) if n == name)
        if records or name != "test":
            splits[name] = records
            parents = {str(Path(str(rec.source)).parent) for rec in records} or {"."}
            dirs[name] = Path(os.path.commonpath(sorted(parents)))
    return Dataset(splits, dirs)


def _assign(records: list[ImageRecord], shares: np.ndarray, rng: np.random.Generator,
            group_by_obsid: bool) -> np.ndarray:
    """Fold of each record: stratified assignment of units, refined by swaps."""
    units = _units(records, group_by_obsid)
    if units.max(initial=-1) + 1 < len(shares):
        raise ValueError(f"{units.max(initial=-1) + 1} images/ObsIDs cannot fill "
                         f"{len(shares)} folds")
    features = _features(records, units)
    unit_fold = _initial(features, shares, rng)
    return _refine(features, unit_fold, shares, rng)[units]


def _units(records: list[ImageRecord], group_by_obsid: bool) -> np.ndarray:
    """Unit index of each record: one per image, or one per ObsID."""
    if not group_by_obsid:
        return np.arange(len(records))
    keys = [_obs_id(rec) for rec in records]
    index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return np.array([index[key] for key in keys], dtype=np.int64)


def _obs_id(record: ImageRecord) -> str:
    """ObsID from ``meta``, else from the file name, else the file stem (its own group)."""
    if "obs_id" in record.meta:
        return str(record.meta["obs_id"])
    parsed = parse_frame_name(record.file_name)
    return record.stem if parsed is None else parsed[0]


def _features(records: list[ImageRecord], units: np.ndarray) -> np.ndarray:
    """Per unit: images with each class, instances of each class, images ``[U, 2C + 1]``."""
    n_classes = len(CLASSES)
    features = np.zeros((units.max(initial=-1) + 1, 2 * n_classes + 1))
    for rec, unit in zip(records, units, strict=True):
        columns = [_CLASS_COLUMN[a.category_id] for a in rec.annotations]
        np.add.at(features[unit], np.asarray(columns, dtype=np.int64) + n_classes, 1.0)
        features[unit, sorted(set(columns))] += 1.0
        features[unit, -1] += 1.0
    return features


def _initial(features: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Iterative stratification: rarest class first, to the fold that wants it most."""
    n_classes = (features.shape[1] - 1) // 2
    presence = features[:, :n_classes]
    rarity = np.where(presence > 0, presence.sum(axis=0), np.inf)
    rarest = np.where(presence.any(axis=1), rarity.argmin(axis=1), features.shape[1] - 1)
    order = rng.permutation(len(features))
    order = order[np.argsort(rarity.min(axis=1)[order], kind="stable")]
    wanted = shares[:, None] * features.sum(axis=0)
    folds = np.zeros(len(features), dtype=np.int64)
    for unit in order:
        has_room = wanted[:, -1] >= features[unit, -1] / 2
        keys = (rng.random(len(shares)), wanted[:, -1], wanted[:, rarest[unit]], has_room)
        folds[unit] = np.lexsort(keys)[-1]
        wanted[folds[unit]] -= features[unit]
    return folds


def _refine(features: np.ndarray, folds: np.ndarray, shares: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Swap pairs of units between folds while the squared relative misfit decreases."""
    scaled = features / np.maximum(features.sum(axis=0), 1.0)
    target = shares[:, None] * scaled.sum(axis=0)
    totals = np.stack([scaled[folds == f].sum(axis=0) for f in range(len(shares))])
    for _ in range(_MAX_PASSES):
        swapped = False
        for unit in rng.permutation(len(features)):
            other = _best_swap(scaled, folds, totals, target, unit)
            if other >= 0:
                a, b = folds[unit], folds[other]
                delta = scaled[other] - scaled[unit]
                totals[a] += delta
                totals[b] -= delta
                folds[unit], folds[other] = b, a
                swapped = True
        if not swapped:
            break
    return folds


def _best_swap(scaled: np.ndarray, folds: np.ndarray, totals: np.ndarray, target: np.ndarray,
               unit: int) -> int:
    """The unit whose swap with ``unit`` lowers the misfit most, or -1."""
    a = folds[unit]
    delta = scaled - scaled[unit]
    misfit_a = totals[a] - target[a]
    misfit_b = totals[folds] - target[folds]
    gain = (np.sum(misfit_a**2) + np.sum(misfit_b**2, axis=1)
            - np.sum((misfit_a + delta) ** 2, axis=1) - np.sum((misfit_b - delta) ** 2, axis=1))
    gain[folds == a] = 0.0
    best = int(np.argmax(gain))
    return best if gain[best] > 1e-12 else -1

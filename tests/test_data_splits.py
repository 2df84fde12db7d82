"""Stratified k-fold splits: class balance, ObsID grouping, held-out test split, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from _data_factory import xami_like
from xami.classes import CLASSES
from xami.data.records import Dataset, ImageRecord
from xami.data.splits import kfold_assignments, split_dataset

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def class_fractions(records: list[ImageRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Per class: fraction of the instances, fraction of the images containing it."""
    ids = [a.category_id for r in records for a in r.annotations]
    instances = np.array([ids.count(c.coco_id) for c in CLASSES]) / len(ids)
    images = np.array([sum(any(a.category_id == c.coco_id for a in r.annotations)
                           for r in records) for c in CLASSES]) / len(records)
    return instances, images


def fold_spread(dataset: Dataset, folds: np.ndarray) -> tuple[float, float]:
    """Largest between-fold difference of per-class instance and image fractions."""
    records = [rec for _, rec in dataset.records()]
    per_fold = [class_fractions([r for r, f in zip(records, folds, strict=True) if f == k])
                for k in range(folds.max() + 1)]
    instances, images = (np.array([p[i] for p in per_fold]) for i in (0, 1))
    return float(np.ptp(instances, axis=0).max()), float(np.ptp(images, axis=0).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folds_balance_classes_within_002(seed: int) -> None:
    dataset = xami_like(200, seed)
    folds = kfold_assignments(dataset, k=4, seed=42)
    assert np.bincount(folds).tolist() == [50, 50, 50, 50]
    instance_spread, image_spread = fold_spread(dataset, folds)
    assert instance_spread <= 0.02
    assert image_spread <= 0.02 + 1e-12  # one image of 50: the finest possible


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_folds_keep_obsids_together_and_balance(seed: int) -> None:
    dataset = xami_like(200, seed, n_obs=140)
    folds = kfold_assignments(dataset, k=4, seed=42, group_by_obsid=True)
    obs_fold: dict[str, set[int]] = {}
    for (_, rec), fold in zip(dataset.records(), folds, strict=True):
        obs_fold.setdefault(rec.file_name[1:11], set()).add(int(fold))
    assert all(len(f) == 1 for f in obs_fold.values())
    assert any(len(rec) > 1 for rec in _images_per_obs(dataset).values())
    assert fold_spread(dataset, folds)[0] <= 0.02
    assert np.ptp(np.bincount(folds)) <= 4


def _images_per_obs(dataset: Dataset) -> dict[str, list[str]]:
    """File names of each ObsID."""
    out: dict[str, list[str]] = {}
    for _, rec in dataset.records():
        out.setdefault(rec.file_name[1:11], []).append(rec.file_name)
    return out


def test_deterministic_for_a_seed() -> None:
    dataset = xami_like(120, 3)
    a = kfold_assignments(dataset, seed=7)
    np.testing.assert_array_equal(a, kfold_assignments(dataset, seed=7))
    assert not np.array_equal(a, kfold_assignments(dataset, seed=8))


def test_split_dataset_with_grouped_test_split() -> None:
    dataset = xami_like(200, 4, n_obs=150)
    split = split_dataset(dataset, k=4, fold=1, test_fraction=0.2, group_by_obsid=True)
    assert list(split.splits) == ["train", "valid", "test"]
    names = {s: {r.file_name[1:11] for r in recs} for s, recs in split.splits.items()}
    assert not names["train"] & names["valid"]
    assert not names["test"] & (names["train"] | names["valid"])
    ids = sorted(r.image_id for _, r in split.records())
    assert ids == list(range(200))
    sizes = {s: len(r) for s, r in split.splits.items()}
    assert abs(sizes["test"] - 40) <= 3 and abs(sizes["valid"] - 40) <= 3
    rec = split.splits["test"][0]
    assert split.image_path("test", rec) == dataset.image_dirs["all"] / rec.file_name
    test_inst, _ = class_fractions(list(split.splits["test"]))
    rest_inst, _ = class_fractions(list(split.splits["train"] + split.splits["valid"]))
    assert np.abs(test_inst - rest_inst).max() <= 0.02


def test_no_test_split_by_default_and_valid_is_the_fold() -> None:
    dataset = xami_like(40, 5)
    folds = kfold_assignments(dataset, k=4, seed=42)
    split = split_dataset(dataset, k=4, fold=2)
    assert list(split.splits) == ["train", "valid"]
    expected = {r.image_id for (_, r), f in zip(dataset.records(), folds, strict=True) if f == 2}
    assert {r.image_id for r in split.splits["valid"]} == expected


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"k": 1, "fold": 0}, r"k must be at least 2, got 1"),
    ({"fold": 4}, r"fold must be in 0\.\.3, got 4"),
    ({"test_fraction": 1.0}, r"test_fraction must be in \[0, 1\), got 1\.0"),
    ({"k": 10}, r"9 images/ObsIDs cannot fill 10 folds"),
])
def test_split_argument_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        split_dataset(xami_like(9, 0), **kwargs)  # type: ignore[arg-type]


def test_k_below_two() -> None:
    with pytest.raises(ValueError, match=r"k must be at least 2, got 1"):
        kfold_assignments(xami_like(9, 0), k=1)

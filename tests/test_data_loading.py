"""load_dataset auto-detection (COCO, simulate layout, YOLO, json, XAMI zip) and write_dataset."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from _data_factory import tiny_dataset
from xami.data.coco import COCO_FILE_NAME
from xami.data.loading import load_dataset, write_dataset
from xami.data.records import Dataset
from xami.errors import DatasetError

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def counts(dataset: Dataset) -> dict[str, int]:
    """Images per split."""
    return {split: len(recs) for split, recs in dataset.splits.items()}


def make_zip(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A zip in the official layout: ``xami_dataset/{train,valid}/`` COCO json + jpgs."""
    write_dataset(tiny_dataset(tmp_path / "src", rng), tmp_path / "xami_dataset", layout="coco")
    zip_path = tmp_path / "dl" / "xami_dataset.zip"
    zip_path.parent.mkdir()
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted((tmp_path / "xami_dataset").rglob("*")):
            zf.write(path, path.relative_to(tmp_path).as_posix())
    return zip_path


def test_detects_every_layout(tmp_path: Path, rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "sim" / "coco", rng)
    write_dataset(dataset, tmp_path / "sim" / "coco", layout="coco")
    write_dataset(dataset, tmp_path / "sim" / "yolo", layout="yolo")
    expected = {"train": 3, "valid": 2}
    assert counts(load_dataset(tmp_path / "sim")) == expected  # picks sim/coco
    assert counts(load_dataset(tmp_path / "sim" / "coco")) == expected
    assert counts(load_dataset(tmp_path / "sim" / "yolo")) == expected
    assert counts(load_dataset(tmp_path / "sim" / "coco" / "valid")) == {"valid": 2}
    assert counts(load_dataset(tmp_path / "sim/coco/train" / COCO_FILE_NAME)) == {"train": 3}
    yolo = load_dataset(tmp_path / "sim" / "yolo")
    assert yolo.image_dirs["valid"] == tmp_path / "sim/yolo/valid/images"


def test_single_json_elsewhere_is_split_all(tmp_path: Path, rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "src", rng)
    write_dataset(dataset, tmp_path / "out", layout="coco")
    (tmp_path / "out/train").rename(tmp_path / "out/data")
    loaded = load_dataset(tmp_path / "out/data")
    assert counts(loaded) == {"all": 3}
    assert loaded.image_dirs["all"] == tmp_path / "out/data"


def test_official_zip_is_extracted_once_and_safely(tmp_path: Path,
                                                  rng: np.random.Generator) -> None:
    zip_path = make_zip(tmp_path, rng)
    dataset = load_dataset(zip_path)
    assert counts(dataset) == {"train": 3, "valid": 2}
    extracted = tmp_path / "dl" / "xami_dataset.extracted"
    assert dataset.image_dirs["train"] == extracted / "xami_dataset" / "train"
    assert dataset.image_path("train", dataset.splits["train"][0]).is_file()
    marker = extracted / ".xami-extracted"
    stamp = marker.stat().st_mtime_ns
    assert counts(load_dataset(zip_path)) == {"train": 3, "valid": 2}
    assert marker.stat().st_mtime_ns == stamp  # reused, not extracted again
    cached = load_dataset(zip_path, cache_dir=tmp_path / "cache")
    assert cached.image_dirs["valid"].is_relative_to(tmp_path / "cache")


def test_unsafe_zip_members_are_refused(tmp_path: Path) -> None:
    zip_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("xami_dataset/train/ok.txt", "fine")
        zf.writestr("../escaped.txt", "bad")
    with pytest.raises(DatasetError, match=r"evil\.zip: unsafe member '\.\./escaped\.txt'"):
        load_dataset(zip_path)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "evil.extracted").exists()


def test_unrecognised_inputs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DatasetError, match=r"not a dataset: expected data\.yaml"):
        load_dataset(tmp_path)
    (tmp_path / "fake.zip").write_text("no zip")
    with pytest.raises(DatasetError, match=r"fake\.zip: not a zip file"):
        load_dataset(tmp_path / "fake.zip")
    with pytest.raises(DatasetError, match=r"nowhere: no such file or folder"):
        load_dataset(tmp_path / "nowhere")


def test_write_dataset_links_and_leaves_images_in_place(tmp_path: Path,
                                                       rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "sim" / "coco", rng)
    image = tmp_path / "sim/coco/train/S0000000001_U.jpg"
    inode = image.stat().st_ino
    write_dataset(dataset, tmp_path / "sim" / "coco", layout="coco")  # the simulator's call
    assert image.stat().st_ino == inode and image.stat().st_nlink == 1
    write_dataset(dataset, tmp_path / "copy", layout="coco")
    assert (tmp_path / "copy/train/S0000000001_U.jpg").stat().st_ino == inode
    assert sorted(p.name for p in (tmp_path / "copy/valid").iterdir()) == [
        "S0000000004_L.jpg", "S0000000005_L.jpg", COCO_FILE_NAME]


def test_write_dataset_errors(tmp_path: Path, rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "src", rng)
    with pytest.raises(ValueError, match=r"layout must be one of \('coco', 'yolo'\), got 'voc'"):
        write_dataset(dataset, tmp_path / "out", layout="voc")
    (tmp_path / "src/valid/S0000000005_L.jpg").unlink()
    with pytest.raises(DatasetError, match=r"S0000000005_L\.jpg: image file not found"):
        write_dataset(dataset, tmp_path / "out", layout="coco")

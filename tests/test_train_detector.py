"""Detector training through ultralytics: one tiny epoch offline, checkpoint, resume, errors."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from xami.data import Annotation, Dataset, ImageRecord, read_yolo, write_dataset
from xami.data.polygons import mask_to_polygons
from xami.errors import CheckpointError, DatasetError
from xami.io.images import write_frame
from xami.models.build import load_detector
from xami.train.detector import DetectorTrainConfig, train_detector


def _tiny_dataset(root, rng: np.random.Generator) -> Dataset:
    """Eight 64x64 frames with a bright bar (read-out streak) and a blob (smoke ring)."""
    splits, dirs = {}, {}
    for split, n in (("train", 6), ("valid", 2)):
        dirs[split] = root / "coco" / split
        records = []
        for i in range(n):
            frame = (40 + rng.normal(0, 8, (64, 64))).clip(1, 255).astype(np.uint8)
            bar = np.zeros((64, 64), bool)
            bar[:, 10 + 4 * i:14 + 4 * i] = True
            blob = np.hypot(*np.mgrid[-40:24, -40:24]) < 6
            frame[bar | blob] = 220
            name = f"S00000000{i:02d}_{split[0].upper()}.png"
            write_frame(dirs[split] / name, frame)
            anns = tuple(Annotation(cid, mask_to_polygons(m)) for cid, m in ((3, bar), (4, blob)))
            records.append(ImageRecord(name, 64, 64, anns, image_id=i + 1))
        splits[split] = tuple(records)
    dataset = Dataset(splits, dirs)
    write_dataset(dataset, root / "coco", layout="coco")
    write_dataset(dataset, root / "yolo", layout="yolo")
    return dataset


TINY = DetectorTrainConfig(epochs=1, batch=4, imgsz=64, threads=2, streak_label_width=8.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    _tiny_dataset(root, np.random.default_rng(0))
    best = train_detector(root, root / "run", config=TINY)
    return root, best


def test_training_writes_checkpoints_and_config(trained):
    root, best = trained
    assert best.is_file() and (root / "run" / "weights" / "last.pt").is_file()
    assert json.loads((root / "run" / "xami_config.json").read_text())["imgsz"] == 64


def test_streak_labels_are_widened_for_training_only(trained):
    root, _ = trained
    given, used = read_yolo(root / "yolo"), read_yolo(root / "run" / "data")
    for split in ("train", "valid"):
        for before, after in zip(given.splits[split], used.splits[split], strict=True):
            assert before.file_name == after.file_name
            streak_before, blob_before = (a.bbox for a in before.annotations)
            streak_after, blob_after = (a.bbox for a in after.annotations)
            assert streak_before[2] - streak_before[0] == 4
            np.testing.assert_allclose(streak_after, np.add(streak_before, [-2, 0, 2, 0]))
            np.testing.assert_array_equal(blob_after, blob_before)
            image = used.image_path(split, after)
            assert image.stat().st_ino == given.image_path(split, before).stat().st_ino


def test_trained_checkpoint_loads_as_detector(trained):
    _, best = trained
    detector = load_detector(best, backend="torch")
    inst = detector.predict(np.full((64, 64), 40, np.uint8))
    assert inst.masks.shape[1:] == (64, 64)


def test_build_train_predict_make_no_network_attempt(tmp_path, monkeypatch, capfd):
    _tiny_dataset(tmp_path, np.random.default_rng(1))

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    best = train_detector(tmp_path / "yolo" / "data.yaml", tmp_path / "run", config=TINY)
    load_detector(best, backend="torch").predict(np.full((64, 64), 40, np.uint8))
    printed = "".join(capfd.readouterr()).lower()
    assert "download" not in printed and "offline" not in printed


def test_missing_data_yaml_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"no YOLO data\.yaml"):
        train_detector(tmp_path, tmp_path / "run", config=TINY)


def test_resume_without_checkpoint_is_named(trained, tmp_path):
    root, _ = trained
    with pytest.raises(CheckpointError, match=r"last\.pt: cannot resume"):
        train_detector(root, tmp_path / "fresh", config=TINY, resume=True)

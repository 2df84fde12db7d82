"""Detector wrapper: offline build, class mapping, output shapes, checkpoint errors."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from xami.classes import CLASSES
from xami.errors import CheckpointError, InputError
from xami.models.build import load_detector
from xami.models.detector import DetectorConfig, as_bgr


@pytest.fixture(scope="module")
def untrained():
    """An untrained yolov8n-seg with the XAMI classes (built offline from the yaml, seeded)."""
    torch.manual_seed(0)
    return load_detector("yolov8n-seg.yaml", config=DetectorConfig(conf=1e-9, max_det=20),
                         backend="torch")


def test_untrained_model_has_xami_classes(untrained):
    assert untrained.model.names == {c.yolo_index: c.name for c in CLASSES}


def test_predict_returns_instances_at_input_size(untrained, rng):
    image = (rng.random((128, 192)) * 255).astype(np.uint8)
    inst = untrained.predict(image)
    assert 0 < len(inst) <= 20
    assert inst.masks.shape == (len(inst), 128, 192)
    assert set(inst.labels.tolist()) <= {c.coco_id for c in CLASSES}
    assert (inst.boxes[:, 2] <= 192 + 1e-3).all() and (inst.boxes[:, 3] <= 128 + 1e-3).all()
    assert ((inst.scores >= 1e-9) & (inst.scores <= 1)).all()


def test_predict_makes_no_network_attempt(untrained, rng, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    untrained.predict((rng.random((64, 64)) * 255).astype(np.uint8))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing\.pt: detector checkpoint not found"):
        load_detector(tmp_path / "nothing.pt", backend="torch")


def test_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a loadable ultralytics checkpoint"):
        load_detector(bad, backend="torch")


@pytest.mark.parametrize("image, problem", [
    (np.zeros((8, 8), np.float32), "uint8"),
    (np.zeros((8, 8, 4), np.uint8), r"\[H, W\] or \[H, W, 3\]"),
    (np.zeros((0, 8), np.uint8), r"\[H, W\] or \[H, W, 3\]"),
])
def test_bad_images_are_rejected(image, problem):
    with pytest.raises(InputError, match=problem):
        as_bgr(image)

"""Pipeline: frames in (arrays only), detector-only results, empty results warn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import xami
from xami.errors import NoDetectionsWarning
from xami.models.detector import DetectorConfig, load_detector
from xami.pipeline import Pipeline


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return load_detector("yolov8n-seg.yaml", config=DetectorConfig(max_det=10), backend="torch")


@pytest.fixture
def frame(rng):
    return (rng.random((128, 128)) * 200 + 20).astype(np.uint8)


def test_public_names_are_exported():
    assert xami.Pipeline is Pipeline and xami.load_detector is load_detector


def test_detector_only_results_have_frame_size(detector, frame):
    inst = Pipeline(detector, conf=1e-9).predict(frame)
    assert 0 < len(inst) <= 10
    assert inst.masks.shape == (len(inst), 128, 128)


def test_no_detection_warns_and_returns_empty(detector, frame):
    with pytest.warns(NoDetectionsWarning, match="no artefact detected"):
        inst = Pipeline(detector, conf=0.999).predict(frame)
    assert len(inst) == 0 and inst.masks.shape == (0, 128, 128)


@pytest.mark.parametrize("path", ["S0743200101_V.fits", Path("S0743200101_V.png")])
def test_predict_takes_frames_not_files(detector, path):
    with pytest.raises(TypeError, match=r"frame must be a numpy array .*got (str|\w*Path) .*"
                                        r"S0743200101_V.* xami\.io\.frames\.load_input"):
        Pipeline(detector).predict(path)

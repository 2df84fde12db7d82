"""Pipeline: inputs (array, PNG, FITS), detector-only results, empty results warn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xami
from xami.errors import NoDetectionsWarning
from xami.io.fits import write_image_fits
from xami.io.images import write_frame
from xami.models.build import load_detector
from xami.models.detector import DetectorConfig
from xami.pipeline import Pipeline, read_input_frame


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


def test_png_and_fits_inputs_give_the_frame(tmp_path, frame):
    write_frame(tmp_path / "S0000000001_U.png", frame)
    np.testing.assert_array_equal(read_input_frame(tmp_path / "S0000000001_U.png"), frame)
    counts = np.flipud(frame).astype(np.float32)  # FITS rows run bottom-up
    write_image_fits(tmp_path / "S0000000001_U.fits", counts)
    fits_frame = read_input_frame(str(tmp_path / "S0000000001_U.fits") + "[0]")
    assert fits_frame.shape == (128, 128)
    # the stretch is monotonic and flips rows back: the brightest pixel stays in place
    assert np.unravel_index(fits_frame.argmax(), frame.shape) == np.unravel_index(
        frame.argmax(), frame.shape)

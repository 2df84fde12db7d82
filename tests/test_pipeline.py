"""Pipeline: frames in (arrays only), detector-only results, empty results warn; the spec
describes what runs, models given included, and provenance reads it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import xami
from xami.errors import InputError, NoDetectionsWarning
from xami.models.build import load_detector, load_segmentor
from xami.models.detector import DetectorConfig
from xami.models.onnx import BUNDLED_ONNX
from xami.models.segmentor import SegmentorConfig, build_segmentor
from xami.pipeline import Pipeline, PipelineSpec
from xami.predict.provenance import provenance


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return load_detector("yolov8n-seg.yaml", config=DetectorConfig(max_det=10), backend="torch")


@pytest.fixture(scope="module")
def sam_checkpoint(tmp_path_factory):
    """A random MobileSAM checkpoint saved at 256 pixels."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "sam.pt"
    torch.save(build_segmentor(SegmentorConfig(sam_size=256)).checkpoint(), path)
    return path


@pytest.fixture
def frame(rng):
    return (rng.random((128, 128)) * 200 + 20).astype(np.uint8)


def test_public_names_are_exported():
    assert xami.Pipeline is Pipeline and xami.load_detector is load_detector


def test_detector_only_results_have_frame_size(detector, frame):
    inst = Pipeline(PipelineSpec(conf=1e-9), detector=detector).predict(frame)
    assert 0 < len(inst) <= 10
    assert inst.masks.shape == (len(inst), 128, 128)


def test_no_detection_warns_and_returns_empty(detector, frame):
    with pytest.warns(NoDetectionsWarning, match="no artefact detected"):
        inst = Pipeline(PipelineSpec(conf=0.999), detector=detector).predict(frame)
    assert len(inst) == 0 and inst.masks.shape == (0, 128, 128)


def test_a_given_detector_is_described_by_the_spec(detector):
    """Settings come from the spec; the model's file and backend from the model."""
    pipe = Pipeline(PipelineSpec(conf=0.3, priors=None), detector=detector)
    assert pipe.detector is detector and pipe.segmentor is None
    assert detector.config.conf == DetectorConfig.conf  # the pipeline's conf is passed, not set
    assert (pipe.spec.detector, pipe.spec.backend) == (os.path.abspath(detector.source), "torch")
    settings = provenance(pipe.spec)["settings"]
    assert (settings["conf"], settings["backend"], settings["priors"]) == (0.3, "torch", None)


def test_provenance_reads_the_backend_not_the_file_name(tmp_path):
    """An ONNX file named ``.ONNX`` runs on ONNX Runtime, and the run says so."""
    shutil.copy(BUNDLED_ONNX, tmp_path / "det.ONNX")
    detector = load_detector(tmp_path / "det.ONNX", backend="onnx")
    prov = provenance(Pipeline(detector=detector).spec)
    assert prov["settings"]["backend"] == "onnx"
    assert prov["models"]["detector"]["path"] == str(tmp_path / "det.ONNX")


def test_a_spec_and_its_pipeline_state_the_same(sam_checkpoint):
    """A local run of a built pipeline records what a Dask run of its spec records:
    ``sam_size`` None when the checkpoint's own size is used."""
    spec = PipelineSpec(segmentor=sam_checkpoint, backend="torch", conf=0.3)
    pipe = spec.build()
    assert pipe.spec == spec and pipe.segmentor.config.sam_size == 256
    assert pipe.detector.backend == pipe.segmentor.backend == "torch"
    assert provenance(pipe.spec) == provenance(spec)
    assert provenance(spec)["settings"]["sam_size"] is None


def test_a_given_segmentor_sets_the_backend_the_detector_loads_on(sam_checkpoint):
    segmentor = load_segmentor(sam_checkpoint, backend="torch")
    pipe = Pipeline(segmentor=segmentor)
    assert pipe.segmentor is segmentor and pipe.detector.backend == "torch"
    assert (pipe.spec.segmentor, pipe.spec.sam_size, pipe.spec.backend) == (
        str(sam_checkpoint), 256, "torch")
    onnx_detector = load_detector(backend="onnx")
    with pytest.raises(InputError, match="detector runs on onnx and the segmentor on torch"):
        Pipeline(detector=onnx_detector, segmentor=segmentor)


@pytest.mark.parametrize("path", ["S0743200101_V.fits", Path("S0743200101_V.png")])
def test_predict_takes_frames_not_files(detector, path):
    with pytest.raises(TypeError, match=r"frame must be a numpy array .*got (str|\w*Path) .*"
                                        r"S0743200101_V.* xami\.io\.frames\.load_input"):
        Pipeline(detector=detector).predict(path)

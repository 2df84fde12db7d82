"""`xami.models.build`: one contract over interchangeable engines, and no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import xami.models
from xami.models.build import BACKENDS, bundled_detector, load_detector
from xami.models.detector import Detector, DetectorConfig
from xami.pipeline import Pipeline, PipelineSpec
from xami.sim import simulate_image

MODELS = Path(xami.models.__file__).parent
ENGINES = {"xami.models.ultralytics_detector": "xami.models.yolo_onnx",
           "xami.models.segmentor": "xami.models.sam_onnx"}
"""Each model's torch engine and its ONNX Runtime engine."""


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    """The bundled detector on each engine."""
    return {backend: load_detector(backend=backend) for backend in BACKENDS}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Simulated 512 px frames, each with detections above and below 0.3."""
    return [simulate_image(seed).frame for seed in (1, 2)]


def test_both_detector_engines_keep_one_contract(detectors, frames):
    for backend, detector in detectors.items():
        assert isinstance(detector, Detector) and detector.backend == backend
        assert detector.source == str(bundled_detector(backend))
        assert detector.config == DetectorConfig()
    for frame in frames:
        default, strict = ({backend: detector.predict(frame, conf=conf)
                            for backend, detector in detectors.items()} for conf in (None, 0.3))
        for found in (default, strict):
            torch_found, onnx_found = found["torch"], found["onnx"]
            assert len(onnx_found) == len(torch_found) > 0
            np.testing.assert_array_equal(onnx_found.labels, torch_found.labels)
            np.testing.assert_allclose(onnx_found.boxes, torch_found.boxes, atol=1e-3)
            np.testing.assert_allclose(onnx_found.scores, torch_found.scores, atol=1e-4)
        for backend in BACKENDS:  # conf=0.3 keeps exactly the default's detections above 0.3
            above = default[backend].scores > 0.3
            assert 0 < above.sum() == len(strict[backend]) < len(default[backend])
            np.testing.assert_array_equal(strict[backend].boxes, default[backend].boxes[above])
    assert all(d.config == DetectorConfig() for d in detectors.values())  # conf passed, not set


def test_pipeline_passes_its_conf_and_leaves_the_detector_alone(detectors, frames):
    detector = detectors["onnx"]
    pipe = Pipeline(PipelineSpec(conf=0.3, streak_fit=None, priors=None), detector=detector)
    assert pipe.spec.conf == 0.3 and detector.config.conf == DetectorConfig.conf
    found, expected = pipe.predict(frames[0]), detector.predict(frames[0], conf=0.3)
    assert len(found) == len(expected) > 0 and (found.scores >= 0.3).all()
    np.testing.assert_array_equal(found.labels, expected.labels)
    assert detector.config.conf == DetectorConfig.conf


def imported(module: str) -> set[str]:
    """Every ``xami`` module ``module`` imports, at its top or inside a function."""
    tree = ast.parse((MODELS / f"{module.rsplit('.', 1)[1]}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("xami.")}


def test_engines_do_not_import_each_other_and_nothing_imports_the_builder():
    models = {f"xami.models.{p.stem}" for p in MODELS.glob("*.py") if p.stem != "__init__"}
    imports = {module: imported(module) & models for module in models}
    for torch_engine, onnx_engine in ENGINES.items():
        assert onnx_engine not in imports[torch_engine]
        assert torch_engine not in imports[onnx_engine]
        assert {torch_engine, onnx_engine} <= imports["xami.models.build"]
    assert not [m for m, names in imports.items() if "xami.models.build" in names]
    seen: list[str] = []

    def visit(module: str) -> None:
        assert module not in seen, f"import cycle: {' -> '.join([*seen, module])}"
        seen.append(module)
        for name in imports[module]:
            visit(name)
        seen.pop()

    for module in models:
        visit(module)

"""No model file runs code: malicious pickles are refused, real ultralytics checkpoints load."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from xami.cli import main
from xami.errors import CheckpointError
from xami.io.images import write_frame
from xami.models.build import bundled_detector, load_detector
from xami.models.safe_load import read_ultralytics_checkpoint
from xami.models.ultralytics_setup import ultralytics_offline


class Evil:
    """Touches ``target`` when unpickled (as an attacker's ``os.system`` payload would)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.target}",))


@pytest.fixture(params=["dict", "bare"])
def evil_pt(request, tmp_path) -> Path:
    """A malicious ``.pt``: ``{"model": Evil(), "train_args": {}}`` or a bare ``Evil()``."""
    evil = Evil(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"model": evil, "train_args": {}} if request.param == "dict" else evil, path)
    return path


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_malicious_detector_is_refused_without_running(evil_pt, backend):
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a loadable ultralytics checkpoint: "
                                              r"it refers to \S*system"):
        load_detector(evil_pt, backend=backend)
    assert not (evil_pt.parent / "pwned").exists()


def test_malicious_detector_via_predict_cli(evil_pt, tmp_path, capsys):
    frame = tmp_path / "frame.png"
    write_frame(frame, np.full((64, 64), 40, np.uint8))
    code = main(["predict", str(frame), "--detector", str(evil_pt), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert "evil.pt: not a loadable ultralytics checkpoint" in err and "Traceback" not in err
    assert "weights_only=False" not in err
    assert not (tmp_path / "pwned").exists()


def test_legacy_format_pickle_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"model": Evil(tmp_path / "pwned")}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"old\.pt: .* it refers to \S*system"):
        read_ultralytics_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_without_a_model_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"model": {"conv.weight": torch.zeros(2)}, "train_args": {}}, path)
    with pytest.raises(CheckpointError, match=r"weights\.pt: .* no ultralytics model"):
        load_detector(path, backend="torch")


def test_bundled_weights_load():
    assert type(read_ultralytics_checkpoint(bundled_detector("torch"))["model"]).__name__ == \
        "SegmentationModel"
    assert load_detector(backend="torch").model.names[0] == "central-ring"


@pytest.mark.parametrize("yaml_name", ["yolov8n-seg.yaml", "yolov8n-rtdetr.yaml"])
def test_checkpoint_saved_by_ultralytics_loads(tmp_path, yaml_name):
    torch.manual_seed(0)
    path = tmp_path / yaml_name.replace(".yaml", ".pt")
    # ultralytics' own layout: model, date, version...
    load_detector(yaml_name, backend="torch").model.save(path)
    assert {"model", "date", "version"} <= set(torch.load(path, weights_only=False))
    names = load_detector(yaml_name, backend="torch").model.names
    assert load_detector(path, backend="torch").model.names == names


def test_authors_layout_loads(tmp_path):
    """ultralytics 8.1 YOLOv8-seg: ``Segment.detect = Detect.forward`` (pickled via getattr),
    half-precision model, numpy scalars in the metrics."""
    ultralytics_offline()
    from ultralytics.nn.modules.head import Detect

    torch.manual_seed(0)
    model = load_detector("yolov8n-seg.yaml", backend="torch").model.model
    model.model[-1].detect = Detect.forward
    path = tmp_path / "yolov8_detect_300e_best.pt"
    torch.save({"date": datetime.datetime(2024, 1, 1).isoformat(), "version": "8.1.0",
                "epoch": 299, "best_fitness": np.float64(0.5), "model": model.half(), "ema": None,
                "optimizer": None, "train_args": {"task": "segment", "imgsz": 512},
                "train_metrics": {"metrics/mAP50(M)": np.float64(0.5)}}, path)
    assert read_ultralytics_checkpoint(path)["model"].model[-1].detect is Detect.forward
    inst = load_detector(path, backend="torch").predict(np.full((64, 64), 40, np.uint8))
    assert inst.masks.shape[1:] == (64, 64)

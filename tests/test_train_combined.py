"""Combined stage: detector boxes -> segmentor, Hungarian-matched training, empty cases, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from test_train_segmentor import SAM_SIZE, SIZE, params, random_init, same, tiny_dataset
from xami.cli import main
from xami.models.build import load_detector, load_segmentor
from xami.models.detector import DetectorConfig
from xami.train.combined import CombinedTrainConfig, detect_boxes, matched_loss, train_combined
from xami.train.data import encode_frozen, make_sample


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny dataset, random segmentor checkpoint and an untrained detector (seeded)."""
    tmp = tmp_path_factory.mktemp("combined")
    tiny_dataset(tmp / "data")
    random_init(tmp / "init.pt")
    torch.manual_seed(0)
    detector = load_detector("yolov8n-seg.yaml", config=DetectorConfig(imgsz=SIZE, max_det=4),
                             backend="torch")
    return tmp, detector


def tiny_config(tmp, **changes) -> CombinedTrainConfig:
    """One epoch at 128 px, up to 2 detector boxes per image, a very low confidence."""
    base = {"sam_size": SAM_SIZE, "epochs": 1, "batch_size": 2, "conf": 0.001,
            "max_boxes_per_image": 2, "cache_dir": str(tmp / "cache"),
            "schedule": {"lr0": 1e-3, "lr_final": 1e-3, "decay_steps": 0}}
    return CombinedTrainConfig(**{**base, **changes})


def test_combined_trains_the_decoder_only(setup):
    tmp, detector = setup
    best = train_combined(tmp / "data", tmp / "run", detector=detector,
                          segmentor=tmp / "init.pt", config=tiny_config(tmp), progress=False)
    rows = json.loads((tmp / "run" / "metrics.json").read_text())
    assert rows[0]["step"] == 1 and math.isfinite(rows[0]["train_total"])
    before = torch.load(tmp / "init.pt", weights_only=True)["model"]
    after = torch.load(best, weights_only=True)
    assert after["kind"] == "combined" and after["train_config"]["conf"] == 0.001
    for part in ("image_encoder.", "prompt_encoder."):
        assert same(params(before, part), params(after["model"], part))
    assert not same(params(before, "mask_decoder."), params(after["model"], "mask_decoder."))
    assert load_segmentor(best, sam_size=SAM_SIZE, backend="torch").config.sam_size == SAM_SIZE


def test_no_detection_anywhere_takes_no_step(setup):
    tmp, detector = setup
    config = tiny_config(tmp, conf=1.0, epochs=2)  # nothing reaches confidence 1
    best = train_combined(tmp / "data", tmp / "empty", detector=detector,
                          segmentor=tmp / "init.pt", config=config, progress=False)
    rows = json.loads((tmp / "empty" / "metrics.json").read_text())
    assert [row["step"] for row in rows] == [0, 0]
    assert all(math.isnan(row["train_total"]) and math.isnan(row["valid_total"]) for row in rows)
    before = torch.load(tmp / "init.pt", weights_only=True)["model"]
    assert same(before, torch.load(best, weights_only=True)["model"])


def test_detections_and_matching_edge_cases(setup):
    tmp, detector = setup
    segmentor = load_segmentor(tmp / "init.pt", sam_size=SAM_SIZE, backend="torch")
    frame = np.full((SIZE, SIZE), 60, np.uint8)
    mask = np.zeros((1, SIZE, SIZE), bool)
    mask[0, 10:30, 10:30] = True
    sample = make_sample("a", frame, mask, np.array([4]))
    embedding = encode_frozen(segmentor, frame)
    config = tiny_config(tmp)
    assert matched_loss(segmentor, embedding, np.zeros((0, 4)), sample, config=config) is None
    far = np.array([[60.0, 60.0, 90.0, 90.0]])
    strict = tiny_config(tmp, match_min_iou=0.99)
    assert matched_loss(segmentor, embedding, far, sample, config=strict) is None
    terms = matched_loss(segmentor, embedding, sample.boxes, sample, config=config)
    assert terms is not None and torch.isfinite(terms.total)
    detector.config = DetectorConfig(imgsz=SIZE, max_det=4, conf=1.0)
    assert detect_boxes(detector, [sample], progress=False)["a"].shape == (0, 4)


def test_cli_combined(setup, capsys):
    tmp, _ = setup
    torch.manual_seed(0)  # the CLI builds an untrained detector from the yaml
    (tmp / "cfg.yaml").write_text(
        f"combined:\n  sam_size: {SAM_SIZE}\n  epochs: 1\n  batch_size: 2\n  conf: 0.001\n"
        f"  max_boxes_per_image: 1\n  cache_dir: {tmp / 'cache'}\n")
    code = main(["train", "combined", "--data", str(tmp / "data"), "--config",
                 str(tmp / "cfg.yaml"), "--out", str(tmp / "cli"), "--detector",
                 "yolov8n-seg.yaml", "--segmentor", str(tmp / "init.pt")])
    assert code == 0 and "best checkpoint" in capsys.readouterr().out
    assert (tmp / "cli" / "weights" / "best.pt").is_file()

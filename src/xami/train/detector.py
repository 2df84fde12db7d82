"""Detector training: the paper's YOLOv8-seg recipe through ultralytics' own trainer, offline."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import BY_NAME
from xami.data.records import Annotation, Dataset
from xami.data.yolo import read_yolo, write_yolo
from xami.errors import CheckpointError, DatasetError
from xami.io.atomic import write_text_atomic
from xami.models.detector import DetectorConfig
from xami.models.safe_load import read_ultralytics_checkpoint
from xami.models.ultralytics_setup import ultralytics_offline

_STREAK = BY_NAME["read-out-streak"].coco_id


@dataclass(frozen=True)
class DetectorTrainConfig:
    """How the detector is trained (defaults: the authors' recipe, reference notes §5).

    Attributes
    ----------
    model : str
        Ultralytics model yaml or checkpoint to start from (paper: yolov8n-seg; we start from the
        yaml because pretrained weights cannot be downloaded).
    epochs : int
        Training epochs (paper: 300).
    hours : float or None
        Wall-clock budget; when set, ultralytics re-estimates the number of epochs after the first
        one so that the LR schedule completes within it (None: train ``epochs``).
    batch : int
        Images per batch (paper: 16).
    imgsz : int
        Training size in pixels (paper: 512).
    patience : int
        Early-stopping patience in epochs; 0 disables it (authors: 0).
    mosaic : float
        Mosaic augmentation probability (paper: 0).
    hsv : float
        HSV augmentation gains, all three (paper: 0; the frames are grey).
    fliplr, flipud : float
        Flip probabilities (ultralytics default 0.5 / 0; flipping keeps every class valid).
    mask_ratio : int
        Mask-loss downsampling (authors: 1, full resolution).
    seed : int
        Random seed.
    threads : int or None
        Torch threads (None: all cores).
    streak_label_width : float
        Minimum width in pixels of read-out-streak training labels (0: labels as given, the
        authors' way). A streak is ~4 px wide and ~500 px tall: so thin that most of YOLOv8's
        anchor centres (8-32 px apart) miss it and the task-aligned assigner never gives it a
        positive anchor. Widened labels are learnable; ``xami.postprocess.fit_streak_mask`` puts
        the predicted mask back on the streak's own columns.
    """

    model: str = "yolov8n-seg.yaml"
    epochs: int = 300
    hours: float | None = None
    batch: int = 16
    imgsz: int = DetectorConfig.imgsz
    patience: int = 0
    mosaic: float = 0.0
    hsv: float = 0.0
    fliplr: float = 0.5
    flipud: float = 0.0
    mask_ratio: int = 1
    seed: int = 0
    threads: int | None = None
    streak_label_width: float = 0.0


def _train_args(config: DetectorTrainConfig, data_yaml: Path, out: Path) -> dict[str, Any]:
    """Ultralytics ``train()`` keyword arguments for ``config``."""
    return {
        "data": str(data_yaml), "epochs": config.epochs, "time": config.hours,
        "batch": config.batch,
        "imgsz": config.imgsz, "patience": config.patience or 10**6, "mosaic": config.mosaic,
        "hsv_h": config.hsv, "hsv_s": config.hsv, "hsv_v": config.hsv, "fliplr": config.fliplr,
        "flipud": config.flipud, "mask_ratio": config.mask_ratio, "seed": config.seed,
        "device": "cpu", "workers": 0, "project": str(out.parent), "name": out.name,
        "exist_ok": True, "plots": False, "amp": False, "verbose": True,
    }


def _data_yaml(data: Path) -> Path:
    """The YOLO ``data.yaml`` for a dataset folder (``DIR/yolo/data.yaml`` or ``DIR/data.yaml``)."""
    for candidate in (data, data / "data.yaml", data / "yolo" / "data.yaml"):
        if candidate.is_file() and candidate.suffix in {".yaml", ".yml"}:
            return candidate
    raise DatasetError(data, "no YOLO data.yaml (expected DIR/data.yaml or DIR/yolo/data.yaml)")


def _widen_streaks(dataset: Dataset, width: float) -> Dataset:
    """``dataset`` with every read-out-streak polygon at least ``width`` pixels wide."""
    def widen(ann: Annotation, image_width: int) -> Annotation:
        if ann.category_id != _STREAK:
            return ann
        polygons = []
        for poly in ann.polygons:
            centre = 0.5 * (poly[:, 0].min() + poly[:, 0].max())
            offset = poly[:, 0] - centre
            x = centre + np.where(offset < 0, -1.0, 1.0) * np.maximum(np.abs(offset), width / 2)
            polygons.append(np.column_stack([np.clip(x, 0.0, image_width), poly[:, 1]]))
        return dataclasses.replace(ann, polygons=tuple(polygons))

    splits = {split: tuple(dataclasses.replace(rec, annotations=tuple(
        widen(a, rec.width) for a in rec.annotations)) for rec in records)
        for split, records in dataset.splits.items()}
    return dataclasses.replace(dataset, splits=splits)


def train_detector(data: str | Path, out: str | Path, *,
                   config: DetectorTrainConfig = DetectorTrainConfig(),
                   resume: bool = False) -> Path:
    """Train the detector with ultralytics, offline, and return the best checkpoint.

    Parameters
    ----------
    data : str or pathlib.Path
        A YOLO-seg ``data.yaml``, its folder, or a ``xami simulate`` output folder. With
        ``config.streak_label_width`` the labels are rewritten into ``OUT/data`` (images
        hard-linked) and training reads them from there.
    out : str or pathlib.Path
        Run folder; ultralytics writes ``weights/{best,last}.pt`` and ``results.csv`` there and the
        xami config goes to ``xami_config.json``.
    config : DetectorTrainConfig
        The recipe.
    resume : bool
        Continue the run in ``out`` from ``weights/last.pt``.

    Returns
    -------
    pathlib.Path
        ``OUT/weights/best.pt``.

    Raises
    ------
    xami.errors.DatasetError
        No ``data.yaml`` was found.
    xami.errors.CheckpointError
        ``resume`` was asked but ``OUT/weights/last.pt`` does not exist, or a ``.pt`` to start
        from is not an ultralytics checkpoint (`xami.models.safe_load`).
    """
    out = Path(out).resolve()
    data_yaml = _data_yaml(Path(data)).resolve()
    ul = ultralytics_offline(config.threads)
    if config.streak_label_width > 0:
        if not resume:
            dataset = read_yolo(data_yaml.parent)
            write_yolo(_widen_streaks(dataset, config.streak_label_width), out / "data")
        data_yaml = out / "data" / "data.yaml"
    if resume:
        last = out / "weights" / "last.pt"
        if not last.is_file():
            raise CheckpointError(last, "cannot resume: checkpoint not found")
        read_ultralytics_checkpoint(last)
        ul.YOLO(str(last)).train(resume=True, data=str(data_yaml), workers=0)
    else:
        if Path(config.model).suffix.lower() == ".pt" and Path(config.model).is_file():
            read_ultralytics_checkpoint(config.model)  # pretrained weights: checked like any .pt
        config_text = json.dumps(dataclasses.asdict(config), indent=1)
        write_text_atomic(out / "xami_config.json", config_text)
        ul.YOLO(config.model).train(**_train_args(config, data_yaml, out))
    return out / "weights" / "best.pt"

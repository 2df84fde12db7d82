"""The torch engine of the detector: an ultralytics YOLOv8-seg (or RT-DETR) model.

Importable without torch and ultralytics: they are imported when a model is loaded
(``xami[train]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import CLASSES, yolo_names
from xami.errors import CheckpointError
from xami.models.detector import Detector, DetectorConfig, coco_labels
from xami.structures import Instances


class UltralyticsDetector(Detector):
    """A `Detector` on an ultralytics model (PyTorch): what the detector trains and exports from.

    Parameters
    ----------
    model : ultralytics.YOLO or ultralytics.RTDETR
        The loaded model; its class names must be those of `xami.classes`.
    config : DetectorConfig
        Inference settings.
    source : str, optional
        Where the weights came from (a checkpoint, or a yaml for an untrained model), or None.
    """

    backend = "torch"

    def __init__(self, model: Any, config: DetectorConfig = DetectorConfig(), *,
                 source: str | None = None) -> None:
        super().__init__({int(k): v for k, v in model.names.items()}, config, source=source)
        self.model = model

    def _detect(self, bgr: np.ndarray, conf: float) -> Instances:
        """ultralytics' predictor at the frame's size (``retina_masks``)."""
        c = self.config
        result = self.model.predict(bgr, conf=conf, iou=c.iou, imgsz=c.imgsz, max_det=c.max_det,
                                    retina_masks=True, verbose=False)[0]
        return _to_instances(result, bgr.shape[:2])


def _to_instances(result: Any, shape: tuple[int, int]) -> Instances:
    """Convert one ultralytics ``Results`` into Instances at ``shape``."""
    boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
    labels = coco_labels(result.boxes.cls.cpu().numpy())
    scores = result.boxes.conf.cpu().numpy().astype(np.float64)
    if result.masks is not None:
        masks = result.masks.data.cpu().numpy() > 0.5
    else:
        masks = _box_masks(boxes, shape)
    return Instances(boxes, masks.reshape(len(boxes), *shape), labels, scores)


def _box_masks(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled-box masks, for detectors that predict no masks."""
    masks = np.zeros((len(boxes), *shape), dtype=bool)
    for m, (x0, y0, x1, y1) in zip(masks, np.round(boxes).astype(int), strict=True):
        m[max(y0, 0):y1, max(x0, 0):x1] = True
    return masks


def load_ultralytics_detector(path: Path, config: DetectorConfig = DetectorConfig(),
                              ) -> UltralyticsDetector:
    """Load an ultralytics checkpoint, model yaml or ONNX export on ultralytics (torch).

    Parameters
    ----------
    path : pathlib.Path
        An ultralytics checkpoint (unpickled safely first, `xami.models.safe_load`), a model
        yaml (``yolov8n-seg.yaml``: an untrained model with the XAMI classes, built offline) or
        an ONNX export (run by ultralytics).
    config : DetectorConfig
        Inference settings.

    Returns
    -------
    UltralyticsDetector

    Raises
    ------
    xami.errors.CheckpointError
        The file is missing or is not a loadable ultralytics model with the XAMI classes.
    xami.errors.MissingExtraError
        torch or ultralytics is not installed.
    """
    from xami.models.ultralytics_setup import ultralytics_offline

    ul = ultralytics_offline()
    if path.suffix in {".yaml", ".yml"}:
        return UltralyticsDetector(_untrained(ul, path), config, source=str(path))
    if not path.is_file():
        raise CheckpointError(path, "detector checkpoint not found")
    return UltralyticsDetector(_load(ul, path), config, source=str(path))


def _model_class(ul: Any, path: Path) -> Any:
    """ultralytics' class for a file: RT-DETR when its name says so, else YOLO."""
    return ul.RTDETR if "rtdetr" in path.name.lower() else ul.YOLO


def _untrained(ul: Any, yaml_path: Path) -> Any:
    """An untrained ultralytics model built offline from a yaml, with the five XAMI classes."""
    model = _model_class(ul, yaml_path)(str(yaml_path))
    cfg = dict(model.model.yaml, nc=len(CLASSES))
    model.model = type(model.model)(cfg, nc=len(CLASSES), verbose=False)
    model.model.names = yolo_names()
    return model


def _load(ul: Any, weights: Path) -> Any:
    """ultralytics' model for a checkpoint or an ONNX export.

    A checkpoint is first unpickled safely (`read_ultralytics_checkpoint`), so that one holding
    anything but an ultralytics model is refused before ultralytics' own load touches it.
    """
    from xami.models.safe_load import read_ultralytics_checkpoint

    if weights.suffix.lower() != ".onnx":
        read_ultralytics_checkpoint(weights)
    try:
        return _model_class(ul, weights)(str(weights))
    except Exception as err:  # ultralytics raises many types for a bad file
        raise CheckpointError(weights, f"not a loadable ultralytics checkpoint ({err})") from err

"""The detector: a thin wrapper over an ultralytics YOLOv8-seg (or RT-DETR) model.

Importable without torch and ultralytics: they are imported where the torch backend, a
checkpoint or an export needs them, and ``load_detector(file.onnx, backend="onnx")`` runs
`xami.models.yolo_onnx` on ONNX Runtime alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import BY_YOLO_INDEX, CLASSES
from xami.errors import CheckpointError, InputError
from xami.models.onnx import BUNDLED_ONNX, WEIGHTS_DIR
from xami.models.yolo_onnx import OnnxYolo, as_bgr, check_class_names, load_onnx_yolo
from xami.structures import Instances

BUNDLED_DETECTOR = WEIGHTS_DIR / "detector.pt"
BACKENDS = ("torch", "onnx")
DEFAULT_BACKEND = "onnx"
"""ONNX Runtime: no torch needed, and outputs that do not depend on the thread count."""


def bundled_detector(backend: str = DEFAULT_BACKEND) -> Path:
    """The bundled detector's file for ``backend``: its ONNX export or its checkpoint."""
    return BUNDLED_ONNX if backend == "onnx" else BUNDLED_DETECTOR


@dataclass(frozen=True)
class DetectorConfig:
    """Inference settings of the detector.

    Attributes
    ----------
    conf : float
        Minimum box confidence. The paper and the authors' inference use 0.2; xami keeps down
        to 0.1, where the bundled detector scores better on simulated frames (mask AP50 0.523
        at 0.2, 0.562 at 0.1) and on the real dev frames (box mAP50 0.735 -> 0.762), at about
        1.5 detections per simulated artefact. Raise it (``--conf 0.2``) for sparser masks.
    iou : float
        IoU threshold of ultralytics' class-aware NMS (ultralytics default 0.7, as the authors).
    imgsz : int
        Inference size in pixels (paper: 512).
    max_det : int
        Maximum number of detections per image.
    """

    conf: float = 0.1
    iou: float = 0.7
    imgsz: int = 512
    max_det: int = 300


class Detector:
    """Artefact detector: a model whose classes are the XAMI classes.

    Parameters
    ----------
    model : ultralytics.YOLO, ultralytics.RTDETR or xami.models.yolo_onnx.OnnxYolo
        The loaded model (torch, or ONNX Runtime); its class names must be those of
        `xami.classes`.
    config : DetectorConfig
        Inference settings.
    source : str
        Where the weights came from (a path, or the name of a yaml for an untrained model).
    """

    def __init__(self, model: Any, config: DetectorConfig = DetectorConfig(), *,
                 source: str = "") -> None:
        check_class_names({int(k): v for k, v in model.names.items()}, source)
        self.model = model
        self.config = config
        self.source = source

    @property
    def backend(self) -> str:
        """What the model runs on: ``"onnx"`` (ONNX Runtime) or ``"torch"``."""
        return "onnx" if isinstance(self.model, OnnxYolo) else "torch"

    def predict(self, image: np.ndarray) -> Instances:
        """Detect artefacts in one frame.

        Parameters
        ----------
        image : numpy.ndarray
            8-bit frame, ``uint8 [H, W]`` or ``[H, W, 3]`` (row 0 at the top, as released).

        Returns
        -------
        Instances
            Boxes XYXY in the frame's pixels, masks at the frame's size (letterboxing undone; filled
            boxes for a model without masks such as RT-DETR), COCO labels and confidences.
        """
        c = self.config
        if isinstance(self.model, OnnxYolo):
            return self.model.predict(image, conf=c.conf, iou=c.iou, imgsz=c.imgsz,
                                      max_det=c.max_det)
        bgr = as_bgr(image)
        result = self.model.predict(bgr, conf=c.conf, iou=c.iou, imgsz=c.imgsz, max_det=c.max_det,
                                    retina_masks=True, verbose=False)[0]
        return _to_instances(result, bgr.shape[:2])


def _to_instances(result: Any, shape: tuple[int, int]) -> Instances:
    """Convert one ultralytics ``Results`` into Instances at ``shape``."""
    boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
    labels = np.array([BY_YOLO_INDEX[int(i)].coco_id for i in result.boxes.cls.cpu().numpy()],
                      dtype=np.int64)
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


def _model_class(ul: Any, path: Path) -> Any:
    """ultralytics' class for a file: RT-DETR when its name says so, else YOLO."""
    return ul.RTDETR if "rtdetr" in path.name.lower() else ul.YOLO


def _untrained(ul: Any, yaml_path: Path) -> Any:
    """An untrained ultralytics model built offline from a yaml, with the five XAMI classes."""
    model = _model_class(ul, yaml_path)(str(yaml_path))
    cfg = dict(model.model.yaml, nc=len(CLASSES))
    model.model = type(model.model)(cfg, nc=len(CLASSES), verbose=False)
    model.model.names = {c.yolo_index: c.name for c in CLASSES}
    return model


def load_detector(path: str | Path | None = None, *, config: DetectorConfig = DetectorConfig(),
                  backend: str = DEFAULT_BACKEND) -> Detector:
    """Load a detector from an ultralytics checkpoint (``.pt``), model yaml or ONNX export.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        An ultralytics checkpoint (e.g. the authors' ``yolov8_detect_300e_best.pt``), a model
        yaml (``yolov8n-seg.yaml``: an untrained model, built offline) or, with ``"onnx"``, an
        ultralytics YOLOv8-seg ONNX export. None: the bundled weights (`bundled_detector`).
    config : DetectorConfig
        Inference settings.
    backend : str
        ``"torch"`` (needs ``xami[train]``) or ``"onnx"``: `xami.models.yolo_onnx`, ultralytics'
        predictor rewritten in numpy on ONNX Runtime (same instances as the torch model). A
        checkpoint is exported once by ultralytics' own exporter (dynamic input size; needs
        ``xami[train]``) and cached as ``<checkpoint name>.<SHA-256 prefix>.onnx`` beside it,
        or under ``$XAMI_CACHE_DIR/onnx`` when that folder is read-only (see
        `xami.models.onnx`); an ``.onnx`` file is run as it is, without torch or ultralytics.

    Returns
    -------
    Detector

    Raises
    ------
    xami.errors.CheckpointError
        The file is missing, is not an ultralytics checkpoint (one naming any class or function
        outside `xami.models.safe_load.ULTRALYTICS_GLOBALS` is refused before it is unpickled)
        or ONNX export, its classes are not XAMI's, or its cached ONNX file cannot be loaded.
    xami.errors.InputError
        Unknown ``backend``, or ``"onnx"`` with a model yaml.
    xami.errors.MissingExtraError
        A checkpoint or yaml, and torch or ultralytics is not installed.

    Examples
    --------
    >>> detector = load_detector(backend="onnx")  # doctest: +SKIP
    >>> detector.predict(frame).boxes  # doctest: +SKIP
    """
    if backend not in BACKENDS:
        raise InputError(None, f"backend must be one of {BACKENDS}, got {backend!r}")
    path = bundled_detector(backend) if path is None else Path(path)
    if backend == "onnx" and path.suffix.lower() == ".onnx":
        return Detector(load_onnx_yolo(path), config, source=str(path))
    from xami.models.ultralytics_setup import ultralytics_offline

    ul = ultralytics_offline()
    if path.suffix in {".yaml", ".yml"}:
        if backend == "onnx":
            raise InputError(path, "the ONNX backend needs a checkpoint (.pt), not a model yaml")
        return Detector(_untrained(ul, path), config, source=str(path))
    if not path.is_file():
        raise CheckpointError(path, "detector checkpoint not found")
    if backend == "onnx":
        from xami.models.safe_load import read_ultralytics_checkpoint

        read_ultralytics_checkpoint(path)  # refused even when its ONNX export is cached
        exported = _cached_onnx(path, config.imgsz)
        return Detector(load_onnx_yolo(exported), config, source=str(exported))
    return Detector(_load(ul, path, path), config, source=str(path))


def _load(ul: Any, weights: Path, source: Path) -> Any:
    """ultralytics' model for a checkpoint or an ONNX export; errors name ``source``.

    A checkpoint is first unpickled safely (`read_ultralytics_checkpoint`), so that one holding
    anything but an ultralytics model is refused before ultralytics' own load touches it.
    """
    from xami.models.safe_load import read_ultralytics_checkpoint

    if weights.suffix.lower() != ".onnx":
        try:
            read_ultralytics_checkpoint(weights)
        except CheckpointError as err:
            raise CheckpointError(source, err.problem) from None
    try:
        return _model_class(ul, weights)(str(weights))
    except Exception as err:  # ultralytics raises many types for a bad file
        raise CheckpointError(source, f"not a loadable ultralytics checkpoint ({err})") from err


def _cached_onnx(checkpoint: Path, imgsz: int) -> Path:
    """The checkpoint's ONNX export, made on first use (`xami.models.onnx` says where)."""
    from xami.models.onnx import cache_folder, check_onnx_file, export_ultralytics, file_key

    name = f"{checkpoint.name}.{file_key(checkpoint)}.onnx"
    target = cache_folder(checkpoint, [name]) / name
    if not target.is_file():
        export_ultralytics(checkpoint, target, imgsz=imgsz)
    check_onnx_file(target)
    return target

"""The detector's contract, shared by its engines: settings, input checks and `Detector.predict`.

A loaded detector is a `Detector` running on one engine: ultralytics' torch model
(`xami.models.ultralytics_detector`, ``xami[train]``) or its ONNX export in numpy on ONNX Runtime
(`xami.models.yolo_onnx`, the light install). `xami.models.build.load_detector` picks the engine;
this module imports neither, nor torch.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass

import numpy as np

from xami.classes import BY_YOLO_INDEX, yolo_names
from xami.errors import CheckpointError, InputError
from xami.structures import Instances


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


def as_bgr(image: np.ndarray) -> np.ndarray:
    """An 8-bit ``[H, W]`` or ``[H, W, 3]`` frame as the ``[H, W, 3]`` array ultralytics takes."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(None, f"expected an 8-bit frame (uint8), got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) == 0:
        raise InputError(None, f"expected an image of shape [H, W] or [H, W, 3], got {image.shape}")
    return np.ascontiguousarray(image)


def check_class_names(names: dict[int, str], source: str | os.PathLike[str] | None) -> None:
    """Refuse a detector whose classes are not the XAMI classes.

    Parameters
    ----------
    names : dict of int to str
        The detector's class names by YOLO index.
    source : str or os.PathLike, optional
        The file they come from, for the message.

    Raises
    ------
    xami.errors.CheckpointError
        The names differ from `xami.classes.CLASSES`.
    """
    expected = yolo_names()
    if names != expected:
        raise CheckpointError(source or None,
                              f"detector classes {names} are not the XAMI classes {expected}")


_COCO_IDS = np.array([BY_YOLO_INDEX[i].coco_id for i in range(len(BY_YOLO_INDEX))],
                     dtype=np.int64)
"""COCO id by YOLO index."""


def coco_labels(classes: np.ndarray) -> np.ndarray:
    """The COCO ids ``int64 [N]`` of a detector's YOLO class indices ``[N]``."""
    return _COCO_IDS[np.asarray(classes, dtype=np.int64)]


class Detector(abc.ABC):
    """A loaded artefact detector, whatever its engine.

    Parameters
    ----------
    names : dict of int to str
        The model's class names by YOLO index; they must be those of `xami.classes`.
    config : DetectorConfig
        Inference settings.
    source : str, optional
        The file the model was loaded from (a checkpoint, model yaml or ONNX file), or None.

    Raises
    ------
    xami.errors.CheckpointError
        The class names are not the XAMI classes.

    Examples
    --------
    >>> detector = xami.load_detector()  # doctest: +SKIP
    >>> detector.predict(frame, conf=0.2).boxes  # doctest: +SKIP
    """

    backend: str
    """What the model runs on: ``"torch"`` or ``"onnx"`` (`xami.models.build.BACKENDS`)."""

    def __init__(self, names: dict[int, str], config: DetectorConfig = DetectorConfig(), *,
                 source: str | None = None) -> None:
        check_class_names(names, source)
        self.names = names
        self.config = config
        self.source = source

    def predict(self, frame: np.ndarray, *, conf: float | None = None) -> Instances:
        """Detect artefacts in one frame.

        Parameters
        ----------
        frame : numpy.ndarray
            8-bit frame, ``uint8 [H, W]`` or ``[H, W, 3]`` (row 0 at the top, as released).
        conf : float, optional
            Minimum box confidence for this call; None: ``config.conf``.

        Returns
        -------
        Instances
            Boxes XYXY in the frame's pixels, masks at the frame's size (letterboxing undone; filled
            boxes for a model without masks such as RT-DETR), COCO labels and confidences.

        Raises
        ------
        xami.errors.InputError
            The frame is not an 8-bit ``[H, W]`` or ``[H, W, 3]`` image.
        """
        return self._detect(as_bgr(frame), self.config.conf if conf is None else conf)

    @abc.abstractmethod
    def _detect(self, bgr: np.ndarray, conf: float) -> Instances:
        """The engine's detections in a checked ``uint8 [H, W, 3]`` frame at ``conf``."""

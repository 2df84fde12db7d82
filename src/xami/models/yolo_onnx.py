"""The detector on ONNX Runtime in numpy alone: ultralytics' YOLOv8-seg predictor without torch.

Runs an ultralytics YOLOv8-seg ONNX export (input ``images [1, 3, H, W]``, RGB in 0..1; outputs
``output0 [1, 4 + nc + 32, anchors]``: XYWH boxes in input pixels, ``nc`` class scores and 32
mask coefficients, and ``output1 [1, 32, H/4, W/4]``: mask prototypes) and reproduces, step by
step, what ultralytics' predictor does with it (ultralytics 8.4, ``rect=True``,
``retina_masks=True``):

- letterbox: resized with cv2's 8-bit ``INTER_LINEAR`` (rewritten here to the bit: its 11-bit
  fixed-point weights; equal to cv2 on every side from 64 to 511 and on odd shapes, see the
  tests), padded with grey 114 to a multiple of the stride (nothing for a square frame);
- ``non_max_suppression``: candidates whose best class score exceeds ``conf``, class-aware NMS
  as ``torchvision.ops.nms`` (float32, stable order by score) at ``iou``, at most ``max_det``;
- ``process_mask_native``: coefficients @ prototypes (float64 here: no BLAS, so the result does
  not depend on the thread count), bilinear resize of the logits to the frame as torch's
  ``F.interpolate(align_corners=False)``, logits > 0 inside the box; instances whose mask is
  empty are dropped.

Boxes and masks agree with the torch predictor to ONNX Runtime's float32 numerics.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from xami.cache import export_folder, file_key
from xami.errors import CheckpointError
from xami.models.detector import Detector, DetectorConfig, coco_labels
from xami.models.onnx import ort_session
from xami.structures import Instances

PAD_VALUE = 114
"""Grey level of ultralytics' letterbox padding."""
MAX_WH = 7680
"""Offset per class index that makes ultralytics' NMS class-aware (``nms.py``'s ``max_wh``)."""
RESIZE_COEF_SCALE = 2048
"""cv2's fixed-point weight scale for 8-bit bilinear resizing (``INTER_RESIZE_COEF_BITS = 11``)."""


class OnnxYolo(Detector):
    """A `Detector` on an ultralytics YOLOv8-seg ONNX export, run as ultralytics' predictor does
    (module docstring).

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        A session of the export; its metadata (written by ultralytics) must name the XAMI
        classes.
    config : DetectorConfig
        Inference settings.
    source : str or os.PathLike
        The file, for messages.

    Raises
    ------
    xami.errors.CheckpointError
        The metadata has no class names, they are not the XAMI classes, or the model is not a
        segmentation model.

    Examples
    --------
    >>> engine = load_onnx_yolo("detector.pt.57d258b51ee51a98.onnx")  # doctest: +SKIP
    >>> engine.predict(frame).boxes  # doctest: +SKIP
    """

    backend = "onnx"

    def __init__(self, session: ort.InferenceSession, config: DetectorConfig = DetectorConfig(),
                 *, source: str | os.PathLike[str]) -> None:
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("task") != "segment" or meta.get("end2end", "False") != "False":
            raise CheckpointError(source, f"not an ultralytics YOLO segmentation export (task "
                                          f"{meta.get('task')!r}, end2end {meta.get('end2end')})")
        try:
            names = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
        except (KeyError, ValueError, SyntaxError, AttributeError) as err:
            raise CheckpointError(source, f"no class names in its metadata ({err!r})") from None
        super().__init__(names, config, source=str(source))
        self.stride = int(meta.get("stride", 32))
        self.session = session

    def _detect(self, bgr: np.ndarray, conf: float) -> Instances:
        """Letterbox, run the export, NMS at ``conf`` and the masks at the frame's size."""
        c = self.config
        x = letterbox(bgr, c.imgsz, stride=self.stride)
        blob = np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1))[None]
        inputs = {self.session.get_inputs()[0].name: blob.astype(np.float32) / np.float32(255)}
        preds, protos = self.session.run(None, inputs)
        boxes, scores, classes, coeffs = _nms_detections(preds[0], len(self.names), conf=conf,
                                                         iou=c.iou, max_det=c.max_det)
        shape = bgr.shape[:2]
        boxes = _boxes_to_frame(boxes, x.shape[:2], shape)
        masks = _masks(protos[0], coeffs, boxes, shape)
        kept = masks.any(axis=(1, 2))
        return Instances(boxes[kept].astype(np.float64), masks[kept], coco_labels(classes[kept]),
                         scores[kept].astype(np.float64))


def load_onnx_yolo(path: str | os.PathLike[str], config: DetectorConfig = DetectorConfig(),
                   ) -> OnnxYolo:
    """Open an ultralytics YOLOv8-seg ONNX export on `xami.models.onnx.ort_session`.

    Parameters
    ----------
    path : str or os.PathLike
        The ONNX file (e.g. made by ``load_detector(checkpoint, backend="onnx")``).
    config : DetectorConfig
        Inference settings.

    Returns
    -------
    OnnxYolo

    Raises
    ------
    xami.errors.CheckpointError
        The file is missing, is not an ONNX model, or is not a YOLO segmentation export with the
        XAMI classes.
    """
    if not Path(path).is_file():
        raise CheckpointError(path, "detector ONNX file not found")
    try:
        session = ort_session(path)
    except CheckpointError as err:  # its advice to delete the file is for cached exports only
        raise CheckpointError(path, f"cannot be loaded as an ONNX model ({err.__cause__})",
                              ) from None
    return OnnxYolo(session, config, source=path)


def cached_onnx_yolo(checkpoint: Path, config: DetectorConfig = DetectorConfig()) -> OnnxYolo:
    """The ONNX export of an ultralytics checkpoint, made on first use and cached.

    The checkpoint is checked first (`xami.models.safe_load.read_ultralytics_checkpoint`), even
    when its export is cached. The export (`xami.models.onnx.export_ultralytics`, needs
    ``xami[train]``) is named ``<checkpoint name>.<SHA-256 prefix>.onnx`` and lives where
    `xami.cache.export_folder` says: beside the checkpoint, or under ``$XAMI_CACHE_DIR/onnx``.

    Parameters
    ----------
    checkpoint : pathlib.Path
        An ultralytics ``.pt`` checkpoint.
    config : DetectorConfig
        Inference settings (``imgsz`` is also the export's size).

    Returns
    -------
    OnnxYolo
        Whose ``source`` is the exported file.

    Raises
    ------
    xami.errors.CheckpointError
        The checkpoint is missing or not loadable, or its cached export cannot be loaded.
    xami.errors.MissingExtraError
        torch or ultralytics is not installed.
    """
    from xami.models.onnx import export_ultralytics
    from xami.models.safe_load import read_ultralytics_checkpoint

    if not checkpoint.is_file():
        raise CheckpointError(checkpoint, "detector checkpoint not found")
    read_ultralytics_checkpoint(checkpoint)
    name = f"{checkpoint.name}.{file_key(checkpoint)}.onnx"
    target = export_folder(checkpoint, [name]) / name
    if not target.is_file():
        export_ultralytics(checkpoint, target, imgsz=config.imgsz)
    return OnnxYolo(ort_session(target), config, source=target)  # a bad one: "delete it"


def letterbox(image: np.ndarray, imgsz: int, *, stride: int = 32) -> np.ndarray:
    """ultralytics' predict-time ``LetterBox`` (``auto=True``): resize, pad to a stride multiple.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W, C]`` image.
    imgsz : int
        The longer side after resizing, pixels.
    stride : int
        The padded sides are multiples of it, centred with grey `PAD_VALUE`.

    Returns
    -------
    numpy.ndarray
        ``uint8 [h, w, C]``; a square frame comes back ``[imgsz, imgsz, C]``, unchanged at
        ``imgsz``.
    """
    h, w = image.shape[:2]
    r = min(imgsz / h, imgsz / w)
    new_h, new_w = max(round(h * r), 1), max(round(w * r), 1)
    if (new_h, new_w) != (h, w):
        image = resize_linear(image, new_h, new_w)
    dh, dw = (imgsz - new_h) % stride / 2, (imgsz - new_w) % stride / 2
    pad = ((round(dh - 0.1), round(dh + 0.1)), (round(dw - 0.1), round(dw + 0.1)), (0, 0))
    return np.pad(image, pad, constant_values=PAD_VALUE) if any(map(any, pad)) else image


def resize_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` of an 8-bit image.

    Bit for bit: cv2 weighs the two source columns with 11-bit integer weights, then the two rows
    as its SIMD kernel does, ``((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2``.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, C]``.
    height, width : int
        Output size, pixels.

    Returns
    -------
    numpy.ndarray
        ``uint8 [height, width(, C)]``.
    """
    src = image.astype(np.int32)
    cols, a0, a1 = _cv2_taps(image.shape[1], width, clamp=True)
    right = np.minimum(cols + 1, image.shape[1] - 1)
    extra = (1,) * (image.ndim - 2)
    a0, a1 = a0.reshape(-1, *extra), a1.reshape(-1, *extra)
    rows_sum = src[:, cols] * a0 + src[:, right] * a1
    rows, b0, b1 = _cv2_taps(image.shape[0], height, clamp=False)
    top, bottom = np.clip(rows, 0, image.shape[0] - 1), np.clip(rows + 1, 0, image.shape[0] - 1)
    b0, b1 = b0.reshape(-1, 1, *extra), b1.reshape(-1, 1, *extra)
    out = (((b0 * (rows_sum[top] >> 4)) >> 16) + ((b1 * (rows_sum[bottom] >> 4)) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def _cv2_taps(src: int, dst: int, *, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cv2's first source index and fixed-point weights per output pixel (resize.cpp)."""
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    index = np.floor(f).astype(np.int64)
    f -= index.astype(np.float32)
    if clamp:  # columns are clamped here, rows later by clipping their indices
        outside = (index < 0) | (index >= src - 1)
        f[outside] = 0
        index = np.clip(index, 0, src - 1)
    unit = np.float32(RESIZE_COEF_SCALE)
    w0, w1 = np.rint((np.float32(1) - f) * unit), np.rint(f * unit)
    return index, w0.astype(np.int32), w1.astype(np.int32)


def _nms_detections(preds: np.ndarray, nc: int, *, conf: float, iou: float, max_det: int,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ultralytics' ``non_max_suppression`` of ``[4 + nc + 32, anchors]``: XYXY, scores, ..."""
    rows = preds.T
    rows = rows[rows[:, 4:4 + nc].max(axis=1) > np.float32(conf)]
    half = rows[:, 2:4] / np.float32(2)
    boxes = np.concatenate([rows[:, :2] - half, rows[:, :2] + half], axis=1)
    classes = rows[:, 4:4 + nc].argmax(axis=1)
    scores = rows[:, 4:4 + nc].max(axis=1)
    offset = classes[:, None].astype(np.float32) * np.float32(MAX_WH)
    keep = _nms(boxes + offset, scores, iou)[:max_det]
    return boxes[keep], scores[keep], classes[keep], rows[keep, 4 + nc:]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """``torchvision.ops.nms`` in float32: greedy by score (ties in order), drop IoU > ``iou``."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), np.float32(0))
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), np.float32(0))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 of empty boxes: kept
            overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(overlap.astype(np.float64) > iou)]
    return np.array(keep, dtype=np.int64)


def _boxes_to_frame(boxes: np.ndarray, input_shape: tuple[int, int],
                    shape: tuple[int, int]) -> np.ndarray:
    """ultralytics' ``scale_boxes``: undo the letterbox, clip to the frame (float32)."""
    gain = min(input_shape[0] / shape[0], input_shape[1] / shape[1])
    new_h, new_w = (max(round(s * gain), 1) for s in shape)
    pad_x = round((input_shape[1] - new_w) / 2 - 0.1)
    pad_y = round((input_shape[0] - new_h) / 2 - 0.1)
    pad = np.array([pad_x, pad_y, pad_x, pad_y], dtype=np.float32)
    gains = np.array([new_w / shape[1], new_h / shape[0]] * 2, dtype=np.float32)
    limits = np.array([shape[1], shape[0]] * 2, dtype=np.float32)
    return np.clip((boxes - pad) / gains, np.float32(0), limits)


def _masks(protos: np.ndarray, coeffs: np.ndarray, boxes: np.ndarray,
           shape: tuple[int, int]) -> np.ndarray:
    """ultralytics' ``process_mask_native``: bool ``[N, H, W]`` masks at the frame's size."""
    c, mh, mw = protos.shape
    h, w = shape
    logits = np.einsum("nk,kp->np", coeffs.astype(np.float64),
                       protos.reshape(c, -1).astype(np.float64))
    logits = logits.astype(np.float32).reshape(-1, mh, mw)
    gain = min(4 * mh / h, 4 * mw / w)
    pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
    factor = 4 // math.gcd(4, pad | pad // 2)  # ultralytics' upsampling to crop whole pixels
    if factor > 1:
        logits = _interpolate(logits, (mh * factor, mw * factor))
    ih, iw = logits.shape[1:]
    if (ih, iw) != (h, w):
        g = min(ih / h, iw / w)
        ch, cw = max(round(h * g), 1), max(round(w * g), 1)
        top, left = round((ih - ch) / 2 - 0.1), round((iw - cw) / 2 - 0.1)
        logits = _interpolate(logits[:, top:top + ch, left:left + cw], (h, w))
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    x1, y1, x2, y2 = (v[:, None, None] for v in boxes.T)
    inside = ((cols >= x1) & (cols < x2)) & ((rows[:, None] >= y1) & (rows[:, None] < y2))
    return (logits > 0) & inside


def _interpolate(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torch's ``F.interpolate(mode="bilinear", align_corners=False)`` of float32 ``[N, H, W]``."""
    c0, c1, cw0, cw1 = _torch_taps(x.shape[2], size[1])
    r0, r1, rw0, rw1 = _torch_taps(x.shape[1], size[0])
    along_rows = x[:, :, c0] * cw0 + x[:, :, c1] * cw1
    return along_rows[:, r0] * rw0[:, None] + along_rows[:, r1] * rw1[:, None]


def _torch_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and float32 weights of torch's linear upsampling (UpSample.h)."""
    if src == dst:
        index = np.arange(dst)
        return index, index, np.ones(dst, np.float32), np.zeros(dst, np.float32)
    scale = np.float32(src) / np.float32(dst)
    real = scale * (np.arange(dst, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    real = np.maximum(real, np.float32(0))
    index = real.astype(np.int64)
    w1 = np.clip(real - index.astype(np.float32), np.float32(0), np.float32(1))
    return index, index + (index < src - 1), np.float32(1) - w1, w1

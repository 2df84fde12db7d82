"""Loading the models: one builder per model over interchangeable engines, picked by backend.

The only module that knows both engines of a model: the detector's (`UltralyticsDetector` on
torch, `OnnxYolo` on ONNX Runtime, both a `xami.models.detector.Detector`) and the segmentor's
(`Segmentor` on torch, `OnnxSegmentor` on ONNX Runtime, both a
`xami.models.box_segmentor.BoxSegmentor`). Importable without torch and ultralytics: the engines
that need them are imported when they are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from xami.errors import CheckpointError, InputError
from xami.extras import import_extra
from xami.models.detector import Detector, DetectorConfig
from xami.models.onnx import BUNDLED_DETECTOR, BUNDLED_ONNX

if TYPE_CHECKING:
    from xami.models.box_segmentor import BoxSegmentor

BACKENDS = ("torch", "onnx")
"""What a model can run on: PyTorch (``xami[train]``) or ONNX Runtime."""
DEFAULT_BACKEND = "onnx"
"""ONNX Runtime: no torch needed, and outputs that do not depend on the thread count."""


def bundled_detector(backend: str = DEFAULT_BACKEND) -> Path:
    """The bundled detector's file for ``backend``: its ONNX export or its checkpoint.

    Parameters
    ----------
    backend : str
        One of `BACKENDS`.

    Returns
    -------
    pathlib.Path
        ``weights/detector.onnx`` for ``"onnx"``, ``weights/detector.pt`` for ``"torch"``.

    Examples
    --------
    >>> bundled_detector().name, bundled_detector("torch").name
    ('detector.onnx', 'detector.pt')
    """
    return BUNDLED_ONNX if backend == "onnx" else BUNDLED_DETECTOR


def _torch_detector(path: Path, config: DetectorConfig) -> Detector:
    """ultralytics' model (checkpoint, yaml or export) on PyTorch."""
    from xami.models.ultralytics_detector import load_ultralytics_detector

    return load_ultralytics_detector(path, config)


def _onnx_detector(path: Path, config: DetectorConfig) -> Detector:
    """An ONNX export as it is, or a checkpoint's export (made once and cached)."""
    from xami.models.yolo_onnx import cached_onnx_yolo, load_onnx_yolo

    if path.suffix.lower() == ".onnx":
        return load_onnx_yolo(path, config)
    if path.suffix in {".yaml", ".yml"}:
        raise InputError(path, "the ONNX backend needs a checkpoint (.pt), not a model yaml")
    return cached_onnx_yolo(path, config)


_DETECTORS: dict[str, Callable[[Path, DetectorConfig], Detector]] = {
    "torch": _torch_detector,
    "onnx": _onnx_detector,
}


def load_detector(path: str | os.PathLike[str] | None = None, *,
                  backend: str = DEFAULT_BACKEND,
                  config: DetectorConfig = DetectorConfig()) -> Detector:
    """Load a detector from an ultralytics checkpoint (``.pt``), model yaml or ONNX export.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An ultralytics checkpoint (e.g. the authors' ``yolov8_detect_300e_best.pt``), a model
        yaml (``yolov8n-seg.yaml``: an untrained model, built offline) or, with ``"onnx"``, an
        ultralytics YOLOv8-seg ONNX export. None: the bundled weights (`bundled_detector`).
    backend : str
        ``"torch"`` (needs ``xami[train]``): `xami.models.ultralytics_detector`; or ``"onnx"``:
        `xami.models.yolo_onnx`, ultralytics' predictor rewritten in numpy on ONNX Runtime (same
        instances as the torch model). A checkpoint is exported once by ultralytics' own
        exporter (dynamic input size; needs ``xami[train]``) and cached as
        ``<checkpoint name>.<SHA-256 prefix>.onnx`` beside it, or under
        ``$XAMI_CACHE_DIR/onnx`` when that folder is read-only (`xami.cache.export_folder`); an
        ``.onnx`` file is run as it is, without torch or ultralytics.
    config : DetectorConfig
        Inference settings.

    Returns
    -------
    Detector
        With ``backend`` and ``source`` (the file it runs: for a checkpoint on ``"onnx"``, its
        cached export).

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
    >>> detector = load_detector()  # doctest: +SKIP
    >>> detector.predict(frame, conf=0.2).boxes  # doctest: +SKIP
    """
    _check_backend(backend)
    path = bundled_detector(backend) if path is None else Path(path)
    return _DETECTORS[backend](path, config)


def _torch_segmentor(checkpoint: str | os.PathLike[str], sam_size: int | None,
                     quantize: str | None) -> BoxSegmentor:
    """MobileSAM on PyTorch (trainable; never quantised)."""
    from xami.models.segmentor import load_torch_segmentor

    return load_torch_segmentor(checkpoint, sam_size=sam_size)


def _onnx_segmentor(checkpoint: str | os.PathLike[str], sam_size: int | None,
                    quantize: str | None) -> BoxSegmentor:
    """MobileSAM exported to ONNX once, cached, and run on ONNX Runtime."""
    from xami.models.sam_onnx import cached_onnx_segmentor

    return cached_onnx_segmentor(checkpoint, sam_size=sam_size, quantize=quantize)


_SEGMENTORS: dict[str, Callable[[str | os.PathLike[str], int | None, str | None],
                                BoxSegmentor]] = {
    "torch": _torch_segmentor,
    "onnx": _onnx_segmentor,
}


def load_segmentor(checkpoint: str | os.PathLike[str] | None, *, sam_size: int | None = None,
                   backend: str = DEFAULT_BACKEND, quantize: str | None = None) -> BoxSegmentor:
    """Load a segmentor from a SAM checkpoint.

    Parameters
    ----------
    checkpoint : str or os.PathLike
        The official MobileSAM ``mobile_sam.pt`` or an XAMI ``*_sam.pth`` (plain state dicts of
        the whole model), or ``{"model": state_dict, ...}`` such as the checkpoints xami writes,
        whose ``"config"`` entry (a `SegmentorConfig` as a dict) sets the model; without one the
        default config is used. Loaded on the CPU with ``weights_only=True``, strictly. For an
        untrained model use `xami.models.segmentor.build_segmentor`.
    sam_size : int, optional
        Model input side: 1024 (paper) or 512 (native for the 512 px frames, ~4x cheaper);
        any multiple of 64. None: the checkpoint's saved ``sam_size``, else
        `SegmentorConfig`'s default.
    backend : str
        ``"torch"``: a trainable `xami.models.segmentor.Segmentor`; or ``"onnx"``: an
        inference-only `xami.models.sam_onnx.OnnxSegmentor` running the encoder and the decoder
        in ONNX Runtime (same outputs; the encoder ~2x faster on a CPU). The ONNX files are
        exported on first use and cached beside the checkpoint, named after its SHA-256 and
        ``sam_size`` (`xami.models.sam_onnx.cached_onnx_segmentor`). Both need ``xami[train]``.
    quantize : str, optional
        ``"int8"``: dynamic INT8 quantisation of the ONNX encoder (``backend="onnx"`` only):
        5-10% faster on an AVX2 CPU, embeddings off by ~3% RMS (see `xami.models.sam_onnx`).

    Returns
    -------
    BoxSegmentor
        In eval mode, with ``backend`` and ``source`` (``checkpoint``).

    Raises
    ------
    xami.errors.CheckpointError
        No checkpoint, the file is missing or unreadable, its state dict does not match the
        model (missing and unexpected keys are listed), its config is invalid, or a cached ONNX
        file cannot be loaded.
    xami.errors.InputError
        Unsupported ``backend``, ``quantize`` or ``sam_size``.
    xami.errors.MissingExtraError
        torch is not installed.

    Examples
    --------
    >>> segmentor = load_segmentor("weights/mobile_sam.pt", sam_size=512)  # doctest: +SKIP
    >>> instances = segmentor.predict(frame, boxes, labels=labels)  # doctest: +SKIP
    """
    _check_backend(backend)
    if quantize is not None and backend != "onnx":
        raise InputError(None, f"quantize needs backend='onnx', got quantize={quantize!r} with "
                               f"backend={backend!r}")
    if checkpoint is None:
        raise CheckpointError(None, "no segmentor weights are bundled; pass a checkpoint "
                                    "(official mobile_sam.pt, an XAMI *_sam.pth or one xami wrote)")
    import_extra("torch", "the SAM segmentor")
    return _SEGMENTORS[backend](checkpoint, sam_size, quantize)


def _check_backend(backend: str) -> None:
    """Refuse a backend no engine runs on."""
    if backend not in BACKENDS:
        raise InputError(None, f"backend must be one of {BACKENDS}, got {backend!r}")

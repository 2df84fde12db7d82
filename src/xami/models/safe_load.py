"""Read ultralytics checkpoints without running code from them.

ultralytics unpickles a ``.pt`` file with ``weights_only=False``: a pickle whose ``__reduce__``
calls ``os.system`` runs as soon as it is loaded. Every checkpoint xami hands to ultralytics is
first read by `read_ultralytics_checkpoint`: torch's ``weights_only`` unpickler, which builds only
tensors, containers and the classes of `ULTRALYTICS_GLOBALS` (found by scanning the bundled
weights, freshly trained YOLOv8-seg checkpoints, and YOLOv8 / YOLO11 detect and segment and
RT-DETR models built from ultralytics' yamls). A file that names any other global is refused
before any object is built.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import pickle
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xami.errors import CheckpointError
from xami.extras import import_extra
from xami.models.ultralytics_setup import ultralytics_offline

_NN = "torch.nn.modules"
_UL = "ultralytics.nn.modules"
_LAYERS = {
    f"{_NN}.activation": ("GELU", "LeakyReLU", "MultiheadAttention", "ReLU", "SiLU"),
    f"{_NN}.batchnorm": ("BatchNorm2d",),
    f"{_NN}.container": ("ModuleList", "Sequential"),
    f"{_NN}.conv": ("Conv2d", "ConvTranspose2d"),
    f"{_NN}.dropout": ("Dropout",),
    f"{_NN}.linear": ("Identity", "Linear", "NonDynamicallyQuantizableLinear"),
    f"{_NN}.normalization": ("LayerNorm",),
    f"{_NN}.pooling": ("MaxPool2d",),
    f"{_NN}.sparse": ("Embedding",),
    f"{_NN}.upsampling": ("Upsample",),
    f"{_UL}.block": ("Attention", "Bottleneck", "C2", "C2PSA", "C2f", "C3", "C3Ghost", "C3k",
                     "C3k2", "DFL", "GhostBottleneck", "HGBlock", "HGStem", "PSABlock", "Proto",
                     "RepC3", "ResNetBlock", "ResNetLayer", "SPP", "SPPF"),
    f"{_UL}.conv": ("Concat", "Conv", "DWConv", "GhostConv", "LightConv", "RepConv"),
    f"{_UL}.head": ("Detect", "RTDETRDecoder", "Segment"),
    f"{_UL}.transformer": ("AIFI", "DeformableTransformerDecoder",
                           "DeformableTransformerDecoderLayer", "MLP", "MSDeformAttn"),
    "ultralytics.nn.tasks": ("DetectionModel", "RTDETRDetectionModel", "SegmentationModel"),
    "ultralytics.utils": ("IterableSimpleNamespace",),
}
ULTRALYTICS_GLOBALS: tuple[str, ...] = tuple(
    f"{module}.{name}" for module, names in _LAYERS.items() for name in names)
"""The classes an ultralytics YOLOv8 / YOLO11 (detect, segment) or RT-DETR checkpoint holds."""

_ALIASES = {
    # checkpoints of ultralytics < 8.0.44 name layers by their package and the yolo.utils module
    **{f"{_UL}.{name}": f"{module}.{name}" for module, names in _LAYERS.items()
       if module.startswith(_UL) for name in names},
    "ultralytics.yolo.utils.IterableSimpleNamespace": "ultralytics.utils.IterableSimpleNamespace",
}
_MESSAGE_GLOBAL = re.compile(r"GLOBAL (\S+)")
_lock = threading.Lock()
_registered = False


def _class_attribute(obj: Any, name: str) -> Any:
    """``getattr`` for the unpickler: only public attributes of allowed classes.

    Segmentation checkpoints of ultralytics 8.0-8.2 (the XAMI authors' layout) pickle
    ``Segment.detect = Detect.forward`` as ``getattr(Detect, "forward")``.
    """
    allowed = _allowed()
    if isinstance(obj, type) and obj in allowed.values() and not name.startswith("_"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed")


def _resolve(qualified: str) -> Any:
    """The object named ``module.Name`` (names are xami's own constants, never the file's)."""
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _allowed() -> dict[str, Any]:
    """Checkpoint name -> object, for every name a checkpoint may use."""
    import numpy as np

    ultralytics_offline()  # configured before any ultralytics module is imported
    allowed: dict[str, Any] = {name: _resolve(name) for name in ULTRALYTICS_GLOBALS}
    allowed.update({alias: allowed[name] for alias, name in _ALIASES.items()})
    scalar = np.float64(0).__reduce__()[0]  # numpy scalars in the training metrics
    allowed.update({"numpy.core.multiarray.scalar": scalar, "numpy._core.multiarray.scalar": scalar,
                    "numpy.dtype": np.dtype, "builtins.getattr": _class_attribute})
    return allowed


def _register() -> None:
    """Add the allow-list to torch's ``weights_only`` globals, once per process.

    Registered for the process rather than in a ``safe_globals`` block: leaving such a block
    removes the entries while another thread (a Dask worker) may be mid-load.
    """
    import torch

    global _registered
    with _lock:
        if not _registered:
            if hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
                entries: list[Any] = [(obj, name) for name, obj in _allowed().items()]
            else:  # torch < 2.6 takes no aliases
                entries = [obj for name, obj in _allowed().items()
                           if name == f"{obj.__module__}.{obj.__qualname__}"]
            entries.append(type(__import__("numpy").dtype("float64")))
            torch.serialization.add_safe_globals(entries)
            _registered = True


def _outside_globals(data: bytes) -> list[str]:
    """Globals the file names that torch does not allow by default and xami does not allow."""
    import torch

    scan: Callable[[Any], list[str]] | None = getattr(
        torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if scan is None:  # torch < 2.6: the weights_only load below still refuses them
        return []
    try:
        names = scan(io.BytesIO(data))
    except (ValueError, RuntimeError):  # not a torch zip archive: left to torch.load to report
        return []
    allowed = _allowed()
    return sorted(n for n in names if n not in allowed)


def _unpickle_problem(err: Exception) -> str:
    """A one-line reason for a refused load (never torch's advice to load unsafely)."""
    found = _MESSAGE_GLOBAL.search(str(err))
    if found:
        return f"it refers to {found.group(1)}, which no ultralytics checkpoint holds"
    return f"the file is empty, damaged or not a torch checkpoint ({type(err).__name__})"


def read_ultralytics_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Unpickle an ultralytics checkpoint without running code from it.

    Parameters
    ----------
    path : str or os.PathLike
        An ultralytics ``.pt`` file: a dict holding an ultralytics model under ``"model"`` or
        ``"ema"`` (``train_args``, ``date``, ``version``... as ultralytics saves it).

    Returns
    -------
    dict
        The checkpoint, built by torch's ``weights_only`` unpickler from tensors, containers and
        the classes of `ULTRALYTICS_GLOBALS` only.

    Raises
    ------
    xami.errors.CheckpointError
        The file cannot be read, names any other global (a class or a function such as
        ``os.system``: refused before any object is built), or holds no ultralytics model.
    xami.errors.MissingExtraError
        PyTorch is not installed (``xami[train]``).

    Examples
    --------
    >>> ckpt = read_ultralytics_checkpoint("weights/detector.pt")  # doctest: +SKIP
    >>> type(ckpt["model"]).__name__  # doctest: +SKIP
    'SegmentationModel'
    """
    torch = import_extra("torch", "reading an ultralytics checkpoint (.pt)")
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(path, f"cannot be read ({err.strerror})") from None
    outside = _outside_globals(data)
    if outside:
        more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
        raise CheckpointError(path, "not a loadable ultralytics checkpoint: it refers to "
                                    f"{', '.join(outside[:3])}{more}, which no ultralytics "
                                    "checkpoint holds; refused before unpickling")
    _register()
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(path, "not a loadable ultralytics checkpoint: "
                                    f"{_unpickle_problem(err)}") from None
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(path, "not a loadable ultralytics checkpoint: no ultralytics model "
                                    "under 'model' or 'ema'")
    return ckpt

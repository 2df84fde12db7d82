"""ONNX files: ONNX Runtime sessions, ultralytics' export and the bundled detector's export.

Where exported files are cached is `xami.cache.export_folder`. Nothing here imports PyTorch at
module level: predicting with ONNX Runtime needs only ``pip install xami``; exporting needs
``xami[train]``. The segmentor's export is `xami.models.sam_onnx`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from xami.errors import CheckpointError
from xami.extras import import_extra
from xami.io.atomic import atomic_path, file_sha256
from xami.models.detector import DetectorConfig
from xami.threads import thread_count

ONNX_OPSET = 17
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUNDLED_DETECTOR = WEIGHTS_DIR / "detector.pt"
"""The bundled detector's ultralytics checkpoint, shipped in the package."""
BUNDLED_ONNX = WEIGHTS_DIR / "detector.onnx"
"""Its ONNX export (`write_bundled_onnx`), shipped in the package."""
SOURCE_SHA256_KEY = "xami_source_sha256"
"""Metadata key of an export: the SHA-256 of the checkpoint it was made from."""


@contextlib.contextmanager
def quiet_onnx_export() -> Iterator[None]:
    """Silence the expected warnings of torch's TorchScript-based ONNX export, each explained.

    Used around ``torch.onnx.export`` and ultralytics' ``export(format="onnx")``; the tests turn
    every other warning into an error.
    """
    import torch

    with warnings.catch_warnings():
        # torch >= 2.9 deprecates this exporter for the dynamo one, which needs onnxscript; it
        # still works in torch 2.14 and is what ultralytics' own exporter calls
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning,
                                r"torch\.onnx")
        # tracing fixes Python values computed from shapes (TinyViT's windows, the heads' width,
        # YOLO's anchors): all are constant for the exported input size, and the box count of
        # the SAM decoder stays dynamic (tests decode 1 and 20 boxes)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # strided slices are left unfolded; the graph is the same
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        yield


def ort_session(path: str | os.PathLike[str]) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on `xami.threads.thread_count` threads that do not spin.

    Parameters
    ----------
    path : str or os.PathLike
        An ONNX file.

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    xami.errors.CheckpointError
        ONNX Runtime cannot load the file (named, with a way out).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = thread_count()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own pybind types for a bad file
        raise CheckpointError(path, f"cannot be loaded as an ONNX model ({err}); delete it to "
                                    "export it again") from err


def export_ultralytics(checkpoint: str | os.PathLike[str], target: str | os.PathLike[str], *,
                       imgsz: int = DetectorConfig.imgsz) -> None:
    """Export an ultralytics checkpoint to ONNX with ultralytics' own exporter (atomically).

    Opset `ONNX_OPSET`, dynamic input size (so letterboxing and results are the torch model's),
    no simplification; the export runs on a copy in a scratch folder beside ``target``
    (ultralytics writes beside the weights). Needs ``xami[train]``.

    Parameters
    ----------
    checkpoint : str or os.PathLike
        An ultralytics ``.pt`` checkpoint, unpickled safely first
        (`xami.models.safe_load.read_ultralytics_checkpoint`).
    target : str or os.PathLike
        The ONNX file to write.
    imgsz : int, optional
        Export size in pixels (default: the detector's inference size, `DetectorConfig.imgsz`).

    Raises
    ------
    xami.errors.CheckpointError
        The checkpoint cannot be loaded.
    xami.errors.MissingExtraError
        PyTorch or ultralytics is not installed.
    """
    from xami.models.safe_load import read_ultralytics_checkpoint
    from xami.models.ultralytics_setup import ultralytics_offline

    checkpoint, target = Path(checkpoint), Path(target)
    ul = ultralytics_offline()
    read_ultralytics_checkpoint(checkpoint)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        weights = Path(scratch) / checkpoint.name
        shutil.copyfile(checkpoint, weights)
        with quiet_onnx_export():
            exported = ul.YOLO(str(weights)).export(
                format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=ONNX_OPSET,
                device="cpu", verbose=False)
        with atomic_path(target) as tmp:
            shutil.move(exported, tmp)


def fused_conv_factors(checkpoint: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray,
                                                                              np.ndarray]]:
    """The fp16 convolution weights and fp32 batch-norm scales of a checkpoint, by export name.

    ultralytics' exporter folds each batch norm into its convolution (torch's
    ``fuse_conv_bn_weights``): the exported weight is ``w * scale`` with ``scale = gamma *
    rsqrt(var + eps)`` per output channel, in fp32, which fp16 cannot hold. Stored as the
    checkpoint's fp16 ``w`` times ``scale``, it is the same fp32 weight (`store_fp16` checks
    every one bit by bit). Needs ``xami[train]``.

    Parameters
    ----------
    checkpoint : str or os.PathLike
        An ultralytics checkpoint.

    Returns
    -------
    dict
        ``"model.0.conv.weight"`` (the name in the export) -> (fp16 ``[O, I, k, k]`` weight,
        fp32 ``[O]`` scale).
    """
    from xami.models.safe_load import read_ultralytics_checkpoint

    torch = import_extra("torch", "the ONNX export")
    ckpt = read_ultralytics_checkpoint(checkpoint)
    model = (ckpt.get("ema") or ckpt["model"]).float()
    factors = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                # as torch.nn.utils.fusion.fuse_conv_bn_weights, which ultralytics calls
                scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
                factors[f"{name}.conv.weight"] = (conv.weight.half().numpy(), scale.numpy())
    return factors


def store_fp16(model: Any, factors: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
               ) -> int:
    """Store fp32 initializers as fp16 wherever that gives back the same fp32 values.

    An initializer ``W`` exactly representable in fp16 becomes ``W.fp16`` and a ``Cast`` to
    float32 named ``W``; one of ``factors`` (`fused_conv_factors`) whose fp16 weight times its
    scale is ``W`` bit for bit becomes ``W.fp16`` and ``W.scale`` with a ``Cast`` and a ``Mul``.
    Anything else stays as it is. The graph computes with the very same fp32 weights (ONNX
    Runtime folds these nodes when it loads the file), and the file holds about half the bytes.

    Parameters
    ----------
    model : onnx.ModelProto
        Changed in place.
    factors : dict, optional
        Fused convolution weights by name, as `fused_conv_factors` returns.

    Returns
    -------
    int
        How many initializers are stored as fp16.
    """
    from onnx import TensorProto, helper, numpy_helper

    factors = factors or {}
    graph = model.graph
    inputs = {i.name for i in graph.input}
    nodes, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in inputs:
            kept.append(init)
            continue
        name, values = init.name, numpy_helper.to_array(init)
        half, scale = factors.get(name, (values.astype(np.float16), None))
        cast = half.astype(np.float32)
        if scale is not None:
            cast = cast * scale.reshape(-1, *[1] * (half.ndim - 1))
        if cast.shape != values.shape or not np.array_equal(cast.view(np.uint32),
                                                             values.view(np.uint32)):
            kept.append(init)
            continue
        kept.append(numpy_helper.from_array(half, f"{name}.fp16"))
        cast_out = name if scale is None else f"{name}.fp32"
        nodes.append(helper.make_node("Cast", [f"{name}.fp16"], [cast_out], name=f"{name}.cast",
                                      to=TensorProto.FLOAT))
        if scale is not None:
            kept.append(numpy_helper.from_array(scale.reshape(-1, *[1] * (half.ndim - 1)),
                                                f"{name}.scale"))
            nodes.append(helper.make_node("Mul", [cast_out, f"{name}.scale"], [name],
                                          name=f"{name}.mul"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes.extend(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return sum(init.data_type == TensorProto.FLOAT16 for init in kept)


def write_bundled_onnx(checkpoint: str | os.PathLike[str] | None = None,
                       target: str | os.PathLike[str] | None = None) -> Path:
    """Make the detector's shipped ONNX file: `export_ultralytics`, then `store_fp16`.

    The file records the checkpoint's SHA-256 under `SOURCE_SHA256_KEY` in its metadata, next
    to ultralytics' own (class names, stride, size). Its outputs are bitwise those of the plain
    fp32 export (tested); it is half the size. ``make weights-onnx`` runs it. Needs
    ``xami[train]``.

    Parameters
    ----------
    checkpoint : str or os.PathLike, optional
        Default: `BUNDLED_DETECTOR`.
    target : str or os.PathLike, optional
        Default: `BUNDLED_ONNX`.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> write_bundled_onnx()  # doctest: +SKIP
    PosixPath('.../xami/weights/detector.onnx')
    """
    onnx = import_extra("onnx", "the ONNX export")
    checkpoint = Path(checkpoint or BUNDLED_DETECTOR)
    target = Path(target or BUNDLED_ONNX)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        plain = Path(scratch) / "fp32.onnx"
        export_ultralytics(checkpoint, plain)
        model = onnx.load(str(plain))
    store_fp16(model, fused_conv_factors(checkpoint))
    onnx.helper.set_model_props(model, {
        **{p.key: p.value for p in model.metadata_props},
        SOURCE_SHA256_KEY: file_sha256(checkpoint)})
    onnx.checker.check_model(model)
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
    return target

"""ONNX Runtime backend of the segmentor: MobileSAM exported to ONNX, cached beside its weights.

Two graphs per model and ``sam_size`` (opset 17, torch's TorchScript-based exporter):

- the image encoder, ``images [1, 3, S, S] -> embeddings [1, 256, S/16, S/16]`` (its shapes are
  fixed by ``S``; batches run image by image);
- the prompt encoder + mask decoder, ``embeddings, boxes [N, 4] -> masks [N, 4, S/4, S/4],
  iou_pred [N, 4]`` for any number of boxes N: SAM's four outputs (single mask, then the three
  multimask ones), so that `BoxSegmentor`'s own code picks the mask as the torch backend does.

Both agree with the torch backend to ~1e-5 in the embeddings and ~1e-6 in the logits. Optionally
the encoder is quantised to INT8 (ONNX Runtime's dynamic quantisation of its MatMul/Gemm
weights; convolutions stay fp32). Measured with random weights on a 2-core AVX2 CPU (no VNNI),
20 boxes on a 512 px frame: embeddings off by 2.6% (1024) / 3.3% (512) relative RMS, mask logits
by at most 0.007 / 0.009 (median 0.0006 / 0.0008), 99.2% / 98.9% of mask pixels unchanged,
masks' IoU with the fp32 ones >= 0.96; the encoder only 5-10% faster than fp32 ONNX Runtime.

Cached files are named ``<checkpoint name>.<SHA-256 prefix>.sam<S>.g<G>.<part>.onnx`` (``G``:
`GRAPH_VERSION`) and written atomically beside the checkpoint, or under ``$XAMI_CACHE_DIR/onnx``
(default ``~/.cache/xami/onnx``) when that folder is read-only (`xami.cache.export_folder`).
A changed checkpoint, ``sam_size`` or graph gives new names, so stale files are never used. A
cached file that ONNX Runtime cannot load (it was not written by xami: writes are atomic) raises
`xami.errors.CheckpointError` naming it; delete it to export it again.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn

from xami.cache import export_folder, file_key
from xami.errors import InputError
from xami.io.atomic import atomic_path
from xami.models.box_segmentor import BoxSegmentor, SegmentorConfig, read_segmentor_checkpoint
from xami.models.onnx import ONNX_OPSET, ort_session, quiet_onnx_export
from xami.models.sam import (
    SAM_PATCH_SIZE,
    build_sam,
    decode_boxes,
    is_layer_norm_2d,
    layer_norm_2d,
    load_sam_state,
)

GRAPH_VERSION = 2
"""Raised whenever the exported graphs change, so that no cache holds an older graph."""
PARTS = ("encoder", "decoder")
QUANTIZATIONS = ("int8",)
"""Quantisations of the encoder (`quantize_int8`)."""


class OnnxSegmentor(BoxSegmentor):
    """A `BoxSegmentor` whose encoder and decoder run in ONNX Runtime (CPU), for inference only.

    Same methods and outputs as the torch `xami.models.segmentor.Segmentor` (tensors on the
    CPU, never with gradients); the weights live in the ONNX files: train and save the torch
    segmentor they were exported from.

    Parameters
    ----------
    encoder : onnxruntime.InferenceSession
        The image encoder, ``images [1, 3, S, S] -> embeddings``.
    decoder : onnxruntime.InferenceSession
        Prompt encoder + mask decoder, ``embeddings, boxes [N, 4] -> masks [N, 4, S/4, S/4],
        iou_pred [N, 4]``.
    config : SegmentorConfig
        The settings the files were exported for (``sam_size``) and are run with.
    quantize : str, optional
        ``"int8"`` when the encoder is the quantised one.
    source : str, optional
        The checkpoint the files were exported from, or None.

    Examples
    --------
    >>> segmentor = load_segmentor("mobile_sam.pt", backend="onnx")  # doctest: +SKIP
    >>> segmentor.predict(frame, boxes).masks.shape  # doctest: +SKIP
    (3, 512, 512)
    """

    backend = "onnx"

    def __init__(self, encoder: ort.InferenceSession, decoder: ort.InferenceSession,
                 config: SegmentorConfig, *, quantize: str | None = None,
                 source: str | None = None) -> None:
        super().__init__(config, source=source)
        self.encoder = encoder
        self.decoder = decoder
        self.quantize = quantize

    def _encode(self, prepared: torch.Tensor) -> torch.Tensor:
        """The ONNX encoder, image by image (its input shape is fixed)."""
        images = prepared.detach().cpu().numpy()
        return torch.cat([torch.from_numpy(self.encoder.run(None, {"images": x[None]})[0])
                          for x in images])

    def _decode_masks(self, embeddings: torch.Tensor,
                      boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ONNX decoder's four masks and IoUs per box."""
        masks, iou_pred = self.decoder.run(None, {
            "embeddings": embeddings.detach().cpu().numpy(),
            "boxes": boxes.detach().cpu().numpy()})
        return torch.from_numpy(masks), torch.from_numpy(iou_pred)


class _BoxDecoder(nn.Module):
    """Prompt encoder + mask decoder on box prompts, returning all four masks (the export)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor,
                boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[1, 256, e, e]`` and ``[N, 4]`` prompt boxes -> ``[N, 4, 4e, 4e]``, ``[N, 4]``."""
        return decode_boxes(self.model, embeddings, boxes)


def _traceable(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that the TorchScript exporter can trace.

    ultralytics' ``LayerNorm2d`` passes ``x.shape[1:2]`` to ``layer_norm``, which the tracer
    records as a tensor and the exporter rejects ("not constant"); the copy's layer norms use
    the channel count of their weights instead (the same operation).
    """
    module = copy.deepcopy(module)
    for layer in module.modules():
        if is_layer_norm_2d(layer):
            layer.forward = functools.partial(layer_norm_2d, layer)
    return module


def export_sam(model: nn.Module, sam_size: int, encoder_path: str | os.PathLike[str],
               decoder_path: str | os.PathLike[str]) -> None:
    """Export a SAM model's encoder and box decoder to two ONNX files (atomically).

    Parameters
    ----------
    model : torch.nn.Module
        A model from `xami.models.sam.build_sam` built for ``sam_size``, in eval mode.
    sam_size : int
        Its input side.
    encoder_path, decoder_path : str or os.PathLike
        Where to write the image encoder and the prompt encoder + mask decoder.
    """
    side = sam_size // SAM_PATCH_SIZE
    boxes = torch.tensor([[0.0, 0.0, sam_size / 2, sam_size / 2], [8.0, 8.0, sam_size, sam_size]])
    with quiet_onnx_export(), torch.no_grad():
        with atomic_path(encoder_path) as tmp:
            torch.onnx.export(_traceable(model.image_encoder),
                              (torch.zeros(1, 3, sam_size, sam_size),), tmp, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=["images"],
                              output_names=["embeddings"])
        with atomic_path(decoder_path) as tmp:
            # a copy in eval mode: the exporter restores the wrapper's mode afterwards, which
            # would otherwise switch the caller's model to training
            torch.onnx.export(_BoxDecoder(copy.deepcopy(model)).eval(),
                              (torch.zeros(1, 256, side, side), boxes), tmp, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=["embeddings", "boxes"],
                              output_names=["masks", "iou_pred"],
                              dynamic_axes={name: {0: "boxes"}
                                            for name in ("boxes", "masks", "iou_pred")})


def quantize_int8(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Write a dynamically INT8-quantised copy of an ONNX model (atomically).

    The weights of MatMul/Gemm nodes become uint8 and their inputs are quantised at run time.
    uint8 weights (not int8): ONNX Runtime's uint8 x int8 kernels saturate on AVX2 CPUs
    without VNNI, which made TinyViT's embeddings unusable (relative RMS error 0.9 against 0.03
    with uint8, measured on this project's machine). Convolutions stay fp32 (the exporter
    leaves their folded weights as computed constants, which the quantiser does not take).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(target) as tmp:
        quantize_dynamic(Path(source), tmp, op_types_to_quantize=["MatMul", "Gemm"],
                         weight_type=QuantType.QUInt8, extra_options={"MatMulConstBOnly": True})


def onnx_segmentor(model: nn.Module, config: SegmentorConfig, folder: str | os.PathLike[str], *,
                   quantize: str | None = None) -> OnnxSegmentor:
    """Export a torch SAM model to ``folder`` and return its ONNX Runtime segmentor.

    Parameters
    ----------
    model : torch.nn.Module
        A SAM model (e.g. ``Segmentor.model`` of `xami.models.segmentor.build_segmentor`) built
        for ``config.sam_size``, in eval mode.
    config : SegmentorConfig
        The settings it was built for and the segmentor runs with.
    folder : str or os.PathLike
        Where to write ``sam<S>.encoder.onnx``, ``sam<S>.decoder.onnx`` (and
        ``sam<S>.encoder.int8.onnx``); existing files are replaced.
    quantize : str, optional
        ``"int8"`` to run a dynamically quantised encoder.

    Returns
    -------
    OnnxSegmentor
        With ``config``.

    Examples
    --------
    >>> segmentor = build_segmentor(SegmentorConfig(sam_size=512))  # doctest: +SKIP
    >>> fast = onnx_segmentor(segmentor.model, segmentor.config, "onnx")  # doctest: +SKIP
    """
    _check_quantize(quantize)
    paths = _paths(Path(folder), f"sam{config.sam_size}.g{GRAPH_VERSION}", quantize)
    export_sam(model, config.sam_size, paths["encoder"], paths["decoder"])
    if quantize is not None:
        quantize_int8(paths["encoder"], paths[quantize])
    return _from_files(paths, config, quantize)


def cached_onnx_segmentor(checkpoint: str | os.PathLike[str], *, sam_size: int | None = None,
                          quantize: str | None = None) -> OnnxSegmentor:
    """The ONNX segmentor of a checkpoint, exported on first use and cached (module docstring).

    Parameters
    ----------
    checkpoint : str or os.PathLike
        A SAM checkpoint (`xami.models.box_segmentor.read_segmentor_checkpoint`); it names and
        keys the cached files, and its tensors are loaded into a torch model only when the
        encoder or decoder has to be exported.
    sam_size : int, optional
        Model input side; None: the checkpoint's saved ``sam_size``, else `SegmentorConfig`'s.
    quantize : str, optional
        ``"int8"`` to run a dynamically quantised encoder (quantised from the cached fp32 one).

    Returns
    -------
    OnnxSegmentor
        Whose ``source`` is ``checkpoint``.

    Raises
    ------
    xami.errors.CheckpointError
        The checkpoint is missing or unreadable, its state dict or config does not match the
        model (at export), or a cached file cannot be loaded.
    xami.errors.InputError
        Unsupported ``quantize``.
    """
    _check_quantize(quantize)
    state_dict, config = read_segmentor_checkpoint(checkpoint, sam_size)
    source, checkpoint = str(checkpoint), Path(checkpoint)
    prefix = f"{checkpoint.name}.{file_key(checkpoint)}.sam{config.sam_size}.g{GRAPH_VERSION}"
    names = [path.name for path in _paths(Path(), prefix, quantize).values()]
    paths = _paths(export_folder(checkpoint, names), prefix, quantize)
    if not (paths["encoder"].is_file() and paths["decoder"].is_file()):
        model = build_sam(config.model_type, img_size=config.sam_size)
        export_sam(load_sam_state(model, state_dict, checkpoint), config.sam_size,
                   paths["encoder"], paths["decoder"])
    if quantize is not None and not paths[quantize].is_file():
        quantize_int8(paths["encoder"], paths[quantize])
    return _from_files(paths, config, quantize, source=source)


def _check_quantize(quantize: str | None) -> None:
    """Validate the quantisation option."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InputError(None, f"quantize must be None or one of {QUANTIZATIONS}, "
                               f"got {quantize!r}")


def _paths(folder: Path, prefix: str, quantize: str | None) -> dict[str, Path]:
    """The files of one export: encoder, decoder, and the quantised encoder if asked for."""
    paths = {part: folder / f"{prefix}.{part}.onnx" for part in PARTS}
    if quantize is not None:
        paths[quantize] = folder / f"{prefix}.encoder.{quantize}.onnx"
    return paths


def _from_files(paths: dict[str, Path], config: SegmentorConfig, quantize: str | None, *,
                source: str | None = None) -> OnnxSegmentor:
    """Open the sessions of an export."""
    encoder = ort_session(paths[quantize or "encoder"])
    return OnnxSegmentor(encoder, ort_session(paths["decoder"]), config, quantize=quantize,
                         source=source)

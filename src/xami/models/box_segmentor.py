"""The segmentor's contract, shared by its engines: MobileSAM prompted by boxes, with XAMI's image
preparation and mask selection.

What is XAMI's own (reference notes §4.4, §4.5, §6.2), around ultralytics' SAM modules:

- each image is normalised by the mean and (unbiased) standard deviation of its covered
  (non-zero) pixels, all channels pooled, instead of SAM's ImageNet constants;
- it is resized (bilinear) so that its longer side is ``sam_size`` (512 -> 1024 for the paper),
  pixels without coverage stay exactly 0 (and so does the bottom/right padding of a non-square
  image), and box prompts are scaled by the same factors;
- the decoder predicts three masks per box (multimask) and the one with the highest predicted
  IoU is kept; its logits are upsampled to ``sam_size``, cropped to the resized image and
  upsampled again to the input image's size (SAM's ``postprocess_masks``). Mask = logit > 0.

The encoder runs once per image; the boxes of an image are decoded in chunks (`SegmentorConfig`).
`BoxSegmentor` does all of this around two engine calls, the image encoder and the mask decoder:
the torch `xami.models.segmentor.Segmentor` (trainable) and the ONNX Runtime
`xami.models.sam_onnx.OnnxSegmentor` implement them; `xami.models.build.load_segmentor` picks one.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)

from xami.errors import CheckpointError, InputError
from xami.instrument import coverage_mask
from xami.models.sam import (
    LOW_RES_FACTOR,
    SAM_PATCH_SIZE,
    read_checkpoint,
    resized_shape,
    scale_boxes,
    upsample_logits,
)
from xami.structures import Instances


@dataclass(frozen=True)
class SegmentorConfig:
    """How the segmentor is built and run; saved as ``"config"`` in the checkpoints xami writes.

    Attributes
    ----------
    model_type : str
        A key of `xami.models.sam.SAM_REGISTRY` (paper: ``"vit_t"``, MobileSAM).
    sam_size : int
        Side of the square model input in pixels, a multiple of 64. Paper: 1024 (the 512 px
        frames are upsized 2x). 512 runs the 512 px frames natively, with a ~4x cheaper encoder
        (image embeddings 32x32, low-res masks 128x128) but outside SAM's training regime.
    multimask : bool
        Predict SAM's three masks per box and keep the one with the highest predicted IoU
        (paper / authors' code: True); False uses SAM's single-mask output.
    chunk_size : int
        Most boxes per mask-decoder call (`xami.models.sam.decode_boxes`, whose image-side work
        is shared by the boxes of a call); an image's boxes are split into calls of even size
        (11 -> 4, 4, 3). 5, measured with ``benchmarks/decoder_chunks.py`` (20 boxes, 2-core
        CPU, 2 threads, best of 5, ms per box for chunks of 1/2/3/5/8/10/20): at 1024
        55/48/45/46/49/49/49, at 512 17/13/12/11/11/11/11. Chunks of 5 are within 2% of the
        fastest at both sizes; chunks of 1 lose 20-55%.
    mask_threshold : float
        Logit above which a pixel is in the mask (SAM and the authors: 0.0).
    """

    model_type: str = "vit_t"
    sam_size: int = 1024
    multimask: bool = True
    chunk_size: int = 5
    mask_threshold: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise InputError(None, "chunk_size must be a positive integer, "
                                   f"got {self.chunk_size!r}")


def _as_rgb(image: Any) -> np.ndarray:
    """Validate an 8-bit or float frame and return it as ``float32 [H, W, 3]``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise InputError(None, f"expected an 8-bit (uint8) or float image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(None, f"expected an image of shape [H, W] or [H, W, 3], got {image.shape}")
    if image.size == 0:
        raise InputError(None, f"image is empty (shape {image.shape})")
    if not np.isfinite(image).all():
        raise InputError(None, "image contains NaN or infinite values; set pixels without "
                               "coverage to 0")
    return image.astype(np.float32)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[B, C, H, W]``, antialiased when shrinking (as PIL's bilinear)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def prepare_image(image: np.ndarray, sam_size: int) -> torch.Tensor:
    """Normalise and resize one frame into SAM's input tensor (XAMI's data path).

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, 3]`` frame as released, or a float image already
        preprocessed (e.g. a FITS frame after `xami.preprocess`). Pixels equal to 0 have no
        coverage; there must be at least one covered pixel and no NaN.
    sam_size : int
        Side of the square model input.

    Returns
    -------
    torch.Tensor
        ``float32 [1, 3, sam_size, sam_size]``: ``(x - mean) / std`` with the mean and unbiased
        standard deviation of the covered pixels (channels pooled; std 1 if it is 0), resized
        bilinearly (longer side = ``sam_size``). Output pixels whose resized coverage is 0, and
        the bottom/right padding, are exactly 0.

    Raises
    ------
    xami.errors.InputError
        Wrong dtype, shape or size, NaN/inf, or no covered pixel.

    Examples
    --------
    >>> frame = np.full((32, 32), 100, np.uint8)
    >>> frame[:8, :8] = 0  # a corner without coverage
    >>> x = prepare_image(frame, 64)
    >>> tuple(x.shape), float(x[0, 0, 0, 0]), float(x[0, 0, 63, 63])
    ((1, 3, 64, 64), 0.0, 0.0)
    """
    return _prepare_rgb(_as_rgb(image), sam_size)


def _prepare_rgb(pixels: np.ndarray, sam_size: int) -> torch.Tensor:
    """`prepare_image` of a frame already checked by `_as_rgb` (`BoxSegmentor.predict` has one)."""
    covered = coverage_mask(pixels)
    if not covered.any():
        raise InputError(None, "image has no covered (non-zero) pixel")
    mean, std = _coverage_stats(pixels[covered])
    size = resized_shape(pixels.shape[:2], sam_size)
    x = _resize(torch.from_numpy(pixels).permute(2, 0, 1)[None], size)
    coverage = _resize(torch.from_numpy(covered.astype(np.float32)).permute(2, 0, 1)[None], size)
    x = torch.where(coverage > 0, (x - mean) / std, torch.zeros(()))
    return F.pad(x, (0, sam_size - size[1], 0, sam_size - size[0]))


def _coverage_stats(values: np.ndarray) -> tuple[float, float]:
    """Mean and unbiased std of the covered values (std 1 when undefined or 0)."""
    mean = float(values.mean(dtype=np.float64))
    std = float(values.std(dtype=np.float64, ddof=1)) if values.size > 1 else 0.0
    return mean, std if std > 0 else 1.0


def _as_boxes(boxes: Any) -> np.ndarray:
    """Validate ``[N, 4]`` XYXY boxes and return them as float64."""
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(None, f"boxes must be [N, 4] XYXY, got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise InputError(None, "boxes contain NaN or infinite values")
    return boxes


class BoxSegmentor(abc.ABC):
    """MobileSAM prompted by boxes, whatever its engine: encoder once per image, decoder per chunk
    of boxes.

    Parameters
    ----------
    config : SegmentorConfig
        How the model was built and is run.
    source : str, optional
        The checkpoint it was loaded from (`xami.models.build.load_segmentor`); None for a
        built model.

    Examples
    --------
    >>> segmentor = xami.load_segmentor("mobile_sam.pt", sam_size=512)  # doctest: +SKIP
    >>> frame = np.full((512, 512), 80, np.uint8)  # doctest: +SKIP
    >>> segmentor.predict(frame, [[100, 100, 200, 300]]).masks.shape  # doctest: +SKIP
    (1, 512, 512)
    """

    backend: str
    """What the model runs on: ``"torch"`` or ``"onnx"`` (`xami.models.build.BACKENDS`)."""

    def __init__(self, config: SegmentorConfig = SegmentorConfig(), *,
                 source: str | None = None) -> None:
        self.config = config
        self.source = source

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding (``sam_size / 16``)."""
        return self.config.sam_size // SAM_PATCH_SIZE

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """`prepare_image` at this segmentor's ``sam_size``: ``[1, 3, S, S]``."""
        return prepare_image(image, self.config.sam_size)

    def embed(self, prepared: torch.Tensor) -> torch.Tensor:
        """Run the image encoder on prepared images.

        Parameters
        ----------
        prepared : torch.Tensor
            ``[B, 3, S, S]`` from `prepare_image` (``S = config.sam_size``).

        Returns
        -------
        torch.Tensor
            ``[B, 256, S / 16, S / 16]`` image embeddings, on the model's device; with
            gradients unless called under ``torch.no_grad()`` or the encoder is frozen.

        Raises
        ------
        xami.errors.InputError
            ``prepared`` does not have that shape.
        """
        s = self.config.sam_size
        if prepared.ndim != 4 or tuple(prepared.shape[1:]) != (3, s, s):
            raise InputError(None, f"prepared images must be [B, 3, {s}, {s}], "
                                   f"got {tuple(prepared.shape)}")
        return self._encode(prepared)

    def decode_low_res(self, embeddings: torch.Tensor, boxes: Any,
                       image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode box prompts on one image's embeddings, keeping one mask per box.

        Parameters
        ----------
        embeddings : torch.Tensor
            ``[1, 256, S / 16, S / 16]`` from `embed` (may be cached, without gradients).
        boxes : array_like
            ``[N, 4]`` XYXY boxes in the image's pixels (numpy or torch).
        image_size : tuple of int
            ``(height, width)`` of the image the boxes refer to.

        Returns
        -------
        low_res : torch.Tensor
            ``[N, S / 4, S / 4]`` logits of the selected mask (highest predicted IoU among the
            three when ``config.multimask``), before upsampling (see `upsample_logits`).
        iou_pred : torch.Tensor
            ``[N]`` predicted IoU of the selected masks.
            Both carry gradients to the trainable decoder parameters unless under ``no_grad``.

        Raises
        ------
        xami.errors.InputError
            Embeddings or boxes of the wrong shape.
        """
        self._check_embeddings(embeddings)
        prompts = scale_boxes(_as_boxes(boxes), image_size, self.config.sam_size)
        prompts = torch.as_tensor(prompts, dtype=torch.float32, device=embeddings.device)
        if len(prompts) == 0:
            side = self.config.sam_size // LOW_RES_FACTOR
            return embeddings.new_zeros((0, side, side)), embeddings.new_zeros(0)
        chunks = -(-len(prompts) // self.config.chunk_size)  # even sizes: 11 -> 4, 4, 3
        parts = [self._decode_chunk(embeddings, chunk)
                 for chunk in prompts.tensor_split(chunks)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def decode(self, embeddings: torch.Tensor, boxes: Any,
               image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`decode_low_res` followed by `upsample_logits`.

        Returns
        -------
        logits : torch.Tensor
            ``[N, height, width]`` mask logits at the image's size (mask = logits > 0).
        iou_pred : torch.Tensor
            ``[N]`` predicted IoU of each mask.
        """
        low_res, iou_pred = self.decode_low_res(embeddings, boxes, image_size)
        return upsample_logits(low_res, image_size, self.config.sam_size), iou_pred

    def predict(self, image: np.ndarray, boxes: Any, *, labels: Any = None) -> Instances:
        """Segment the artefact in each box of one image.

        Parameters
        ----------
        image : numpy.ndarray
            8-bit frame ``uint8 [H, W]`` or ``[H, W, 3]`` as released, or a preprocessed float
            image (see `prepare_image`); 0 = no coverage.
        boxes : array_like
            ``[N, 4]`` XYXY boxes in the image's pixels (e.g. the detector's).
        labels : array_like, optional
            ``[N]`` COCO class ids to copy into the result (e.g. the detector's); default 0
            ("class unknown") for every box.

        Returns
        -------
        Instances
            The given boxes and labels, masks ``bool [N, H, W]`` (logits > ``mask_threshold``),
            scores = the masks' predicted IoU clipped to [0, 1]. With no box, an empty result
            and the encoder is not run.

        Raises
        ------
        xami.errors.InputError
            Bad image, boxes or labels.
        """
        pixels = _as_rgb(image)
        height, width = pixels.shape[:2]
        boxes = _as_boxes(boxes)
        labels = _as_labels(labels, len(boxes))
        if len(boxes) == 0:
            return Instances.empty(height, width)
        with torch.inference_mode():
            prepared = _prepare_rgb(pixels, self.config.sam_size)
            logits, iou_pred = self.decode(self.embed(prepared), boxes, (height, width))
        masks = (logits > self.config.mask_threshold).cpu().numpy()
        scores = np.clip(iou_pred.cpu().numpy().astype(np.float64), 0.0, 1.0)
        return Instances(boxes, masks, labels, scores)

    @abc.abstractmethod
    def _encode(self, prepared: torch.Tensor) -> torch.Tensor:
        """The image encoder on validated ``[B, 3, S, S]`` inputs: ``[B, 256, S / 16, S / 16]``."""

    def _decode_chunk(self, embeddings: torch.Tensor,
                      boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoder call on a chunk of boxes; keep the mask with the highest IoU."""
        masks, iou_pred = self._decode_masks(embeddings, boxes)
        keep = slice(1, None) if self.config.multimask else slice(0, 1)
        masks, iou_pred = masks[:, keep], iou_pred[:, keep]
        best = iou_pred.argmax(dim=1)
        rows = torch.arange(len(boxes), device=boxes.device)
        return masks[rows, best], iou_pred[rows, best]

    @abc.abstractmethod
    def _decode_masks(self, embeddings: torch.Tensor,
                      boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder: SAM's four masks ``[N, 4, S / 4, S / 4]`` and IoUs
        ``[N, 4]`` per box, on one image's embeddings and ``[N, 4]`` prompt boxes."""

    def _check_embeddings(self, embeddings: torch.Tensor) -> None:
        """Decoding takes one image's embeddings at this segmentor's size."""
        e = self.embedding_size
        if embeddings.ndim != 4 or tuple(embeddings.shape) != (1, 256, e, e):
            raise InputError(None, f"embeddings must be [1, 256, {e}, {e}] (one image), "
                                   f"got {tuple(embeddings.shape)}")


def _as_labels(labels: Any, n: int) -> np.ndarray:
    """Validate ``[N]`` class ids, or 0 for each box when None."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(None, f"labels must be {n} integers (one per box), got {labels!r}")
    return labels.astype(np.int64)


def read_segmentor_checkpoint(checkpoint: str | os.PathLike[str], sam_size: int | None,
                              ) -> tuple[dict[str, torch.Tensor], SegmentorConfig]:
    """A SAM checkpoint's tensors (`xami.models.sam.read_checkpoint`) and its saved config (the
    default if none) at ``sam_size`` when one is asked for; an invalid config is a
    `xami.errors.CheckpointError`."""
    state_dict, saved = read_checkpoint(checkpoint)
    return state_dict, _saved_config(saved, checkpoint, sam_size)


def _saved_config(saved: dict[str, Any] | None, path: str | os.PathLike[str],
                  sam_size: int | None) -> SegmentorConfig:
    """The checkpoint's config (default if none), with ``sam_size`` when one is asked for."""
    try:
        config = SegmentorConfig(**(saved or {}))
    except (TypeError, InputError) as err:
        raise CheckpointError(path, f"invalid segmentor config {saved!r} ({err})") from err
    return config if sam_size is None else replace(config, sam_size=sam_size)

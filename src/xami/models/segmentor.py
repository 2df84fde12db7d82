"""The torch engine of the segmentor: MobileSAM's modules in PyTorch, trainable and saveable.

XAMI's image preparation and mask selection are `xami.models.box_segmentor`'s, shared with the
ONNX Runtime engine (`xami.models.sam_onnx`).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from xami.models.box_segmentor import BoxSegmentor, SegmentorConfig, read_segmentor_checkpoint
from xami.models.sam import build_sam, decode_boxes, load_sam_state


class Segmentor(BoxSegmentor):
    """A `BoxSegmentor` on a torch SAM model: what training updates and checkpoints save.

    Parameters
    ----------
    model : torch.nn.Module
        A SAM model from `xami.models.sam.build_sam` (``image_encoder``, ``prompt_encoder``,
        ``mask_decoder``) built for ``config.sam_size``; trainable as any module. Keep it in
        eval mode to predict (TinyViT has batch norms).
    config : SegmentorConfig
        How the model was built and is run.
    source : str, optional
        The checkpoint it was loaded from (`load_torch_segmentor`); None for a built model.

    Examples
    --------
    >>> segmentor = build_segmentor(SegmentorConfig(sam_size=512))  # doctest: +SKIP
    >>> frame = np.full((512, 512), 80, np.uint8)  # doctest: +SKIP
    >>> segmentor.predict(frame, [[100, 100, 200, 300]]).masks.shape  # doctest: +SKIP
    (1, 512, 512)
    """

    backend = "torch"

    def __init__(self, model: nn.Module, config: SegmentorConfig = SegmentorConfig(), *,
                 source: str | None = None) -> None:
        super().__init__(config, source=source)
        self.model = model

    def checkpoint(self) -> dict[str, Any]:
        """``{"model": state_dict, "config": dict}``, the form xami saves (add optimiser etc.)."""
        return {"model": self.model.state_dict(), "config": asdict(self.config)}

    def _encode(self, prepared: torch.Tensor) -> torch.Tensor:
        """The torch image encoder, on the model's device."""
        x = prepared.to(self._device(), memory_format=torch.channels_last)
        return self.model.image_encoder(x).contiguous()

    def _decode_masks(self, embeddings: torch.Tensor,
                      boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The torch prompt encoder + mask decoder (`xami.models.sam.decode_boxes`)."""
        return decode_boxes(self.model, embeddings, boxes)

    def _device(self) -> torch.device:
        """Where the model's parameters are."""
        return next(self.model.parameters()).device


def build_segmentor(config: SegmentorConfig = SegmentorConfig()) -> Segmentor:
    """Build a segmentor with random weights (for training from scratch, or tests).

    Parameters
    ----------
    config : SegmentorConfig
        Model type and settings.

    Returns
    -------
    Segmentor
        In eval mode.
    """
    return Segmentor(build_sam(config.model_type, img_size=config.sam_size), config)


def load_torch_segmentor(checkpoint: str | os.PathLike[str], *,
                         sam_size: int | None = None) -> Segmentor:
    """Load a SAM checkpoint into a torch segmentor (`xami.models.build.load_segmentor`).

    Parameters
    ----------
    checkpoint : str or os.PathLike
        A plain SAM state dict or ``{"model": state_dict, "config": dict}``, loaded strictly.
    sam_size : int, optional
        Model input side; None: the checkpoint's saved ``sam_size``, else `SegmentorConfig`'s.

    Returns
    -------
    Segmentor
        In eval mode, whose ``source`` is ``checkpoint``.

    Raises
    ------
    xami.errors.CheckpointError
        The file is missing or unreadable, or its state dict or config does not fit the model.
    """
    state_dict, config = read_segmentor_checkpoint(checkpoint, sam_size)
    model = build_sam(config.model_type, img_size=config.sam_size)
    return Segmentor(load_sam_state(model, state_dict, checkpoint), config, source=str(checkpoint))

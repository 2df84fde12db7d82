"""MobileSAM from ultralytics' SAM modules: builder registry, strict loading, input/output geometry.

The modules (TinyViT encoder, SAM prompt encoder and mask decoder) are ultralytics' own; their
attribute and parameter names are those of the official MobileSAM, so the official
``mobile_sam.pt`` and the XAMI ``*_sam.pth`` (plain state dicts of the whole model, keys
``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``) load by key, strictly.

SAM's geometry (as segment-anything's ``ResizeLongestSide`` and ``postprocess_masks``): an image
is resized so that its longer side is the model's input size and padded at the bottom/right;
boxes are scaled by the same factors; low-res mask logits are upsampled back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from torch import nn

from xami.errors import CheckpointError, InputError
from xami.models.ultralytics_setup import ultralytics_offline

SAM_PATCH_SIZE = 16  # input pixels per image-embedding cell (fixed by the encoders)
SAM_SIZE_MULTIPLE = 64  # TinyViT's stages need the input side to divide evenly down to 1/16
LOW_RES_FACTOR = 4  # the mask decoder's output is 4x its image embedding, i.e. sam_size / 4


def build_sam_vit_t() -> nn.Module:
    """MobileSAM ``vit_t`` (TinyViT-5M encoder) with ultralytics' random initialisation."""
    ultralytics_offline()
    from ultralytics.models.sam.build import build_mobile_sam

    return build_mobile_sam(checkpoint=None)


SAM_REGISTRY: dict[str, Callable[[], nn.Module]] = {"vit_t": build_sam_vit_t}


def build_sam(model_type: str, *, img_size: int) -> nn.Module:
    """Build an untrained SAM model for square inputs of ``img_size`` pixels.

    Parameters
    ----------
    model_type : str
        A key of `SAM_REGISTRY` (``"vit_t"``: MobileSAM).
    img_size : int
        Side of the (square, padded) model input in pixels, a multiple of 64: 1024 as SAM was
        trained (image embeddings 64x64, low-res masks 256x256), or 512 (32x32 and 128x128).

    Returns
    -------
    torch.nn.Module
        ultralytics ``SAMModel`` with ``image_encoder``, ``prompt_encoder``, ``mask_decoder``,
        random weights, in eval mode. The encoder's convolution weights are channels-last (and
        `Segmentor` feeds it channels-last images): the same values, 25% faster on a CPU.

    Raises
    ------
    xami.errors.InputError
        Unknown ``model_type`` or an ``img_size`` that is not a positive multiple of 64.

    Examples
    --------
    >>> model = build_sam("vit_t", img_size=512)
    >>> model.prompt_encoder.image_embedding_size
    [32, 32]
    """
    if model_type not in SAM_REGISTRY:
        raise InputError(None, f"model_type must be one of {sorted(SAM_REGISTRY)}, "
                               f"got {model_type!r}")
    if not isinstance(img_size, int) or img_size <= 0 or img_size % SAM_SIZE_MULTIPLE:
        raise InputError(None, f"sam_size must be a positive multiple of {SAM_SIZE_MULTIPLE}, "
                               f"got {img_size!r}")
    model = SAM_REGISTRY[model_type]()
    model.set_imgsz([img_size, img_size])
    model.image_encoder.to(memory_format=torch.channels_last)  # oneDNN's fast convolutions
    return model


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor],
                                                          dict[str, Any] | None]:
    """Read a SAM checkpoint: a plain state dict, or ``{"model": state_dict, "config": ...}``.

    Parameters
    ----------
    path : str or os.PathLike
        The file (official ``mobile_sam.pt``, XAMI ``*_sam.pth``, or a checkpoint xami wrote).
        Read with ``torch.load(map_location="cpu", weights_only=True)``: no code is executed.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The model's tensors.
    config : dict or None
        The ``"config"`` entry of a wrapped checkpoint, None for a plain state dict.

    Raises
    ------
    xami.errors.CheckpointError
        The file is missing, unreadable, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "SAM checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or non-torch file
        raise CheckpointError(path, f"not a readable torch checkpoint ({err})") from err
    config = obj.get("config") if isinstance(obj, Mapping) and "model" in obj else None
    state = obj["model"] if isinstance(obj, Mapping) and "model" in obj else obj
    if not _is_state_dict(state):
        raise CheckpointError(path, "expected a state dict of tensors, or {'model': state_dict}, "
                                    f"got {type(state).__name__}")
    if config is not None and not isinstance(config, Mapping):
        raise CheckpointError(path, f"'config' must be a dict, got {type(config).__name__}")
    return dict(state), None if config is None else dict(config)


def _is_state_dict(obj: Any) -> bool:
    """True for a non-empty mapping of str to tensors."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def load_sam_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                   path: str | os.PathLike[str] | None = None) -> nn.Module:
    """Load ``state_dict`` strictly into ``model`` and refresh its eval-mode caches.

    Parameters
    ----------
    model : torch.nn.Module
        A model from `build_sam`.
    state_dict : mapping of str to torch.Tensor
        Exactly the model's keys with the model's shapes.
    path : str or os.PathLike, optional
        The file the tensors came from, named in errors.

    Returns
    -------
    torch.nn.Module
        ``model``, in eval mode. TinyViT caches its attention biases when switched to eval mode,
        so the cache is rebuilt after loading (a model put in eval mode before loading would keep
        its initial biases).

    Raises
    ------
    xami.errors.CheckpointError
        Keys are missing or unexpected (all are listed), or a tensor's shape differs.
    """
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise CheckpointError(path, f"state dict does not match the SAM model: "
                                    f"missing keys {missing}, unexpected keys {unexpected}")
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(path, f"state dict does not match the SAM model ({err})") from err
    return model.eval()


def resized_shape(image_size: tuple[int, int], sam_size: int) -> tuple[int, int]:
    """``(height, width)`` of an image resized so that its longer side is ``sam_size``.

    Parameters
    ----------
    image_size : tuple of int
        ``(height, width)`` of the image in pixels.
    sam_size : int
        Side of the square model input.

    Returns
    -------
    tuple of int
        The resized ``(height, width)``, rounded as SAM's ``ResizeLongestSide``.

    Examples
    --------
    >>> resized_shape((300, 500), 1024)
    (614, 1024)
    """
    scale = sam_size / max(image_size)
    return tuple(max(1, int(side * scale + 0.5)) for side in image_size)


def scale_boxes(boxes: np.ndarray, image_size: tuple[int, int], sam_size: int) -> np.ndarray:
    """Scale XYXY boxes from the image's pixels to SAM's input pixels (the prompt coordinates).

    Parameters
    ----------
    boxes : numpy.ndarray
        ``[N, 4]`` XYXY boxes in the image's pixels.
    image_size : tuple of int
        ``(height, width)`` of the image.
    sam_size : int
        Side of the square model input.

    Returns
    -------
    numpy.ndarray
        ``float64 [N, 4]`` XYXY boxes in the resized image (as SAM's ``apply_boxes``). They are
        given to SAM's prompt encoder as they are, as the authors do with the detector's boxes.

    Examples
    --------
    >>> scale_boxes(np.array([[10, 20, 30, 40]]), (512, 512), 1024).tolist()
    [[20.0, 40.0, 60.0, 80.0]]
    """
    h, w = resized_shape(image_size, sam_size)
    factors = np.array([w / image_size[1], h / image_size[0]] * 2)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * factors


def upsample_logits(low_res: torch.Tensor, image_size: tuple[int, int],
                    sam_size: int) -> torch.Tensor:
    """Upsample low-res mask logits to the input image's size (SAM's ``postprocess_masks``).

    Parameters
    ----------
    low_res : torch.Tensor
        ``[N, sam_size / 4, sam_size / 4]`` logits from `Segmentor.decode_low_res`.
    image_size : tuple of int
        ``(height, width)`` of the input image.
    sam_size : int
        Side of the square model input.

    Returns
    -------
    torch.Tensor
        ``[N, height, width]`` logits: bilinear to ``sam_size``, cropped to the resized image
        (padding removed), bilinear to the image's size. Differentiable.
    """
    h, w = resized_shape(image_size, sam_size)
    x = F.interpolate(low_res[:, None], (sam_size, sam_size), mode="bilinear",
                      align_corners=False)
    x = F.interpolate(x[..., :h, :w], tuple(image_size), mode="bilinear", align_corners=False)
    return x[:, 0]


def layer_norm_2d(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ultralytics' ``LayerNorm2d`` (over the channels of ``[B, C, H, W]``) as one ``layer_norm``.

    The same operation, one fused kernel instead of six passes; the channel count is taken from
    the weights, so the TorchScript exporter records it as a constant.
    """
    return F.layer_norm(x.permute(0, 2, 3, 1), (layer.weight.shape[0],), layer.weight,
                        layer.bias, layer.eps).permute(0, 3, 1, 2)


def decode_boxes(model: nn.Module, embeddings: torch.Tensor,
                 boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's prompt encoder + mask decoder for box prompts on one image, image-side work shared.

    The same arithmetic as ultralytics' ``PromptEncoder`` + ``MaskDecoder.predict_masks`` with
    every box's copy of the image embedding, but without the copies: the image tokens are one
    tensor broadcast over the boxes until the first two-way block updates them per box, so the
    first block's image-side projections run once per call instead of once per box (about a
    quarter of the decoder's FLOPs), ``keys + key_pe`` is computed once per block, and the
    upscaling runs channels-last. Differentiable (training uses it too).

    Parameters
    ----------
    model : torch.nn.Module
        A SAM model from `build_sam` (MobileSAM's two-way transformer decoder).
    embeddings : torch.Tensor
        ``[1, 256, e, e]`` image embeddings of one image.
    boxes : torch.Tensor
        ``[N, 4]`` XYXY box prompts in model-input pixels, N >= 1.

    Returns
    -------
    masks : torch.Tensor
        ``[N, 4, 4e, 4e]`` low-res mask logits: SAM's single-mask output, then its three
        multimask outputs.
    iou_pred : torch.Tensor
        ``[N, 4]`` predicted IoUs of those masks.
    """
    prompt_encoder, decoder = model.prompt_encoder, model.mask_decoder
    transformer = decoder.transformer
    sparse, dense = prompt_encoder(points=None, boxes=boxes, masks=None)
    n, (_, channels, height, width) = boxes.size(0), embeddings.shape  # size(): traced
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight])
    tokens = torch.cat([output_tokens.expand(n, -1, -1), sparse], dim=1)
    keys = (embeddings + dense[:1]).flatten(2).transpose(1, 2)  # [1, HW, C], shared by the boxes
    key_pe = prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2)
    queries = tokens
    for block in transformer.layers:
        queries, keys = _two_way_block(block, queries, keys, tokens, key_pe, n)
    attended = _attention(transformer.final_attn_token_to_image, queries + tokens,
                          keys + key_pe, keys, n)
    queries = transformer.norm_final_attn(queries + attended)
    upscaled = keys.reshape(n, height, width, channels).permute(0, 3, 1, 2)  # channels-last
    for layer in decoder.output_upscaling:
        upscaled = layer_norm_2d(layer, upscaled) if is_layer_norm_2d(layer) else layer(upscaled)
    hyper = torch.stack([mlp(queries[:, 1 + i]) for i, mlp
                         in enumerate(decoder.output_hypernetworks_mlps)], dim=1)  # [N, 4, c]
    _, c, h, w = upscaled.shape
    masks = upscaled.permute(0, 2, 3, 1).reshape(n, h * w, c) @ hyper.transpose(1, 2)
    return masks.transpose(1, 2).reshape(n, -1, h, w), decoder.iou_prediction_head(queries[:, 0])


def is_layer_norm_2d(layer: nn.Module) -> bool:
    """Whether ``layer`` is ultralytics' ``LayerNorm2d`` (run as `layer_norm_2d` by xami).

    Parameters
    ----------
    layer : torch.nn.Module
        Any module.

    Returns
    -------
    bool
    """
    from ultralytics.nn.modules.transformer import LayerNorm2d

    return isinstance(layer, LayerNorm2d)


def _two_way_block(block: nn.Module, queries: torch.Tensor, keys: torch.Tensor,
                   query_pe: torch.Tensor, key_pe: torch.Tensor,
                   n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ultralytics' ``TwoWayAttentionBlock.forward`` for ``n`` boxes; ``keys`` may be shared."""
    if block.skip_first_layer_pe:
        queries = block.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + block.self_attn(q=q, k=q, v=queries)
    queries = block.norm1(queries)
    k = keys + key_pe
    queries = block.norm2(queries + _attention(block.cross_attn_token_to_image,
                                               queries + query_pe, k, keys, n))
    queries = block.norm3(queries + block.mlp(queries))
    keys = block.norm4(keys + _attention(block.cross_attn_image_to_token, k,
                                         queries + query_pe, queries, n))
    return queries, keys


def _attention(attention: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               n: int) -> torch.Tensor:
    """ultralytics' SAM ``Attention.forward`` for ``n`` boxes; the image side may be shared."""
    heads = attention.num_heads
    q, k, v = attention.q_proj(q), attention.k_proj(k), attention.v_proj(v)
    q, k, v = (x.unflatten(-1, (heads, -1)).transpose(1, 2) for x in (q, k, v))
    if torch.onnx.is_in_onnx_export():  # ONNX Runtime: broadcasting MatMuls, 10% faster
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        out = weights @ v
    else:
        q, k, v = (x.expand(n, -1, -1, -1) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
    return attention.out_proj(out.transpose(1, 2).flatten(2))

"""MobileSAM: builder registry, checkpoints in the official layout, SAM geometry, and equivalence
with ultralytics' own loader and predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)

from xami.errors import CheckpointError, InputError
from xami.models.box_segmentor import prepare_image
from xami.models.build import load_segmentor
from xami.models.sam import (
    SAM_REGISTRY,
    build_sam,
    decode_boxes,
    load_sam_state,
    read_checkpoint,
    resized_shape,
    scale_boxes,
    upsample_logits,
)
from xami.models.ultralytics_setup import ultralytics_offline

# keys from the official MobileSAM layout (reference notes §4.2), one per part of the model
OFFICIAL_KEYS = [
    "image_encoder.patch_embed.seq.0.c.weight",
    "image_encoder.patch_embed.seq.2.bn.running_var",
    "image_encoder.layers.0.blocks.1.conv3.bn.num_batches_tracked",
    "image_encoder.layers.2.downsample.conv2.c.weight",
    "image_encoder.layers.3.blocks.1.attn.attention_biases",
    "image_encoder.layers.1.blocks.0.local_conv.bn.running_mean",
    "image_encoder.head.weight",
    "image_encoder.neck.3.bias",
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
    "prompt_encoder.point_embeddings.3.weight",
    "prompt_encoder.mask_downscaling.6.weight",
    "mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.bias",
    "mask_decoder.transformer.final_attn_token_to_image.q_proj.weight",
    "mask_decoder.output_upscaling.3.weight",
    "mask_decoder.output_hypernetworks_mlps.3.layers.2.bias",
    "mask_decoder.iou_prediction_head.layers.2.weight",
]


def make_trained_like(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Randomise attention biases and batch-norm statistics (zero/identity when untrained), so
    that a stale attention-bias cache or unloaded BN buffers change the numbers, and scale the
    mask logits up to a trained-like range."""
    gen = torch.Generator().manual_seed(1)
    for name, tensor in model.state_dict().items():
        if name.endswith("attention_biases"):
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.5)
        elif name.endswith("running_mean"):
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
        elif name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
        elif name.startswith("mask_decoder.output_hypernetworks_mlps") and ".layers.2." in name:
            tensor.mul_(20)  # logits of order 1 (random init gives ~0.1), so 1e-4 is strict
    return model.state_dict()


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A MobileSAM checkpoint in the official layout: a plain state dict named mobile_sam.pt."""
    torch.manual_seed(0)
    state = make_trained_like(build_sam("vit_t", img_size=1024))
    path = tmp_path_factory.mktemp("sam") / "mobile_sam.pt"
    torch.save(state, path)
    return path, state


@pytest.fixture
def xami_frame() -> np.ndarray:
    """A 512 px 8-bit frame: noisy sky, a bright source with a column streak, no-coverage gaps."""
    rng = np.random.default_rng(0)
    frame = rng.normal(60, 12, (512, 512))
    yy, xx = np.mgrid[:512, :512]
    frame += 180 * np.exp(-((yy - 200) ** 2 + (xx - 300) ** 2) / 200) + 40 * (abs(xx - 300) < 4)
    frame[:, :40] = 0
    frame[480:, 100:200] = 0
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_registry_builds_vit_t():
    assert list(SAM_REGISTRY) == ["vit_t"]
    model = build_sam("vit_t", img_size=512)
    parts = dict(model.named_children())
    assert {"image_encoder", "prompt_encoder", "mask_decoder"} <= parts.keys()
    assert model.prompt_encoder.image_embedding_size == [32, 32]


@pytest.mark.parametrize(("model_type", "size", "match"), [
    ("vit_h", 1024, "model_type must be one of"), ("vit_t", 500, "multiple of 64"),
    ("vit_t", 0, "multiple of 64"), ("vit_t", 512.0, "multiple of 64")])
def test_build_sam_rejects_bad_arguments(model_type, size, match):
    with pytest.raises(InputError, match=match):
        build_sam(model_type, img_size=size)


def test_state_dict_has_the_official_layout(official):
    _, state = official
    assert len(state) == 439
    assert set(OFFICIAL_KEYS) <= set(state)
    assert not any("pixel_" in k or "attention_bias_idxs" in k for k in state)
    assert sum(v.numel() for k, v in state.items() if "bn.running" not in k
               and "num_batches" not in k and "gaussian_matrix" not in k) == 10_130_092


def test_official_checkpoint_loads_strictly_and_refreshes_attention_cache(official):
    path, state = official
    loaded, config = read_checkpoint(path)
    assert config is None
    model = load_sam_state(build_sam("vit_t", img_size=512), loaded, path)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    caches = [m for m in model.modules() if hasattr(m, "attention_bias_idxs")]
    assert len(caches) == 10  # stages 1-3: 2 + 6 + 2 blocks
    for attn in caches:  # the eval-mode cache holds the loaded biases, not the initial zeros
        assert torch.equal(attn.ab, attn.attention_biases[:, attn.attention_bias_idxs])


@pytest.mark.parametrize(("edit", "match"), [
    (lambda sd: sd.pop("mask_decoder.iou_token.weight"),
     r"missing keys \['mask_decoder.iou_token.weight'\], unexpected keys \[\]"),
    (lambda sd: sd.update({"mask_decoder.extra.weight": torch.zeros(2)}),
     r"missing keys \[\], unexpected keys \['mask_decoder.extra.weight'\]"),
    (lambda sd: sd.update({"prompt_encoder.no_mask_embed.weight": torch.zeros(1, 3)}),
     "size mismatch for prompt_encoder.no_mask_embed.weight"),
])
def test_mismatched_checkpoint_names_the_keys(official, tmp_path, edit, match):
    state = dict(official[1])
    edit(state)
    path = tmp_path / "bad_sam.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=match) as info:
        load_segmentor(path, sam_size=512, backend="torch")
    assert info.value.path == str(path)


def test_wrapped_model_form_loads(official, tmp_path):
    path = tmp_path / "wrapped_sam.pth"
    torch.save({"model": official[1], "step": 3}, path)
    segmentor = load_segmentor(path, sam_size=512, backend="torch")
    assert torch.equal(segmentor.model.state_dict()["mask_decoder.iou_token.weight"],
                       official[1]["mask_decoder.iou_token.weight"])


@pytest.mark.parametrize(("content", "match"), [
    (b"definitely not a torch file", "not a readable torch checkpoint"),
    ([1, 2, 3], "expected a state dict of tensors.*got list"),
    ({"model": {"a": 1}}, "expected a state dict of tensors.*got dict"),
    ({}, "expected a state dict"),
])
def test_unreadable_checkpoint_names_the_file(tmp_path, content, match):
    path = tmp_path / "broken_sam.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=match) as info:
        load_segmentor(path, backend="torch")
    assert str(info.value).startswith(str(path))


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pt")


def test_geometry_of_non_square_images():
    assert resized_shape((512, 512), 1024) == (1024, 1024)
    assert resized_shape((300, 400), 512) == (384, 512)
    boxes = scale_boxes(np.array([[0, 0, 400, 300], [10, 20, 30, 40]]), (300, 400), 512)
    np.testing.assert_allclose(boxes, [[0, 0, 512, 384], [12.8, 25.6, 38.4, 51.2]])


def test_upsample_logits_crops_the_padding():
    low_res = torch.full((2, 128, 128), -1.0)
    low_res[:, 96:] = 100.0  # the padding below a 300 x 400 image resized to 384 x 512
    logits = upsample_logits(low_res, (300, 400), 512)
    assert logits.shape == (2, 300, 400)
    assert torch.equal(logits[:, :298], torch.full((2, 298, 400), -1.0))


def ultralytics_logits(path: Path, prepared: torch.Tensor, frame: np.ndarray, boxes: np.ndarray,
                       sam_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ultralytics' own path: its loader reads the file, its Predictor encodes the prepared
    tensor, scales the boxes and runs prompt encoder + mask decoder (multimask). Selection and
    upsampling (SAM's postprocess_masks) are written out here."""
    ultralytics_offline()
    from ultralytics.models.sam.build import build_mobile_sam
    from ultralytics.models.sam.predict import Predictor

    model = build_mobile_sam(checkpoint=str(path))
    model.set_imgsz([sam_size, sam_size])
    predictor = Predictor(overrides={"imgsz": sam_size, "device": "cpu", "verbose": False})
    predictor.setup_model(model, verbose=False)
    predictor.batch = (["frame"], [frame])  # its source shape for box scaling
    with torch.no_grad():
        masks, scores = predictor.prompt_inference(prepared, bboxes=boxes, multimask_output=True)
    masks, scores = masks.view(len(boxes), 3, *masks.shape[1:]), scores.view(len(boxes), 3)
    best = scores.argmax(dim=1)
    low_res = torch.stack([m[i] for m, i in zip(masks, best, strict=True)])
    h, w = resized_shape(frame.shape[:2], sam_size)
    up = F.interpolate(low_res[:, None], (sam_size, sam_size), mode="bilinear")[..., :h, :w]
    logits = F.interpolate(up, frame.shape[:2], mode="bilinear")[:, 0]
    return logits, scores.max(dim=1).values


@pytest.mark.parametrize(("sam_size", "shape"), [(1024, (512, 512)), (512, (300, 400))])
def test_logits_equal_ultralytics_sam(official, xami_frame, sam_size, shape):
    path = official[0]
    frame = xami_frame[:shape[0], :shape[1]]
    boxes = np.array([[280, 150, 320, 250], [290, 0, 310, 300], [0, 0, 100, 100],
                      [50.5, 60.2, 260.7, 290.1], [100, 200, 400, 300]], dtype=np.float64)
    segmentor = load_segmentor(path, sam_size=sam_size, backend="torch")
    prepared = prepare_image(frame, sam_size)
    with torch.no_grad():
        logits, iou = segmentor.decode(segmentor.embed(prepared), boxes, frame.shape)
    expected_logits, expected_iou = ultralytics_logits(path, prepared, frame, boxes, sam_size)
    assert logits.shape == (5, *shape)
    assert float((logits - expected_logits).abs().max()) < 1e-4
    assert float((iou - expected_iou).abs().max()) < 1e-4
    assert logits.abs().max() > 1  # not trivially equal


def test_shared_decoder_equals_ultralytics_values_and_gradients(official):
    """`decode_boxes` (image side shared over the boxes) is SAM's decoder: same four masks and
    IoUs as ultralytics' ``MaskDecoder.predict_masks`` and the same gradients for training."""
    model = build_sam("vit_t", img_size=512)
    load_sam_state(model, official[1])
    embeddings = torch.randn(1, 256, 32, 32, generator=torch.Generator().manual_seed(2))
    boxes = torch.tensor([[10.0, 20, 200, 220], [300, 0, 320, 511], [0, 0, 511, 511]])

    def reference() -> tuple[torch.Tensor, torch.Tensor]:
        sparse, dense = model.prompt_encoder(points=None, boxes=boxes, masks=None)
        return model.mask_decoder.predict_masks(
            image_embeddings=embeddings, image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)

    results = []
    for decode in (reference, lambda: decode_boxes(model, embeddings, boxes)):
        model.zero_grad()
        masks, iou = decode()
        (masks.square().mean() + iou.sum()).backward()
        grads = {n: p.grad.clone() for n, p in model.mask_decoder.named_parameters()}
        results.append((masks.detach(), iou.detach(), grads))
    (masks, iou, grads), (shared_masks, shared_iou, shared_grads) = results
    assert shared_masks.shape == (3, 4, 128, 128) and shared_iou.shape == (3, 4)
    assert float((shared_masks - masks).abs().max()) < 1e-4 < float(masks.abs().max())
    assert float((shared_iou - iou).abs().max()) < 1e-5
    for name, grad in grads.items():
        assert torch.allclose(shared_grads[name], grad, rtol=1e-3, atol=1e-6), name

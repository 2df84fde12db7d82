"""Segmentor contract: image preparation, box prompts, shapes, gradients, errors, checkpoints."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from _data_factory import frame_512, random_boxes
from xami.errors import CheckpointError, InputError
from xami.models.box_segmentor import SegmentorConfig, prepare_image
from xami.models.build import load_segmentor
from xami.models.segmentor import Segmentor, build_segmentor


@pytest.fixture(scope="module")
def seg512() -> Segmentor:
    """A seeded random-weights segmentor at sam_size 512."""
    torch.manual_seed(0)
    return build_segmentor(SegmentorConfig(sam_size=512))


@pytest.fixture(scope="module")
def embeddings512(seg512) -> torch.Tensor:
    """Cached embeddings of `frame_512` (no gradients)."""
    with torch.no_grad():
        return seg512.embed(seg512.prepare(frame_512()))


def count_calls(module: torch.nn.Module) -> list[int]:
    """Count forward calls of ``module`` (the list grows by one per call)."""
    calls: list[int] = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_prepare_image_by_hand():
    frame = np.array([[0, 0], [10, 30]], np.uint8)  # top row: no coverage
    std = np.sqrt(6 * 10.0**2 / 5)  # unbiased, channels pooled: 10, 30 three times each
    expected = np.array([[0, 0], [-10 / std, 10 / std]], np.float32)
    prepared = prepare_image(frame, 2)
    assert prepared.shape == (1, 3, 2, 2) and prepared.dtype == torch.float32
    for channel in prepared[0]:
        np.testing.assert_allclose(channel.numpy(), expected, rtol=1e-6)


def test_zero_coverage_stays_zero_when_upsized():
    prepared = prepare_image(frame_512(), 1024)[0]
    assert prepared.shape == (3, 1024, 1024)
    assert (prepared[:, :, :255] == 0).all()  # columns fed only by uncovered pixels
    assert (prepared[:, :, 256:] != 0).float().mean() > 0.99
    native = prepare_image(frame_512(), 512)[0]  # no resize: covered pixels have mean 0, std 1
    covered = native[:, :, 128:]
    assert abs(float(covered.mean())) < 1e-5 and abs(float(covered.std()) - 1) < 1e-5
    assert (native[:, :, :128] == 0).all()


def test_float_image_and_padding_of_non_square_images():
    image = np.random.default_rng(1).normal(0, 2, (300, 400))  # background-subtracted FITS-like
    image[:50] = 0.0
    prepared = prepare_image(image, 512)[0]
    assert (prepared[:, 384:] == 0).all()  # bottom padding (resized to 384 x 512)
    assert (prepared[:, :63] == 0).all() and (prepared[:, 65:384] != 0).all()


@pytest.mark.parametrize(("image", "match"), [
    (np.zeros(5, np.uint8), r"shape \[H, W\] or \[H, W, 3\]"),
    (np.zeros((4, 4, 4), np.uint8), r"shape \[H, W\] or \[H, W, 3\]"),
    (np.zeros((0, 5), np.uint8), "empty"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.ones((4, 4), np.int32), "dtype int32"),
    (np.zeros((4, 4), np.uint8), "no covered"),
])
def test_bad_images_raise_input_error(seg512, image, match):
    with pytest.raises(InputError, match=match):
        prepare_image(image, 512)
    if image.ndim == 2 and image.size and np.isnan(image).any():
        with pytest.raises(InputError, match=match):
            seg512.predict(image, np.zeros((0, 4)))


@pytest.mark.parametrize(("boxes", "match"), [
    (np.zeros(3), r"\[N, 4\]"), (np.zeros((2, 5)), r"\[N, 4\]"),
    (np.array([[0, 0, np.nan, 4]]), "NaN")])
def test_bad_boxes_raise_input_error(seg512, boxes, match):
    with pytest.raises(InputError, match=match):
        seg512.predict(frame_512(), boxes)


def test_labels_must_match_boxes(seg512):
    with pytest.raises(InputError, match="labels must be 2 integers"):
        seg512.predict(frame_512(), random_boxes(2, 512, 512), labels=[3])


@pytest.mark.parametrize("n", [0, 1, 20])
def test_predict_shapes(seg512, n):
    calls = count_calls(seg512.model.image_encoder)
    boxes = random_boxes(n, 512, 512)
    labels = np.arange(n) % 5 + 1
    inst = seg512.predict(frame_512(), boxes, labels=labels)
    assert len(inst) == n and inst.masks.shape == (n, 512, 512)
    assert inst.image_size == (512, 512) and len(calls) == min(n, 1)
    np.testing.assert_array_equal(inst.boxes, boxes.reshape(-1, 4))
    np.testing.assert_array_equal(inst.labels, labels)
    assert np.isfinite(inst.scores).all() and ((inst.scores >= 0) & (inst.scores <= 1)).all()


def test_decode_20_boxes_finite_and_chunking_invariant(seg512, embeddings512):
    boxes = random_boxes(20, 512, 512)
    one_call = Segmentor(seg512.model, replace(seg512.config, chunk_size=7))
    with torch.no_grad():
        logits, iou = seg512.decode(embeddings512, boxes, (512, 512))
        logits_7, iou_7 = one_call.decode(embeddings512, boxes[:7], (512, 512))
    assert logits.shape == (20, 512, 512) and iou.shape == (20,)
    assert torch.isfinite(logits).all() and torch.isfinite(iou).all()
    assert float((logits[:7] - logits_7).abs().max()) < 1e-4
    assert float((iou[:7] - iou_7).abs().max()) < 1e-5


def test_predict_thresholds_decoded_logits(seg512, embeddings512):
    boxes = random_boxes(3, 512, 512, seed=2)
    inst = seg512.predict(frame_512(), boxes)
    with torch.no_grad():
        logits, iou = seg512.decode(embeddings512, boxes, (512, 512))
    np.testing.assert_array_equal(inst.masks, (logits > 0).numpy())
    np.testing.assert_allclose(inst.scores, np.clip(iou.numpy(), 0, 1))
    assert (inst.labels == 0).all()


def test_masks_at_size_of_non_square_image(seg512):
    frame = frame_512(3)[:300, :450]
    inst = seg512.predict(frame, random_boxes(2, 450, 300), labels=[3, 4])
    assert inst.masks.shape == (2, 300, 450)


def test_sam_size_512_gives_32x32_embeddings(seg512, embeddings512):
    assert embeddings512.shape == (1, 256, 32, 32)
    with torch.no_grad():
        low_res, iou = seg512.decode_low_res(embeddings512, random_boxes(3, 512, 512), (512, 512))
        logits, iou_0 = seg512.decode(embeddings512, np.zeros((0, 4)), (512, 512))
    assert low_res.shape == (3, 128, 128) and iou.shape == (3,)
    assert logits.shape == (0, 512, 512) and iou_0.shape == (0,)


def test_embed_and_decode_check_shapes(seg512, embeddings512):
    with pytest.raises(InputError, match=r"\[B, 3, 512, 512\]"):
        seg512.embed(torch.zeros(1, 3, 1024, 1024))
    with pytest.raises(InputError, match=r"\[1, 256, 32, 32\]"):
        seg512.decode(embeddings512.expand(2, -1, -1, -1), np.zeros((1, 4)), (512, 512))


def test_multimask_off_uses_the_single_mask_output(seg512, embeddings512):
    single = Segmentor(seg512.model, replace(seg512.config, multimask=False))
    model = seg512.model
    with torch.no_grad():
        low_res, iou = single.decode_low_res(embeddings512, [[10, 20, 200, 300]], (512, 512))
        box = torch.tensor([[10.0, 20, 200, 300]])
        sparse, dense = model.prompt_encoder(points=None, boxes=box, masks=None)
        masks, scores = model.mask_decoder(embeddings512, model.prompt_encoder.get_dense_pe(),
                                           sparse, dense, multimask_output=False)
    torch.testing.assert_close(low_res, masks[:, 0])
    torch.testing.assert_close(iou, scores[:, 0])


class PromptSeenError(Exception):
    """Raised with the boxes the prompt encoder receives, to skip the decoder."""


def prompt_boxes(segmentor: Segmentor, boxes: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The boxes the prompt encoder receives, in one call (zero embeddings, no decoding)."""
    def stop(module, args, kwargs):
        raise PromptSeenError(kwargs["boxes"])

    one_call = Segmentor(segmentor.model, replace(segmentor.config, chunk_size=len(boxes)))
    hook = segmentor.model.prompt_encoder.register_forward_pre_hook(stop, with_kwargs=True)
    e = segmentor.embedding_size
    try:
        with pytest.raises(PromptSeenError) as seen:
            one_call.decode_low_res(torch.zeros(1, 256, e, e), boxes, size)
    finally:
        hook.remove()
    return seen.value.args[0]


def test_box_prompts_scale_with_sam_size(seg512):
    torch.manual_seed(0)
    seg1024 = build_segmentor(SegmentorConfig(sam_size=1024))
    boxes = np.array([[10.0, 20.5, 100.25, 300.0], [0, 0, 512, 512], [7, 8, 9, 10]])
    at_512 = prompt_boxes(seg512, boxes, (512, 512))
    torch.testing.assert_close(at_512, torch.tensor(boxes, dtype=torch.float32))
    torch.testing.assert_close(prompt_boxes(seg1024, boxes, (512, 512)), 2 * at_512)
    torch.testing.assert_close(prompt_boxes(seg512, boxes, (256, 256)), 2 * at_512)


def test_backward_reaches_the_mask_decoder_only():
    torch.manual_seed(0)
    segmentor = build_segmentor(SegmentorConfig(sam_size=256))
    model = segmentor.model
    for part in (model.image_encoder, model.prompt_encoder):
        part.requires_grad_(False)
    with torch.no_grad():
        embeddings = segmentor.embed(segmentor.prepare(frame_512()))
    logits, iou = segmentor.decode(embeddings, random_boxes(5, 512, 512), (512, 512))
    assert logits.requires_grad and iou.requires_grad
    (logits.sigmoid().mean() + iou.sum()).backward()
    hypernetworks_reached = set()
    for name, param in model.mask_decoder.named_parameters():
        assert param.grad is not None, name
        if name.startswith("output_hypernetworks_mlps."):  # only those of the selected masks
            hypernetworks_reached.add(int(name.split(".")[1]) if param.grad.any() else None)
        else:
            assert param.grad.any(), name
    assert hypernetworks_reached - {None, 0}  # a multimask token was selected, never token 0
    assert 0 not in hypernetworks_reached
    frozen = [*model.image_encoder.parameters(), *model.prompt_encoder.parameters()]
    assert all(p.grad is None for p in frozen)


def test_checkpoint_round_trip_keeps_config(tmp_path, seg512):
    config = SegmentorConfig(sam_size=512, multimask=False, chunk_size=3, mask_threshold=0.5)
    path = tmp_path / "xami_sam.pth"
    torch.save(Segmentor(seg512.model, config).checkpoint(), path)
    assert load_segmentor(path, backend="torch").config == config  # the saved sam_size
    loaded = load_segmentor(path, sam_size=256, backend="torch")
    assert loaded.config == replace(config, sam_size=256)
    assert loaded.model.prompt_encoder.image_embedding_size == [16, 16]
    for key, value in seg512.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_plain_state_dict_gets_default_config(tmp_path, seg512):
    path = tmp_path / "plain_sam.pth"
    torch.save(seg512.model.state_dict(), path)
    loaded = load_segmentor(path, sam_size=512, backend="torch")
    assert loaded.config == SegmentorConfig(sam_size=512)


def test_invalid_saved_config(tmp_path, seg512):
    path = tmp_path / "odd_sam.pth"
    torch.save({"model": seg512.model.state_dict(),
                "config": {**asdict(seg512.config), "colour": "red"}}, path)
    with pytest.raises(CheckpointError, match="invalid segmentor config"):
        load_segmentor(path, backend="torch")


def test_unsupported_backend_and_config_values():
    with pytest.raises(InputError, match=r"backend must be one of \('torch', 'onnx'\), got 'tf'"):
        load_segmentor("unused.pth", backend="tf")
    with pytest.raises(InputError, match="quantize needs backend='onnx', got quantize='int8' "
                                         "with backend='torch'"):
        load_segmentor("unused.pth", backend="torch", quantize="int8")
    with pytest.raises(InputError, match="chunk_size must be a positive integer"):
        SegmentorConfig(chunk_size=0)


def test_load_segmentor_without_checkpoint_says_none_is_bundled():
    with pytest.raises(CheckpointError, match="no segmentor weights are bundled"):
        load_segmentor(None)

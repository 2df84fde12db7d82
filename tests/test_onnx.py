"""ONNX Runtime backend: same outputs as torch, cached exports, INT8, errors, the detector."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _data_factory import frame_512, random_boxes
from xami.cache import file_key
from xami.errors import CheckpointError, InputError
from xami.models.box_segmentor import SegmentorConfig
from xami.models.build import bundled_detector, load_detector, load_segmentor
from xami.models.sam_onnx import GRAPH_VERSION, OnnxSegmentor, onnx_segmentor
from xami.models.segmentor import Segmentor, build_segmentor
from xami.sim import simulate_image


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of identical mask pixels."""
    return float((a == b).mean()) if a.size else 1.0


@pytest.fixture(scope="module")
def pair512(tmp_path_factory) -> tuple[Segmentor, OnnxSegmentor]:
    """A seeded random-weights segmentor at sam_size 512 and its ONNX export."""
    torch.manual_seed(0)
    segmentor = build_segmentor(SegmentorConfig(sam_size=512))
    state = {k: v.clone() for k, v in segmentor.model.state_dict().items()}
    fast = onnx_segmentor(segmentor.model, segmentor.config, tmp_path_factory.mktemp("onnx512"))
    # the export leaves the model as it was: eval mode (batch norms frozen), same tensors
    assert not any(module.training for module in segmentor.model.modules())
    assert all(torch.equal(v, state[k]) for k, v in segmentor.model.state_dict().items())
    return segmentor, fast


@pytest.fixture(scope="module")
def checkpoint256(tmp_path_factory) -> Path:
    """A checkpoint of a random-weights segmentor (sam_size 256: cheap to export)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt") / "xami_sam.pth"
    torch.save(build_segmentor(SegmentorConfig(sam_size=256, chunk_size=2)).checkpoint(), path)
    return path


@pytest.mark.parametrize("n", [0, 1, 20])
def test_onnx_logits_and_masks_equal_torch(pair512, n):
    segmentor, fast = pair512
    boxes = random_boxes(n, 512, 512)
    with torch.inference_mode():
        prepared = segmentor.prepare(frame_512())
        embeddings, onnx_embeddings = segmentor.embed(prepared), fast.embed(prepared)
        logits, iou = segmentor.decode(embeddings, boxes, (512, 512))
        onnx_logits, onnx_iou = fast.decode(onnx_embeddings, boxes, (512, 512))
    assert float((embeddings - onnx_embeddings).abs().max()) < 1e-4
    assert onnx_logits.shape == logits.shape == (n, 512, 512)
    if n:
        assert float((logits - onnx_logits).abs().max()) < 1e-4
        assert float((iou - onnx_iou).abs().max()) < 1e-5
    onnx_inst = fast.predict(frame_512(), boxes)  # the torch path is tested in test_segmentor
    assert onnx_inst.masks.shape == (n, 512, 512)
    assert agreement((logits > 0).numpy(), onnx_inst.masks) >= 0.999
    np.testing.assert_allclose(onnx_inst.scores, iou.clamp(0, 1).numpy(), atol=1e-5)


def test_onnx_at_1024_equals_torch(tmp_path):
    torch.manual_seed(2)
    segmentor = build_segmentor(SegmentorConfig(sam_size=1024))
    fast = onnx_segmentor(segmentor.model, segmentor.config, tmp_path)
    boxes = random_boxes(3, 512, 512, seed=3)
    with torch.inference_mode():
        prepared = segmentor.prepare(frame_512(1))
        logits, _ = segmentor.decode(segmentor.embed(prepared), boxes, (512, 512))
        onnx_logits, _ = fast.decode(fast.embed(prepared), boxes, (512, 512))
    assert float((logits - onnx_logits).abs().max()) < 1e-4
    assert agreement((logits > 0).numpy(), (onnx_logits > 0).numpy()) >= 0.999


def test_onnx_single_mask_mode_and_batches(pair512):
    segmentor, fast = pair512
    config = SegmentorConfig(sam_size=512, multimask=False)
    single, onnx_single = Segmentor(segmentor.model, config), OnnxSegmentor(
        fast.encoder, fast.decoder, config)
    boxes = random_boxes(2, 512, 512, seed=4)
    with torch.inference_mode():
        prepared = segmentor.prepare(frame_512(2))
        embeddings = segmentor.embed(prepared)
        low_res, iou = single.decode_low_res(embeddings, boxes, (512, 512))
        onnx_low_res, onnx_iou = onnx_single.decode_low_res(embeddings, boxes, (512, 512))
        batch = fast.embed(torch.cat([prepared, segmentor.prepare(frame_512(3))]))
    assert float((low_res - onnx_low_res).abs().max()) < 1e-4
    assert float((iou - onnx_iou).abs().max()) < 1e-5
    assert batch.shape == (2, 256, 32, 32)
    assert float((batch[:1] - embeddings).abs().max()) < 1e-4


def test_onnx_segmentor_checks_inputs_and_has_no_checkpoint(pair512):
    _, fast = pair512
    with pytest.raises(InputError, match=r"\[B, 3, 512, 512\]"):
        fast.embed(torch.zeros(1, 3, 256, 256))
    with pytest.raises(InputError, match=r"\[1, 256, 32, 32\]"):
        fast.decode(torch.zeros(1, 256, 16, 16), np.zeros((1, 4)), (512, 512))
    assert fast.backend == "onnx" and not hasattr(fast, "checkpoint")  # weights: the torch one's
    with pytest.raises(InputError, match="quantize must be None or one of"):
        onnx_segmentor(pair512[0].model, pair512[0].config, "unused", quantize="int4")


def mtimes(folder: Path) -> dict[str, int]:
    """Modification times (ns) of the ONNX files in ``folder``."""
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")}


def test_load_segmentor_exports_once_and_keys_the_cache(checkpoint256, tmp_path):
    checkpoint = tmp_path / checkpoint256.name
    shutil.copyfile(checkpoint256, checkpoint)
    first = load_segmentor(checkpoint, sam_size=256, backend="onnx")
    exported = mtimes(tmp_path)
    prefix = f"xami_sam.pth.{file_key(checkpoint)}.sam256.g{GRAPH_VERSION}"
    assert sorted(exported) == [f"{prefix}.decoder.onnx", f"{prefix}.encoder.onnx"]
    second = load_segmentor(checkpoint, sam_size=256, backend="onnx")
    assert mtimes(tmp_path) == exported  # reused, not exported again
    assert isinstance(second, OnnxSegmentor) and second.config == first.config
    assert second.config.chunk_size == 2  # the checkpoint's config
    frame, boxes = frame_512(), random_boxes(3, 512, 512)
    np.testing.assert_array_equal(first.predict(frame, boxes).masks,
                                  second.predict(frame, boxes).masks)
    torch_inst = load_segmentor(checkpoint, sam_size=256, backend="torch").predict(frame, boxes)
    assert agreement(torch_inst.masks, second.predict(frame, boxes).masks) >= 0.999

    state = torch.load(checkpoint, weights_only=True)  # other weights, same name: a new key
    state["model"]["mask_decoder.iou_token.weight"] += 1
    torch.save(state, checkpoint)
    load_segmentor(checkpoint, sam_size=256, backend="onnx")
    assert len(mtimes(tmp_path)) == 4 and mtimes(tmp_path).items() >= exported.items()


def test_int8_encoder_is_quantised_from_the_cached_one(checkpoint256):
    fp32 = load_segmentor(checkpoint256, sam_size=256, backend="onnx")
    before = mtimes(checkpoint256.parent)
    int8 = load_segmentor(checkpoint256, sam_size=256, backend="onnx", quantize="int8")
    after = mtimes(checkpoint256.parent)
    added = set(after) - set(before)
    assert len(added) == 1 and added.pop().endswith(f".sam256.g{GRAPH_VERSION}.encoder.int8.onnx")
    assert all(after[name] == t for name, t in before.items())
    prepared = fp32.prepare(frame_512())
    reference, quantised = fp32.embed(prepared), int8.embed(prepared)
    relative_rms = float((quantised - reference).pow(2).mean().sqrt() / reference.pow(2).mean()
                         .sqrt())
    assert 0 < relative_rms < 0.1  # quantised, and still close (0.03 measured at 512 and 1024)
    with pytest.raises(InputError, match="quantize must be None or one of"):
        load_segmentor(checkpoint256, sam_size=256, backend="onnx", quantize="fp16")


def test_corrupt_cached_file_is_named(checkpoint256, tmp_path):
    load_segmentor(checkpoint256, sam_size=256, backend="onnx")
    for path in [checkpoint256, *checkpoint256.parent.glob("*.onnx")]:  # a cache, as exported
        shutil.copyfile(path, tmp_path / path.name)
    checkpoint = tmp_path / checkpoint256.name
    decoder = next(tmp_path.glob("*.decoder.onnx"))
    decoder.write_bytes(b"not an onnx model")
    with pytest.raises(CheckpointError, match=rf"{decoder.name}: cannot be loaded as an ONNX "
                                              r"model .*; delete it to export it again"):
        load_segmentor(checkpoint, sam_size=256, backend="onnx")
    decoder.unlink()
    load_segmentor(checkpoint, sam_size=256, backend="onnx")  # exported again


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory) -> Path:
    """A copy of the bundled detector, so that its ONNX export stays out of the package."""
    path = tmp_path_factory.mktemp("detector") / bundled_detector("torch").name
    shutil.copyfile(bundled_detector("torch"), path)
    return path


def test_onnx_detector_gives_the_same_instances(detector_weights):
    torch_detector = load_detector(detector_weights, backend="torch")
    onnx_detector = load_detector(detector_weights, backend="onnx")
    exported = mtimes(detector_weights.parent)
    assert len(exported) == 1 and onnx_detector.source.endswith(next(iter(exported)))
    assert onnx_detector.names == torch_detector.names == torch_detector.model.names
    options = onnx_detector.session.get_session_options()
    assert options.intra_op_num_threads == torch.get_num_threads()  # xami's session, not spinning
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    frames = [simulate_image(seed).frame for seed in range(3)]
    for frame in [*frames, frames[1][:400, :300]]:  # a non-square frame too
        expected, found = torch_detector.predict(frame), onnx_detector.predict(frame)
        assert len(found) == len(expected) > 0
        np.testing.assert_array_equal(found.labels, expected.labels)
        np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-3)
        np.testing.assert_allclose(found.scores, expected.scores, atol=1e-4)
        assert agreement(found.masks, expected.masks) >= 0.999
    load_detector(detector_weights, backend="onnx")
    assert mtimes(detector_weights.parent) == exported  # reused


def test_onnx_detector_errors(detector_weights, tmp_path):
    with pytest.raises(InputError, match=r"backend must be one of \('torch', 'onnx'\)"):
        load_detector(detector_weights, backend="openvino")
    with pytest.raises(InputError, match="needs a checkpoint"):
        load_detector("yolov8n-seg.yaml", backend="onnx")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a loadable ultralytics checkpoint"):
        load_detector(bad, backend="onnx")
    assert list(tmp_path.iterdir()) == [bad]  # no export left behind
    weights = tmp_path / "detector.pt"
    shutil.copyfile(detector_weights, weights)
    corrupt = tmp_path / f"detector.pt.{file_key(weights)}.onnx"
    corrupt.write_bytes(b"not an onnx model")
    with pytest.raises(CheckpointError, match=rf"{corrupt.name}: cannot be loaded as an ONNX "
                                              r"model .*; delete it to export it again"):
        load_detector(weights, backend="onnx")

"""The shipped ONNX detector: made from the shipped .pt, stored in fp16, the same outputs."""

from __future__ import annotations

import ast

import numpy as np
import onnxruntime as ort
import pytest

from xami.classes import CLASSES
from xami.io.atomic import file_sha256
from xami.models.onnx import BUNDLED_DETECTOR, BUNDLED_ONNX, SOURCE_SHA256_KEY
from xami.sim import simulate_image


def run(path, images: np.ndarray) -> list[np.ndarray]:
    """Every output of an ONNX file on ``images``."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"images": images})


def frame_input(seed: int) -> np.ndarray:
    """A simulated 512 frame as the detector's ``[1, 3, 512, 512]`` float input."""
    frame = simulate_image(seed).frame.astype(np.float32) / 255
    return np.ascontiguousarray(np.broadcast_to(frame, (1, 3, *frame.shape)))


@pytest.mark.light
def test_shipped_onnx_is_the_export_of_the_shipped_checkpoint():
    session = ort.InferenceSession(str(BUNDLED_ONNX), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta[SOURCE_SHA256_KEY] == file_sha256(BUNDLED_DETECTOR)
    assert ast.literal_eval(meta["names"]) == {c.yolo_index: c.name for c in CLASSES}
    assert meta["imgsz"] == "[512, 512]"
    assert session.get_inputs()[0].shape[2:] != [512, 512]  # dynamic size, as the torch model
    assert BUNDLED_ONNX.stat().st_size < 7_000_000  # fp16 storage: half the fp32 export


def test_fp16_storage_gives_the_fp32_export_bit_for_bit(tmp_path):
    pytest.importorskip("ultralytics")
    onnx = pytest.importorskip("onnx")
    from xami.models.onnx import export_ultralytics, fused_conv_factors, store_fp16

    checkpoint = BUNDLED_DETECTOR
    export_ultralytics(checkpoint, tmp_path / "fp32.onnx")
    model = onnx.load(str(tmp_path / "fp32.onnx"))
    assert store_fp16(model, fused_conv_factors(checkpoint)) == 87
    weights = [i for i in model.graph.initializer
               if len(i.dims) == 4 and not i.name.endswith(".scale")]
    assert all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)  # every convolution's
    onnx.save(model, str(tmp_path / "fp16.onnx"))
    assert (tmp_path / "fp16.onnx").stat().st_size < 0.52 * (tmp_path / "fp32.onnx").stat().st_size
    for seed in (0, 1):
        images = frame_input(seed)
        expected = run(tmp_path / "fp32.onnx", images)
        for path in (tmp_path / "fp16.onnx", BUNDLED_ONNX):
            for got, want in zip(run(path, images), expected, strict=True):
                assert got.dtype == want.dtype == np.float32
                np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))

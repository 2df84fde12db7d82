"""The numpy + ONNX Runtime detector engine: same instances as torch, deterministic, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from xami.errors import CheckpointError
from xami.models.build import bundled_detector, load_detector
from xami.models.yolo_onnx import OnnxYolo, letterbox, load_onnx_yolo, resize_linear
from xami.sim import simulate_image
from xami.structures import Instances


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The bundled detector exported by ultralytics to ONNX (in a scratch copy's folder)."""
    weights = tmp_path_factory.mktemp("detector") / bundled_detector("torch").name
    shutil.copyfile(bundled_detector("torch"), weights)
    return Path(load_detector(weights, backend="onnx").source)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Simulated frames at 512, the same scaled to 256 and 100, a non-square crop and a blank."""
    full = [simulate_image(seed).frame for seed in range(3)]
    scaled = [np.asarray(Image.fromarray(f).resize((side, side), Image.BILINEAR))
              for f in full for side in (256, 100)]
    return [*full, *scaled, full[1][:400, :300], np.zeros((128, 128), np.uint8)]


def session(path: Path, threads: int) -> ort.InferenceSession:
    """A session of ``path`` on ``threads`` threads (xami's settings otherwise)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def assert_same(found: Instances, expected: Instances) -> None:
    """Exactly equal instances."""
    for name in ("boxes", "masks", "labels", "scores"):
        a, b = getattr(found, name), getattr(expected, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_engine_gives_the_torch_instances(exported, frames):
    torch_detector = load_detector(backend="torch")
    engine = load_detector(exported, backend="onnx")
    assert isinstance(engine, OnnxYolo) and engine.source == str(exported)
    counts, box_diff, score_diff, agreement = [], 0.0, 0.0, 1.0
    for frame in frames:
        expected, found = torch_detector.predict(frame), engine.predict(frame)
        counts.append(len(found))
        assert len(found) == len(expected)
        assert found.masks.shape == (len(found), *frame.shape) and found.masks.dtype == bool
        assert found.boxes.dtype == found.scores.dtype == np.float64
        np.testing.assert_array_equal(found.labels, expected.labels)
        if len(found):
            box_diff = max(box_diff, float(np.abs(found.boxes - expected.boxes).max()))
            score_diff = max(score_diff, float(np.abs(found.scores - expected.scores).max()))
            agreement = min(agreement, float((found.masks == expected.masks).mean()))
    assert min(counts[:-1]) > 0 and counts[-1] == 0  # the blank frame: nothing, as torch
    assert box_diff <= 1e-3 and score_diff <= 1e-4 and agreement >= 0.999
    # measured: boxes 6.1e-5 px, scores 1.2e-6, every mask pixel equal


@pytest.mark.parametrize("shape", [(64, 64), (100, 100), (255, 255), (256, 256), (511, 511),
                                   (400, 300), (37, 700), (900, 900)])
def test_resize_matches_cv2_bit_for_bit(shape, rng):
    cv2 = pytest.importorskip("cv2")
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    r = min(512 / shape[0], 512 / shape[1])
    size = max(round(shape[0] * r), 1), max(round(shape[1] * r), 1)
    expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(resize_linear(image, *size), expected)
    np.testing.assert_array_equal(resize_linear(image[..., 0], *size), expected[..., 0])


def test_letterbox_pads_to_the_stride_as_ultralytics(rng):
    square = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    assert letterbox(square, 512).shape == (512, 512, 3)
    full = square.repeat(6, axis=0).repeat(6, axis=1)[:512, :512]
    assert letterbox(full, 512) is full  # 512: unchanged
    wide = letterbox(rng.integers(0, 256, (100, 300, 3), dtype=np.uint8), 512)
    assert wide.shape == (192, 512, 3)  # 171 rows padded to 192: 10 above, 11 below
    assert (wide[:10] == 114).all() and (wide[-11:] == 114).all() and (wide[10] != 114).any()


def test_outputs_and_instances_do_not_depend_on_threads(exported, frames):
    one, two = (OnnxYolo(session(exported, n), source=exported) for n in (1, 2))
    x = letterbox(np.repeat(frames[1][:, :, None], 3, axis=2), 512)
    blob = {"images": x[None].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)}
    for a, b in zip(one.session.run(None, blob), two.session.run(None, blob), strict=True):
        assert a.tobytes() == b.tobytes()
    for frame in frames[:5]:
        found = one.predict(frame)
        assert len(found) > 0
        assert_same(two.predict(frame), found)


def test_bad_onnx_files_are_named(exported, tmp_path):
    onnx = pytest.importorskip("onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(CheckpointError, match=r"garbage\.onnx: cannot be loaded as an ONNX "
                                              r"model \(.+\)$") as err:
        load_detector(garbage, backend="onnx")
    assert "\n" not in str(err.value) and "delete" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"absent\.onnx: detector ONNX file not found"):
        load_onnx_yolo(tmp_path / "absent.onnx")
    model = onnx.load(str(exported))
    for prop in model.metadata_props:
        if prop.key == "names":
            prop.value = "{0: 'car', 1: 'person', 2: 'other', 3: 'dog', 4: 'cat'}"
    coco = tmp_path / "coco.onnx"
    onnx.save(model, str(coco))
    with pytest.raises(CheckpointError, match=r"coco\.onnx: detector classes \{0: 'car'.*\} are "
                                              r"not the XAMI classes \{0: 'central-ring'"):
        load_detector(coco, backend="onnx")
    del model.metadata_props[:]
    onnx.save(model, str(coco))
    with pytest.raises(CheckpointError, match=r"coco\.onnx: not an ultralytics YOLO "
                                              r"segmentation export \(task None"):
        load_onnx_yolo(coco)


NO_TORCH = """
import json, sys
for name in ("torch", "torchvision", "ultralytics", "cv2", "onnx"):
    sys.modules[name] = None  # any import of them now fails
import numpy as np
from xami.errors import MissingExtraError
from xami.models.build import load_detector

detector = load_detector(sys.argv[1], backend="onnx")
found = detector.predict(np.load(sys.argv[2]))
try:
    load_detector(sys.argv[3], backend="onnx")
except MissingExtraError as err:
    missing = str(err)
print(json.dumps({"boxes": found.boxes.tolist(), "labels": found.labels.tolist(),
                  "scores": found.scores.tolist(), "pixels": int(found.masks.sum()),
                  "missing": missing,
                  "loaded": [m for m, module in sys.modules.items() if module is not None
                             and m.split(".")[0] in ("torch", "ultralytics", "cv2", "onnx")]}))
"""


def test_predicts_without_torch_ultralytics_or_opencv(exported, frames, tmp_path):
    frame = tmp_path / "frame.npy"
    np.save(frame, frames[1])
    run = subprocess.run([sys.executable, "-c", NO_TORCH, str(exported), str(frame),
                          str(bundled_detector("torch"))], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    expected = load_onnx_yolo(exported).predict(frames[1])
    assert len(out["labels"]) == len(expected) > 0
    np.testing.assert_array_equal(out["boxes"], expected.boxes)
    np.testing.assert_array_equal(out["scores"], expected.scores)
    assert out["labels"] == expected.labels.tolist() and out["pixels"] == expected.masks.sum()
    assert out["missing"].endswith('needs torch, which is not installed: pip install "xami[train]"')
    assert out["loaded"] == []

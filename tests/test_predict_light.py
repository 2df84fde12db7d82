"""``xami predict`` in the light install: the shipped ONNX detector, no torch, every output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xami.io.atomic import file_sha256
from xami.io.images import write_frame
from xami.models.onnx import BUNDLED_ONNX
from xami.sim import simulate_image

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

BLOCKED = ("torch", "torchvision", "ultralytics", "onnx", "dask", "distributed", "cv2")


def test_predict_with_the_shipped_onnx_detector_and_no_torch(tmp_path):
    for seed in (0, 1):
        write_frame(tmp_path / "in" / f"f{seed}.png", simulate_image(seed).frame)
    code = (f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n"
            "from xami.cli import main\nsys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "predict", str(tmp_path / "in"), "--out",
                           str(tmp_path / "run"), "--backend", "onnx", "--detector",
                           str(BUNDLED_ONNX)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "2 images (2 done, 0 failed)" in done.stdout
    for name in ("f0.xami.fits", "f0.reg", "f0.png", "f1.xami.fits", "predictions.coco.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["models"]["detector"]["sha256"] == file_sha256(BUNDLED_ONNX)
    assert run["settings"]["backend"] == "onnx"
    predictions = json.loads((tmp_path / "run" / "predictions.coco.json").read_text())
    assert len(predictions) >= 2 and {p["category_id"] for p in predictions} <= {1, 2, 3, 4, 5}

"""``xami predict`` in the light install: the shipped ONNX detector, no torch, every output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from xami.cli import main
from xami.io.atomic import file_sha256
from xami.io.images import write_frame
from xami.models.onnx import BUNDLED_ONNX
from xami.sim import simulate_image

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "predict_example.yaml"
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


def test_predict_config_file_reaches_run_json_and_fits_cards(tmp_path, capsys):
    """A ``predict:`` section sets the pipeline (nested steps too); the flags given override it;
    the example config is the plain run."""
    write_frame(tmp_path / "in" / "f0.png", simulate_image(0).frame)
    config = tmp_path / "predict.yaml"
    config.write_text("predict:\n  conf: 0.2\n  faint_rule: {threshold: 0.6}\n"
                      "  streak_fit: null\n  priors:\n    smoke_ring: null\n")
    assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "run"), "--config",
                 str(config), "--conf", "0.15"]) == 0
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert (settings["conf"], settings["faint_rule"]["threshold"], settings["streak_fit"]) == (
        0.15, 0.6, None)
    assert settings["priors"]["smoke_ring"] is None and settings["priors"]["central_ring"]
    header = fits.getheader(tmp_path / "run" / "f0.xami.fits")
    assert (header["CONF"], header["FAINTTHR"], header["STRKFIT"], header["PRIORS"]) == (
        0.15, 0.6, False, "CR,ROS,SL")
    for out, extra in (("plain", []), ("example", ["--config", str(EXAMPLE)])):
        assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / out), *extra]) == 0
    plain, example = (json.loads((tmp_path / out / "records" / "f0.json").read_text())
                      for out in ("plain", "example"))
    assert plain["settings_sha256"] == example["settings_sha256"]
    assert plain["instances"] == example["instances"]
    capsys.readouterr()


def test_a_rerun_redoes_images_whose_post_processing_changed(tmp_path):
    """Every setting of the spec shapes the resume key: a streak fit or faint rule changed only
    through ``--config`` (no flag) redoes the images instead of reusing their records."""
    write_frame(tmp_path / "in" / "f0.png", simulate_image(0).frame)
    args = ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "run")]
    assert main(args) == 0
    for n, section in enumerate(("streak_fit: {search: 4.0}", "faint_rule: {sigmas: 2.0}")):
        config = tmp_path / f"c{n}.yaml"
        config.write_text(f"predict:\n  {section}\n")
        assert main([*args, "--config", str(config)]) == 0
        record = json.loads((tmp_path / "run" / "records" / "f0.json").read_text())
        assert record["redone"] == "settings changed"
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["faint_rule"]["sigmas"] == 2.0 and settings["streak_fit"]["search"] == 8.0

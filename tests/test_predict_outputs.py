"""``xami predict`` outputs: non-ASCII names, HDU names, accepted sizes, reruns of failures,
unmatched ``--gt`` images, and byte-identical files whatever the threads or the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from xami.classes import coco_categories
from xami.cli import main
from xami.errors import GroundTruthWarning, InputError
from xami.io.fits import read_fits_text, write_fits
from xami.io.images import write_frame
from xami.pipeline import BOX_DECIMALS, SCORE_DECIMALS, Pipeline
from xami.predict import PredictConfig, run_predict
from xami.preprocess import MIN_FRAME_SIDE, frame_rebin_factor
from xami.products import write_regions
from xami.sim import simulate_image
from xami.structures import Instances
from xami.wcs import MaskGrid

OMEGA = "my field Ω"


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return simulate_image(3).frame


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, frame):
    """One CLI run over a non-ASCII name, two HDUs of one file and two unreadable sizes."""
    root = tmp_path_factory.mktemp("outputs")
    write_frame(root / "in" / f"{OMEGA}.png", frame)
    rng = np.random.default_rng(0)
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(rng.random((128, 128), np.float32) + 1)
                                  for _ in range(2)]
    write_fits(root / "in" / "two.fits", hdus)
    write_frame(root / "in" / "tiny.png", np.full((10, 10), 90, np.uint8))
    write_fits(root / "in" / "odd.fits", [fits.PrimaryHDU(np.ones((513, 700), np.float32))])
    inputs = [str(root / "in" / n) for n in (f"{OMEGA}.png", "two.fits[1]", "two.fits[2]",
                                              "tiny.png", "odd.fits")]
    code = main(["predict", *inputs, "--out", str(root / "out")])
    return root, inputs, code


def _records(out: Path) -> dict[str, dict]:
    run = json.loads((out / "run.json").read_text())
    return {Path(r["input"]).name: r for r in run["images"]}


def test_non_ascii_name_keeps_the_image(cli_run):
    root, _, _ = cli_run
    record = _records(root / "out")[f"{OMEGA}.png"]
    assert record["status"] == "done", record["reason"]
    header = fits.getheader(root / "out" / f"{OMEGA}.xami.fits")
    assert header["SRCFILE"].isascii() and read_fits_text(header["SRCFILE"]) == f"{OMEGA}.png"
    assert (root / "out" / f"{OMEGA}.reg").is_file()


def test_two_hdus_of_one_file_get_distinct_names(cli_run):
    root, _, _ = cli_run
    records = _records(root / "out")
    assert records["two.fits[1]"]["status"] == "done" == records["two.fits[2]"]["status"]
    assert records["two.fits[1]"]["name"] == "two_hdu1"
    assert records["two.fits[2]"]["name"] == "two_hdu2"
    for name in ("two_hdu1", "two_hdu2"):
        assert fits.getheader(root / "out" / f"{name}.xami.fits")["SRCHDU"] in ("1", "2")


def test_unreadable_sizes_fail_with_the_rule(cli_run, capsys):
    root, _, code = cli_run
    assert code == 1
    records = _records(root / "out")
    for name, size in (("tiny.png", "10x10"), ("odd.fits", "513x700")):
        assert records[name]["status"] == "failed"
        reason = records[name]["reason"]
        assert size in reason and "square" in reason and f"{MIN_FRAME_SIDE}" in reason, reason
    assert not list((root / "out").glob("tiny.*")) and not list((root / "out").glob("odd.*"))


@pytest.mark.parametrize(("shape", "rebin", "factor"), [
    ((512, 512), True, 1), ((2048, 2048), True, 4), ((1024, 1024), True, 2),
    ((128, 128), True, 1), ((64, 64), False, 1), ((512, 512), False, 1)])
def test_accepted_sizes(shape, rebin, factor):
    assert frame_rebin_factor(shape, rebin=rebin) == factor


@pytest.mark.parametrize(("shape", "rebin"), [
    ((10, 10), True), ((63, 63), False), ((513, 700), True), ((700, 700), True),
    ((2048, 2048), False), ((512, 256), True), ((1000, 1000), True)])
def test_refused_sizes(shape, rebin):
    with pytest.raises(InputError, match=rf"{shape[0]}x{shape[1]} pixels.*square"):
        frame_rebin_factor(shape, rebin=rebin)


def test_pipeline_refuses_a_tiny_array():
    with pytest.raises(InputError, match="10x10 pixels"):
        Pipeline.__new__(Pipeline).predict(np.zeros((10, 10), np.uint8))


def test_rerun_of_an_old_failure_says_how_to_retry(cli_run, capsys):
    root, inputs, _ = cli_run
    capsys.readouterr()
    assert main(["predict", *inputs, "--out", str(root / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("--retry-failed" in line for line in err), err
    assert len(list((root / "out" / "records").glob("*.json"))) == 5


def test_scores_and_boxes_are_written_at_a_stated_precision(cli_run):
    root, _, _ = cli_run
    coco = json.loads((root / "out" / "predictions.coco.json").read_text())
    assert coco and all(e["score"] == round(e["score"], SCORE_DECIMALS) for e in coco)
    table = fits.getdata(root / "out" / f"{OMEGA}.xami.fits", "INSTANCES")
    for column, decimals in (("SCORE", SCORE_DECIMALS), ("BBOX", BOX_DECIMALS)):
        values = table[column].astype(np.float64)
        np.testing.assert_array_equal(table[column],
                                      np.round(values, decimals).astype(np.float32))


def test_outputs_identical_whatever_the_threads(tmp_path, cli_run):
    _, inputs, _ = cli_run
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            assert main(["predict", inputs[0], "--out", str(tmp_path / f"t{threads}"),
                         "--threads", str(threads)]) == 0
    finally:
        torch.set_num_threads(before)
    for name in (f"{OMEGA}.xami.fits", f"{OMEGA}.reg", "predictions.coco.json"):
        assert (tmp_path / "t1" / name).read_bytes() == (tmp_path / "t2" / name).read_bytes()


def test_region_files_do_not_depend_on_the_process(tmp_path):
    """Two instances of one class and score share every attribute: the ``global`` line."""
    masks = np.zeros((2, 32, 32), bool)
    masks[0, 2:8, 2:8] = masks[1, 20:30, 20:30] = True
    script = (
        "import sys, numpy as np; from xami.products import write_regions;"
        "from xami.wcs import MaskGrid;"
        "from xami.structures import Instances;"
        "m = np.load(sys.argv[1]);"
        "i = Instances(np.array([[2, 2, 8, 8], [20, 20, 30, 30]], float), m,"
        " np.array([4, 4]), np.array([0.5, 0.5]));"
        "write_regions(sys.argv[2], i, MaskGrid(1, None))")
    np.save(tmp_path / "m.npy", masks)
    texts = set()
    for seed in range(4):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.npy"),
                        str(tmp_path / f"{seed}.reg")], env=env, check=True)
        texts.add((tmp_path / f"{seed}.reg").read_text())
    assert len(texts) == 1
    write_regions(tmp_path / "here.reg", Instances(np.array([[2, 2, 8, 8], [20, 20, 30, 30]],
                  float), masks, np.array([4, 4]), np.array([0.5, 0.5])), MaskGrid(1, None))
    assert texts == {(tmp_path / "here.reg").read_text()}


def test_gt_that_misses_inputs_warns_and_keeps_their_predictions(tmp_path, frame):
    for name in ("a", OMEGA):
        write_frame(tmp_path / "in" / f"{name}.png", frame)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 5, "file_name": "a.png", "height": 512, "width": 512}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 3, "iscrowd": 0,
                         "segmentation": [[10, 10, 50, 10, 50, 50, 10, 50]], "area": 1600,
                         "bbox": [10, 10, 40, 40]}],
        "categories": coco_categories()}))
    with pytest.warns(GroundTruthWarning, match=f"{OMEGA}"):
        summary = run_predict([tmp_path / "in"], tmp_path / "out", pipeline=Pipeline(), gt=gt,
                              progress=False, config=PredictConfig(formats=("coco",)))
    assert summary.gt_unmatched == [OMEGA]
    coco = json.loads((tmp_path / "out" / "predictions.coco.json").read_text())
    counts = {r.name: len(r.instances) for r in summary.records}
    assert counts[OMEGA] and sum(e["image_id"] == 6 for e in coco) == counts[OMEGA]
    assert sum(e["image_id"] == 5 for e in coco) == counts["a"]
    assert summary.metrics["images"] == 1
    other = tmp_path / "other.json"
    other.write_text(gt.read_text().replace('"a.png"', '"b.png"'))
    with pytest.warns(GroundTruthWarning, match="no input matches an image"):
        summary = run_predict([tmp_path / "in"], tmp_path / "out2", pipeline=Pipeline(),
                              gt=other, progress=False, config=PredictConfig(formats=("coco",)))
    assert summary.metrics is None and not (tmp_path / "out2" / "metrics.json").exists()
    assert sorted({e["image_id"] for e in json.loads(
        (tmp_path / "out2" / "predictions.coco.json").read_text())}) == [6, 7]

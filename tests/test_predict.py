"""``xami predict``: inputs, FITS masks, DS9 regions, COCO ids, failures, resume; flag-sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.table import Table
from regions import Regions
from scipy import ndimage

from xami.cli import main
from xami.errors import InputError
from xami.io.fits import write_fits
from xami.io.frames import preprocess_files
from xami.io.images import write_frame
from xami.models.box_segmentor import SegmentorConfig
from xami.models.detector import DetectorConfig
from xami.models.segmentor import build_segmentor
from xami.pipeline import Pipeline, PipelineSpec
from xami.predict import PredictConfig, expand_inputs, run_predict
from xami.products import read_mask_fits, write_mask_fits
from xami.sim import simulate_dataset, simulate_image
from xami.sim.dataset import simulate_index
from xami.source_flags import flag_sources
from xami.wcs import MaskGrid, rebin_wcs

ROS_BIT = 1 << 1


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline()


@pytest.fixture(scope="module")
def sims():
    """Two simulated 2048 fields with read-out streaks (seed 3, images 0 and 5)."""
    return [simulate_index(3, i, binning=1) for i in (0, 5)]


@pytest.fixture(scope="module")
def fits_run(tmp_path_factory, sims, pipeline):
    root = tmp_path_factory.mktemp("predict")
    for sim in sims:
        write_fits(root / "in" / f"{sim.stem}.fits", sim.hdus())
    summary = run_predict([root / "in"], root / "out", pipeline=pipeline, progress=False)
    return root, summary


def _no_temporary_files(folder) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]


def test_expand_inputs_files_folders_globs_and_lists(tmp_path):
    for name in ("b.fits", "a.png", "c.FIT.gz", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\nb.fits\n\n/elsewhere/x.fits[1]\n")
    assert expand_inputs([tmp_path]) == [str(tmp_path / n) for n in ("a.png", "b.fits", "c.FIT.gz")]
    assert expand_inputs([str(tmp_path / "*.fits"), listing]) == [
        str(tmp_path / "b.fits"), "/elsewhere/x.fits[1]"]
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.jpg")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no FITS or image file"):
        expand_inputs([tmp_path / "empty"])


def test_products_of_every_fits_input(fits_run, sims):
    root, summary = fits_run
    out = root / "out"
    assert not summary.failures and len(summary.records) == 2
    for sim in sims:
        for suffix in (".xami.fits", ".reg", ".png"):
            assert (out / f"{sim.stem}{suffix}").is_file()
        assert json.loads((out / "records" / f"{sim.stem}.json").read_text())["status"] == "done"
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["images"] == 2 and run["summary"]["failed"] == 0
    assert run["models"]["detector"]["sha256"] and len(run["models"]["detector"]["sha256"]) == 64
    coco = json.loads((out / "predictions.coco.json").read_text())
    assert sorted({e["image_id"] for e in coco}) <= [1, 2]
    assert len(coco) == sum(len(r.instances) for r in summary.records)
    assert _no_temporary_files(out)
    assert "images (2 done, 0 failed)" in summary.line()


def test_fits_mask_bits_wcs_and_table(fits_run, sims):
    root, summary = fits_run
    for sim, record in zip(sims, summary.records, strict=True):
        product = read_mask_fits(root / "out" / f"{sim.stem}.xami.fits")
        assert product.bitmask.shape == (512, 512) and product.bitmask.dtype == np.int16
        assert product.input_factor == 4
        assert len(product.table) == len(record.instances)
        np.testing.assert_array_equal(product.bitmask != 0, product.ids != 0)
        for row in product.table:
            inside = product.ids == row["ID"]
            bit = {"central-ring": 5, "other": 11, "read-out-streak": 1, "smoke-ring": 2,
                   "star-loop": 10}[row["CLASS"]]
            assert np.all(product.bitmask[inside] & (1 << bit))
        # mask pixel (x, y) is input pixels 4x..4x+3: same sky position as their centre
        expected = rebin_wcs(sim.wcs, 4)
        np.testing.assert_allclose(product.wcs.wcs.crpix, expected.wcs.crpix)
        sky = product.wcs.pixel_to_world(10.0, 20.0)
        np.testing.assert_allclose(sim.wcs.world_to_pixel(sky), (41.5, 81.5), atol=1e-6)
        header = fits.getheader(root / "out" / f"{sim.stem}.xami.fits")
        assert header["XAMIVER"] and header["CONF"] == DetectorConfig.conf
        assert header["STRETCH"] == "zscale+asinh"
        assert header["FILTER"] == sim.header["FILTER"]
        assert fits.getheader(root / "out" / f"{sim.stem}.xami.fits", "MASK")["BIT1"] == (
            "read-out-streak")


def test_regions_cover_the_predicted_masks(fits_run, sims):
    root, summary = fits_run
    assert sum(len(r.instances) for r in summary.records) > 0
    for sim in sims:
        product = read_mask_fits(root / "out" / f"{sim.stem}.xami.fits")
        regions = Regions.read(root / "out" / f"{sim.stem}.reg", format="ds9")
        covered = np.zeros(product.bitmask.shape, bool)
        for region in regions:
            assert region.meta["text"].split()[0] in {"CR", "OT", "ROS", "SR", "SL"}
            image = region.to_pixel(product.wcs).to_mask(mode="center").to_image(covered.shape)
            covered |= image.astype(bool)
        masked = product.bitmask != 0
        assert np.all(covered[masked])  # every masked pixel is inside an outline
        filled = ndimage.binary_fill_holes(masked)
        assert np.all(filled[covered])  # and the outlines enclose nothing else


def _catalogue(sim, table_path, *, sky: bool) -> None:
    """A source on the first GT streak's column and one far from every artefact."""
    streak = sim.masks[sim.labels == 3][0]
    rows, cols = np.nonzero(streak)
    r, c = rows[len(rows) // 2], int(np.median(cols))
    far = ndimage.distance_transform_edt(~sim.masks.any(axis=0) & (sim.frame > 0))
    fr, fc = np.unravel_index(np.argmax(far), far.shape)
    # frame pixel (r, c) in display orientation -> input FITS 1-based pixel (4x binning)
    xpos = np.array([4 * c + 2.5, 4 * fc + 2.5])
    ypos = np.array([4 * (511 - r) + 2.5, 4 * (511 - fr) + 2.5])
    if sky:
        world = sim.wcs.pixel_to_world(xpos - 1, ypos - 1)
        Table({"RA": world.ra.deg, "DEC": world.dec.deg}).write(table_path)
    else:
        Table({"SRCNUM": [1, 2], "XPOS": xpos, "YPOS": ypos}).write(table_path, format="csv")


@pytest.mark.parametrize("sky", [False, True])
def test_flag_sources_on_a_streak_and_far_away(tmp_path, sims, sky):
    sim = sims[0]
    masks = tmp_path / "truth.xami.fits"
    write_mask_fits(masks, sim.instances(), MaskGrid(1, rebin_wcs(sim.wcs, 4), 4), cards={})
    catalogue = tmp_path / ("cat.fits" if sky else "cat.csv")
    _catalogue(sim, catalogue, sky=sky)
    out = tmp_path / ("flagged.fits" if sky else "flagged.csv")
    table = flag_sources(catalogue, masks, out)
    assert table["XAMI_FLAG"][0] & ROS_BIT and table["XAMI_FLAG"][1] == 0
    assert table["XAMI_CLASS"][0] == "read-out-streak" and table["XAMI_CLASS"][1] == ""
    assert 0.3 < table["XAMI_OVERLAP"][0] <= 1 and table["XAMI_OVERLAP"][1] == 0
    back = Table.read(out)
    np.testing.assert_array_equal(back["XAMI_FLAG"], table["XAMI_FLAG"])


def test_flag_sources_cli_and_errors(tmp_path, fits_run, sims, capsys):
    root, _ = fits_run
    masks = root / "out" / f"{sims[0].stem}.xami.fits"
    product = read_mask_fits(masks)
    row = product.table[0]  # a predicted instance: a source at its centroid is flagged
    x, y = np.argwhere(product.ids == row["ID"])[0][::-1] + 1.0  # FITS 1-based mask pixel
    Table({"XPOS": [4 * x - 1.5], "YPOS": [4 * y - 1.5]}).write(tmp_path / "c.csv")
    assert main(["flag-sources", str(tmp_path / "c.csv"), "--masks", str(masks),
                 "--out", str(tmp_path / "o.csv")]) == 0
    assert "1 of 1 sources on artefacts" in capsys.readouterr().out
    Table({"MAG": [1.0]}).write(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="no XPOS/YPOS or RA/DEC"):
        flag_sources(tmp_path / "bad.csv", masks, tmp_path / "x.csv")
    with pytest.raises(InputError, match="not an xami mask file"):
        flag_sources(tmp_path / "c.csv", root / "in" / f"{sims[0].stem}.fits", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_bad_inputs_get_reasons_and_good_ones_complete(tmp_path, sims, capsys):
    folder = tmp_path / "in"
    write_fits(folder / "good.fits", sims[1].hdus())
    write_frame(folder / "frame.png", sims[0].frame)
    raw = (tmp_path / "x.fits")
    write_fits(raw, sims[1].hdus())
    (folder / "truncated.fits").write_bytes(raw.read_bytes()[:20000])
    (folder / "empty.fits").write_bytes(b"")
    (folder / "text.fits").write_text("not a FITS file\n")
    write_fits(folder / "nan.fits", [fits.PrimaryHDU(np.full((64, 64), np.nan, np.float32))])
    write_fits(folder / "cube.fits", [fits.PrimaryHDU(np.ones((3, 64, 64), np.float32))])
    out = tmp_path / "out"
    code = main(["predict", str(folder), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    bad = {"truncated", "empty", "text", "nan", "cube"}
    assert len(err) == len(bad)
    for name in bad:
        line = next(line for line in err if f"{name}.fits" in line)
        assert line.startswith("failed: ")
        assert not list(out.glob(f"{name}.*"))
    for name in ("good", "frame"):
        for suffix in (".xami.fits", ".reg", ".png"):
            assert (out / f"{name}{suffix}").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["failed"] == 5 and run["summary"]["done"] == 2
    assert _no_temporary_files(out)


def test_interrupted_run_resumes_without_redoing_finished_images(tmp_path, sims):
    folder = tmp_path / "in"
    for i in range(6):
        write_frame(folder / f"f{i}.png", np.roll(sims[i % 2].frame, 7 * i, axis=1))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "xami", "predict", str(folder), "--out", str(out),
               "--formats", "fits,png"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((out / "records").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in (out / "records").glob("*.json")}
    assert 2 <= len(before) < 6
    assert main(["predict", str(folder), "--out", str(out), "--formats", "fits,png"]) == 0
    after = {p.name: p.read_text() for p in (out / "records").glob("*.json")}
    assert len(after) == 6
    assert all(after[name] == text for name, text in before.items())  # not redone
    for i in range(6):
        assert (out / f"f{i}.xami.fits").is_file() and (out / f"f{i}.png").is_file()
    assert _no_temporary_files(out)


def test_gt_gives_image_ids_and_metrics(tmp_path, pipeline):
    simulate_dataset(tmp_path / "sim", 3, seed=11, valid_fraction=1.0, workers=1)
    valid = tmp_path / "sim" / "coco" / "valid"
    gt = valid / "_annotations.coco.json"
    summary = run_predict([valid], tmp_path / "out", pipeline=pipeline, gt=gt, progress=False,
                          config=PredictConfig(formats=("coco",)))
    ids = {Path(img["file_name"]).stem: img["id"] for img in json.loads(gt.read_text())["images"]}
    coco = json.loads((tmp_path / "out" / "predictions.coco.json").read_text())
    names = {r.name: len(r.instances) for r in summary.records}
    for name, count in names.items():
        assert sum(e["image_id"] == ids[name] for e in coco) == count
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0 <= metrics["segm"]["AP50"] <= 1 and summary.metrics["images"] == 3
    assert (tmp_path / "out" / "table3.md").is_file()


def test_png_with_sidecar_native_grid_and_self_overwrite(tmp_path, sims, pipeline):
    sim = sims[0]
    write_fits(tmp_path / "in" / f"{sim.stem}.fits", sim.hdus())
    assert preprocess_files([tmp_path / "in" / f"{sim.stem}.fits"], tmp_path / "frames") == []
    png = tmp_path / "frames" / f"{sim.stem}.png"
    run_predict([png], tmp_path / "a", pipeline=pipeline, progress=False,
                config=PredictConfig(formats=("fits",)))
    from_png = read_mask_fits(tmp_path / "a" / f"{sim.stem}.xami.fits")
    np.testing.assert_allclose(from_png.wcs.wcs.crpix, rebin_wcs(sim.wcs, 4).wcs.crpix)
    assert from_png.input_factor == 4
    run_predict([tmp_path / "in"], tmp_path / "b", pipeline=pipeline, progress=False,
                config=PredictConfig(formats=("fits",), mask_grid="native"))
    native = read_mask_fits(tmp_path / "b" / f"{sim.stem}.xami.fits")
    assert native.bitmask.shape == (2048, 2048) and native.input_factor == 1
    np.testing.assert_allclose(native.wcs.wcs.crpix, sim.wcs.wcs.crpix)
    np.testing.assert_array_equal(native.bitmask[::4, ::4], from_png.bitmask)
    summary = run_predict([png], tmp_path / "frames", pipeline=pipeline, progress=False)
    assert "would overwrite the input" in summary.failures[0].reason


def test_threads_option_sets_torch_threads(tmp_path, sims):
    import torch

    write_frame(tmp_path / "in" / "f.png", sims[0].frame)
    before = torch.get_num_threads()
    try:
        assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                     "--formats", "fits", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert (tmp_path / "out" / "f.xami.fits").is_file()
    finally:
        torch.set_num_threads(before)
    assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "x"),
                 "--threads", "0"]) == 2


def test_segmentor_run_on_onnx_int8_records_its_settings(tmp_path, capsys):
    """``--segmentor --sam-size --backend onnx --quantize int8``: masks from SAM, and the settings
    in run.json and in every FITS header."""
    torch.manual_seed(0)
    checkpoint = tmp_path / "sam.pt"
    torch.save(build_segmentor(SegmentorConfig(sam_size=256)).checkpoint(), checkpoint)
    frame = tmp_path / "frame.png"
    write_frame(frame, simulate_image(3).frame)
    with pytest.raises(InputError, match="quantize needs a segmentor and backend='onnx'"):
        run_predict([frame], tmp_path / "bad", pipeline=PipelineSpec(quantize="int8"))
    assert main(["predict", str(frame), "--out", str(tmp_path / "cli"), "--quantize", "int8"]) == 2
    assert "quantize needs a segmentor" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "cli").exists()
    spec = PipelineSpec(segmentor=checkpoint, sam_size=256, backend="onnx", quantize="int8")
    summary = run_predict([frame], tmp_path / "run", pipeline=spec, progress=False)
    assert not summary.failures and summary.records[0].instances
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert {k: settings[k] for k in ("backend", "sam_size", "quantize")} == {
        "backend": "onnx", "sam_size": 256, "quantize": "int8"}
    header = fits.getheader(tmp_path / "run" / "frame.xami.fits")
    assert (header["BACKEND"], header["SAMSIZE"], header["QUANTIZ"]) == ("onnx", 256, "int8")
    assert header["SEGFILE"] == "sam.pt"

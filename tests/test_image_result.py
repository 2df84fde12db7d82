"""ImageResult: the records of runs written before it existed read back and resume unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xami.io.images import write_frame
from xami.pipeline import PipelineSpec
from xami.predict import ImageResult, PredictConfig, process_image
from xami.predict.image_result import read_result, write_result
from xami.predict.resume import NO_KEY, input_sha256, redo_reason

SETTINGS = "5" * 64

# records/NAME.json as xami 29bf56b wrote them (a done image, trimmed to one instance; an
# unreadable input; an image whose Dask workers died, which has no content key)
DONE = (
    '{"input": "/data/in/S0542170101_M.png", "name": "S0542170101_M", "status": "done", '
    '"reason": null, "seconds": 0.5045193219993962, "outputs": {"regions": '
    '"S0542170101_M.reg"}, "instances": [{"id": 1, "class": "smoke-ring", "score": 0.4277, '
    '"bbox": [188.63, 66.0, 205.02, 81.52], "area": 226}], "coco": [{"category_id": 4, '
    '"bbox": [188.63, 66.0, 16.390000000000015, 15.519999999999996], "score": 0.4277, '
    '"area": 226, "segmentation": {"size": [512, 512], "counts": "Sbn2<d?1O001O1O0"}}], '
    '"worker": "local", "redone": null, "input_sha256": "INPUT", "settings_sha256": "'
    + SETTINGS + '"}\n')
FAILED = (
    '{"input": "/data/in/bad.fits", "name": "bad", "status": "failed", "reason": '
    '"/data/in/bad.fits: not a readable FITS file", "seconds": 0.0, "outputs": {}, '
    '"instances": [], "coco": [], "worker": "tcp://10.0.0.2:4242", "redone": "settings changed", '
    '"input_sha256": null, "settings_sha256": "' + SETTINGS + '"}\n')
KILLED = (
    '{"input": "/data/in/big.fits", "name": "big", "status": "failed", "reason": '
    '"/data/in/big.fits: the Dask workers predicting it died (crash or out of memory?)", '
    '"seconds": 0.0, "outputs": {}, "instances": [], "coco": [], "worker": null}\n')


@pytest.mark.parametrize("text", [DONE, FAILED, KILLED])
def test_earlier_records_read_and_write_back_to_the_same_bytes(tmp_path, text):
    result = ImageResult.from_json(json.loads(text))
    (tmp_path / "records").mkdir()
    write_result(tmp_path, result)
    assert (tmp_path / "records" / f"{result.name}.json").read_text() == text
    assert read_result(tmp_path / "records" / f"{result.name}.json") == result


def test_a_record_without_content_key_is_redone(tmp_path):
    killed = ImageResult.from_json(json.loads(KILLED))
    assert killed.key is None and killed.worker is None
    assert redo_reason(killed, killed.input, ImageResult.from_json(
        json.loads(FAILED)).key, tmp_path, PredictConfig()) == NO_KEY


def test_an_earlier_record_stands_in_a_rerun(tmp_path):
    """A run folder written by the earlier format is resumed: its record is reused as is."""
    frame = tmp_path / "in" / "S0542170101_M.png"
    write_frame(frame, np.full((64, 64), 90, np.uint8))
    text = DONE.replace("/data/in/S0542170101_M.png", str(frame)).replace(
        "INPUT", input_sha256(str(frame)))
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    (out / "records" / "S0542170101_M.json").write_text(text)
    (out / "S0542170101_M.reg").write_text("# region file\n")
    result = process_image(str(frame), "S0542170101_M", PipelineSpec(detector=tmp_path / "none"),
                           out, PredictConfig(formats=("regions",)), {}, settings=SETTINGS)
    assert json.dumps(result.to_json()) + "\n" == text  # no model was needed: none exists
    assert (out / "records" / "S0542170101_M.json").read_text() == text
    assert read_result(tmp_path / "absent.json") is None
    (out / "records" / "other.json").write_text('["not", "a record"]')
    assert read_result(out / "records" / "other.json") is None

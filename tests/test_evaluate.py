"""evaluate(): AP equals pycocotools on simulated frames; precision/recall, IoU by hand; files
written by `xami.report.evaluation`."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import ndimage

from xami.classes import CLASSES, coco_categories
from xami.data.coco import read_coco, write_coco
from xami.data.polygons import mask_to_polygons
from xami.data.records import Annotation, ImageRecord
from xami.errors import DatasetError
from xami.eval import evaluate
from xami.report.evaluation import write_evaluation
from xami.sim import simulate_image
from xami.sim.dataset import annotations_of
from xami.structures import Instances, decode_rle, encode_rle

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SIZES = ("small", "medium", "large")


# --------------------------------------------------------------------------- simulated frames
def _perturbed(rec: ImageRecord, rng: np.random.Generator) -> Instances:
    """Predictions made from the ground truth: missed, shifted, dilated, eroded, relabelled
    and duplicated instances plus false ones, with random scores."""
    masks, labels = [], []
    for ann in rec.annotations:
        if rng.random() < 0.15:
            continue
        mask = ann.mask(rec.height, rec.width)
        kind = rng.integers(3)
        if kind == 0:
            mask = np.roll(mask, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
        elif kind == 1:
            mask = ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 4)))
        elif ndimage.binary_erosion(mask).any():
            mask = ndimage.binary_erosion(mask)
        label = ann.category_id if rng.random() > 0.1 else int(rng.integers(1, 6))
        masks.append(mask)
        labels.append(label)
        if rng.random() < 0.1:
            masks.append(np.roll(mask, 6, axis=1))
            labels.append(label)
    for _ in range(int(rng.integers(1, 4))):
        h, w = rng.integers(3, 150, 2)
        r, c = rng.integers(0, 512 - 150, 2)
        mask = np.zeros((rec.height, rec.width), bool)
        mask[r:r + h, c:c + w] = True
        masks.append(mask)
        labels.append(int(rng.integers(1, 6)))
    return Instances.from_masks(np.stack(masks), labels, rng.random(len(masks)))


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """Four simulated frames (one with an added large instance) and an empty one, evaluated."""
    root = tmp_path_factory.mktemp("sim")
    records = []
    for i in range(4):
        anns = annotations_of(simulate_image(i + 1))
        if i == 0:
            big = np.zeros((512, 512), bool)
            big[200:380, 100:300] = True
            anns += (Annotation(2, mask_to_polygons(big)),)
        records.append(ImageRecord(f"S00000000{i}1_U.jpg", 512, 512, anns, image_id=i + 1))
    records.append(ImageRecord("S0000000091_V.jpg", 512, 512, (), image_id=9))
    gt, pred, out = root / "gt.json", root / "pred.json", root / "out"
    write_coco(records, gt)
    rng = np.random.default_rng(0)
    results = [e for rec in read_coco(gt) for e in _perturbed(rec, rng).to_coco(rec.image_id)]
    pred.write_text(json.dumps(results))
    evaluation = evaluate(gt, pred)
    write_evaluation(out, evaluation)
    return gt, pred, out, evaluation.metrics


def _stats(gt, pred, iou_type, *, cats=(1, 2, 3, 4, 5), iou=None) -> list[float]:
    """pycocotools' 12 summary numbers (-1 as NaN), optionally at one IoU threshold only."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt))
        ev = COCOeval(coco, coco.loadRes(str(pred)), iou_type)
        ev.params.catIds = list(cats)
        if iou is not None:
            ev.params.iouThrs = ev.params.iouThrs[np.isclose(ev.params.iouThrs, iou)]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [math.nan if s == -1 else float(s) for s in ev.stats]


def _expected_ap(gt, pred, iou_type) -> dict:
    """The `coco_ap` dict, every number taken from its own COCOeval run."""
    std = _stats(gt, pred, iou_type)
    at = {t: _stats(gt, pred, iou_type, iou=t) for t in (0.5, 0.75, 0.9)}
    out = {"AP": std[0], "AP50": std[1], "AP75": std[2],
           "AP50_90_paper": (std[1] + at[0.9][0]) / 2}
    for k, size in enumerate(SIZES, start=3):
        out[size] = {"AP": std[k], "AP50": at[0.5][k], "AP75": at[0.75][k],
                     "AP50_90_paper": (at[0.5][k] + at[0.9][k]) / 2}
    out["per_class"] = {}
    for c in CLASSES:
        one = _stats(gt, pred, iou_type, cats=[c.coco_id])
        at90 = _stats(gt, pred, iou_type, cats=[c.coco_id], iou=0.9)
        out["per_class"][c.name] = {"AP": one[0], "AP50": one[1], "AP75": one[2],
                                    "AP50_90_paper": (one[1] + at90[0]) / 2}
    return out


def _assert_same(ours, expected, where=""):
    """Same keys; numbers equal to 1e-9 (None and NaN both mean undefined)."""
    if isinstance(expected, dict):
        assert set(ours) == set(expected), where
        for key in expected:
            _assert_same(ours[key], expected[key], f"{where}/{key}")
        return
    ours = math.nan if ours is None else ours
    if math.isnan(expected):
        assert math.isnan(ours), where
    else:
        assert ours == pytest.approx(expected, abs=1e-9), where


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_ap_in_metrics_json_equals_pycocotools(sim_run, iou_type):
    gt, pred, out, metrics = sim_run
    ours = json.loads((out / "metrics.json").read_text())[iou_type]
    expected = _expected_ap(gt, pred, iou_type)
    _assert_same(ours, expected, iou_type)
    _assert_same(metrics[iou_type], expected, iou_type)
    # the data exercise every size and a non-trivial AP
    assert all(not math.isnan(expected[size]["AP50"]) for size in SIZES)
    assert 0.05 < expected["AP"] < 0.95


def test_output_files(sim_run):
    _, _, out, metrics = sim_run
    text = (out / "metrics.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert {"segm", "bbox", "mean_iou", "mean_iou_std", "precision_recall", "conf", "images",
            "per_image_iou", "provenance"} <= set(data)
    assert data["conf"] == 0.2 and data["images"] == 5
    assert set(data["precision_recall"]) == {"iou_0.5", "iou_0.2"}
    assert 0.0 < data["mean_iou"] == metrics["mean_iou"] < 1.0
    table = (out / "table3.md").read_text()
    for row in ("overall", "CR", "SR", "SL", "ROS", "OT"):
        assert table.count(f"| {row} |") == 3  # mask AP, box AP, precision/recall
    assert "AP50-90 (paper)" in table and "AP 0.5:0.95" in table
    assert f"| overall | {100 * data['segm']['AP50']:.1f} |" in table
    for name in ("iou_cdf.png", "per_class_ap.png"):
        with Image.open(out / "plots" / name) as im:
            assert im.format == "PNG" and im.width > 100
            im.verify()
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_evaluate_writes_nothing_and_the_report_writes_the_files(sim_run, tmp_path,
                                                                 monkeypatch):
    gt, pred, out, _ = sim_run
    monkeypatch.chdir(tmp_path)
    evaluation = evaluate(gt, pred)
    assert not list(tmp_path.iterdir()) and not list(gt.parent.glob("*.md"))  # nothing written
    with pytest.raises(TypeError):
        evaluate(gt, pred, tmp_path / "out")  # no output folder: xami.report writes the files
    write_evaluation(tmp_path / "out", evaluation)
    written = sorted(p.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("*"))
    assert written == ["metrics.json", "plots", "plots/iou_cdf.png", "plots/per_class_ap.png",
                       "table3.md"]
    for name in ("table3.md", "plots/iou_cdf.png", "plots/per_class_ap.png"):  # as sim_run's
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data == json.loads((out / "metrics.json").read_text()) | {
        "provenance": data["provenance"]}  # the same but for the time of creation


# --------------------------------------------------------------------------- hand-made case
def _strip(c0: int, c1: int) -> np.ndarray:
    """A 4 x 8 mask with columns c0:c1 set: IoUs are ratios of column counts."""
    mask = np.zeros((4, 8), bool)
    mask[:, c0:c1] = True
    return mask


@pytest.fixture
def hand(tmp_path):
    """Four 4 x 8 images; image 1 is where greedy and Hungarian matching differ.

    Image 1: ground truth SL g1 = cols 0:4, g2 = 4:8; predicted SL p1 = 1:6 (IoU 3/6 with g1,
    2/7 with g2) and p2 = 0:1 (IoU 1/4 with g1). Greedy takes p1-g1 (0.5) and leaves p2 alone;
    Hungarian takes p1-g2 + p2-g1 (2/7 + 1/4 > 1/2).
    Image 2: CR at 0:4 found exactly; SR at 6:8 predicted as ROS (no match across classes);
    a ROS at 4:6 with score 0.1 (below conf 0.2).
    Image 3: nothing at all. Image 4: no ground truth, one OT prediction.
    """
    truth = {1: [(5, _strip(0, 4)), (5, _strip(4, 8))], 2: [(1, _strip(0, 4)), (4, _strip(6, 8))],
             3: [], 4: []}
    records = [ImageRecord(f"S000000000{i}_U.jpg", 4, 8,
                           tuple(Annotation(c, mask_to_polygons(m)) for c, m in anns), image_id=i)
               for i, anns in truth.items()]
    gt = tmp_path / "gt.json"
    write_coco(records, gt)
    preds = {1: [(5, _strip(1, 6), 0.9), (5, _strip(0, 1), 0.8)],
             2: [(1, _strip(0, 4), 0.9), (3, _strip(6, 8), 0.5), (3, _strip(4, 6), 0.1)],
             4: [(2, _strip(0, 2), 0.3)]}
    results = [e for i, items in preds.items()
               for e in Instances.from_masks(np.stack([m for _, m, _ in items]),
                                             [c for c, _, _ in items],
                                             [s for _, _, s in items]).to_coco(i)]
    return gt, results


def _uncompressed(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE: run lengths of the column-major pixels, starting with zeros."""
    flat = mask.T.ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": list(mask.shape), "counts": [0, *runs] if flat[0] else runs}


def _pr(metrics, t, name):
    """(precision, recall, tp, fp, fn) of one class at IoU threshold ``t``."""
    v = metrics["precision_recall"][f"iou_{t}"]["per_class"][name]
    return v["precision"], v["recall"], v["tp"], v["fp"], v["fn"]


def _eq(a, b) -> bool:
    """Equal tuples where NaN equals NaN."""
    return all((math.isnan(x) and math.isnan(y)) if isinstance(x, float) and math.isnan(x)
               else x == pytest.approx(y) for x, y in zip(a, b, strict=True))


def test_hand_precision_recall_and_mean_iou(hand, tmp_path):
    gt, results = hand
    evaluation = evaluate(gt, results)
    m = evaluation.metrics
    nan = math.nan
    # Hungarian: image 1's SL pairs have IoU 2/7 and 1/4 -> no TP at 0.5, two at 0.2
    # (greedy matching would give one TP at both thresholds).
    assert _eq(_pr(m, 0.5, "star-loop"), (0.0, 0.0, 0, 2, 2))
    assert _eq(_pr(m, 0.2, "star-loop"), (1.0, 1.0, 2, 0, 0))
    for t in (0.5, 0.2):
        assert _eq(_pr(m, t, "central-ring"), (1.0, 1.0, 1, 0, 0))
        assert _eq(_pr(m, t, "smoke-ring"), (nan, 0.0, 0, 0, 1))
        assert _eq(_pr(m, t, "read-out-streak"), (0.0, nan, 0, 1, 0))
        assert _eq(_pr(m, t, "other"), (0.0, nan, 0, 1, 0))
    assert m["precision_recall"]["iou_0.5"]["mean"] == pytest.approx(
        {"precision": 1 / 4, "recall": 1 / 3})
    assert m["precision_recall"]["iou_0.2"]["mean"] == pytest.approx(
        {"precision": 2 / 4, "recall": 2 / 3})
    # per-image IoU of the unions: 6/8, 6/6 (classes ignored), skipped, 0/2
    assert [e["iou"] for e in m["per_image_iou"]] == [pytest.approx(0.75), 1.0, None, 0.0]
    assert m["images_in_mean_iou"] == 3
    assert m["mean_iou"] == pytest.approx(1.75 / 3)
    assert m["mean_iou_std"] == pytest.approx(np.std([0.75, 1.0, 0.0]))
    # the matched pairs behind the ratios (what the IoU figure draws), all classes
    assert evaluation.matched_iou == {"central-ring": [1.0], "smoke-ring": [], "other": [],
                                      "read-out-streak": [],
                                      "star-loop": [pytest.approx(2 / 7), pytest.approx(1 / 4)]}
    # the same entries from a file give the same numbers
    (tmp_path / "pred.json").write_text(json.dumps(results))
    from_file = evaluate(gt, tmp_path / "pred.json").metrics
    # and so do uncompressed RLEs
    uncompressed = [e | {"segmentation": _uncompressed(decode_rle(e["segmentation"]))}
                    for e in results]
    for other in (from_file, evaluate(gt, uncompressed).metrics):
        for key in ("precision_recall", "per_image_iou", "segm", "bbox"):
            assert json.dumps(other[key]) == json.dumps(m[key])  # NaN written alike


def test_conf_selects_predictions(hand):
    gt, results = hand
    m = evaluate(gt, results, conf=0.0).metrics
    assert m["conf"] == 0.0
    assert m["per_image_iou"][1]["iou"] == pytest.approx(6 / 8)  # the 0.1 ROS now counts
    assert _pr(m, 0.5, "read-out-streak")[3] == 2
    assert evaluate(gt, results, conf=0.95).metrics["precision_recall"]["iou_0.2"]["per_class"][
        "central-ring"]["recall"] == 0.0


def test_no_predictions(hand, tmp_path):
    gt, _ = hand
    (tmp_path / "empty.json").write_text("[]")
    evaluation = evaluate(gt, tmp_path / "empty.json")
    write_evaluation(tmp_path / "out", evaluation)
    m = evaluation.metrics
    for iou_type in ("segm", "bbox"):
        assert m[iou_type]["AP"] == 0.0 and m[iou_type]["AP50"] == 0.0
        per_class = {c.short: m[iou_type]["per_class"][c.name]["AP"] for c in CLASSES}
        assert per_class["CR"] == per_class["SR"] == per_class["SL"] == 0.0
        assert math.isnan(per_class["ROS"]) and math.isnan(per_class["OT"])
    pr = m["precision_recall"]["iou_0.5"]
    assert all(math.isnan(v["precision"]) for v in pr["per_class"].values())
    assert math.isnan(pr["mean"]["precision"]) and pr["mean"]["recall"] == 0.0
    assert [e["iou"] for e in m["per_image_iou"]] == [0.0, 0.0, None, None]
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data["segm"]["per_class"]["other"]["AP"] is None
    assert data["precision_recall"]["iou_0.5"]["mean"]["precision"] is None
    assert "| OT | – | – | – | – |" in (tmp_path / "out" / "table3.md").read_text()


def test_nothing_to_evaluate(tmp_path):
    gt = tmp_path / "gt.json"
    write_coco([ImageRecord("S0000000001_U.jpg", 4, 8, (), image_id=1)], gt)
    evaluation = evaluate(gt, [])
    write_evaluation(tmp_path / "out", evaluation)
    m = evaluation.metrics
    assert math.isnan(m["segm"]["AP"]) and math.isnan(m["mean_iou"])
    assert m["images_in_mean_iou"] == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["mean_iou"] is None
    assert "undefined" in (tmp_path / "out" / "table3.md").read_text()


# --------------------------------------------------------------------------- errors
def _entry(**change):
    """A valid results entry for image 1 of the hand case, with keys changed or removed."""
    entry = Instances.from_masks(_strip(0, 4)[None], [5], [0.9]).to_coco(1)[0]
    entry.update(change)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(("content", "problem"), [
    ('{"a": 1}', "results must be a list of objects, got dict"),
    ("not json", "not a JSON file"),
    ([1], "result 0 is not a JSON object"),
    ([_entry(score=None)], "result 0: missing 'score'"),
    ([_entry(), _entry(image_id=99)], "result 1: image_id 99 is not an image of the ground"),
    ([_entry(category_id=0)], r"unknown category_id 0"),
    ([_entry(score="high")], "score 'high' is not a finite number"),
    ([_entry(bbox=[0, 0, -1, 4])], r"bbox \[0, 0, -1, 4\] is not"),
    ([_entry(segmentation=[[0, 0, 1, 0, 1, 1]])], "bad RLE segmentation: expected an object"),
    ([_entry(segmentation={"size": [8, 4], "counts": "04"})], r"size \[8, 4\] is not the"),
    ([_entry(segmentation={"size": [4, 8], "counts": "!!"})], "not in the compressed RLE"),
    ([_entry(segmentation={"size": [4, 8], "counts": "P"})], "ends inside a number"),
    ([_entry(segmentation=encode_rle(np.ones((4, 4), bool)) | {"size": [4, 8]})],
     "do not add up to 4 x 8"),
    ([_entry(segmentation={"size": [4, 8], "counts": [16, 20]})], "do not add up"),
    ([_entry(segmentation={"size": [4, 8], "counts": [16, 1.5]})], "neither a string nor"),
])
def test_bad_predictions(hand, tmp_path, content, problem):
    gt, _ = hand
    pred = tmp_path / "pred.json"
    pred.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DatasetError, match=re.escape(str(pred)) + ".*" + problem):
        evaluate(gt, pred)


def test_bad_predictions_in_memory(hand):
    gt, _ = hand
    with pytest.raises(DatasetError, match=r"^result 0: score nan is not a finite number"):
        evaluate(gt, [_entry(score=math.nan)])
    with pytest.raises(DatasetError, match="file not found"):
        evaluate(gt, gt.parent / "missing.json")


def test_bad_ground_truth_and_conf(hand, tmp_path):
    gt, results = hand
    data = json.loads(gt.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data | {"categories": [{"id": 9, "name": "x"}]}))
    with pytest.raises(DatasetError, match=re.escape(str(bad)) + ".*category id 9"):
        evaluate(bad, results)
    for ann in data["annotations"]:
        del ann["area"]
    bad.write_text(json.dumps(data | {"categories": coco_categories()}))
    with pytest.raises(DatasetError, match=re.escape(str(bad)) + ".*no 'area'"):
        evaluate(bad, results)
    for conf in (-0.1, 1.5, "0.2", True):
        with pytest.raises(ValueError, match="conf must be a number in"):
            evaluate(gt, results, conf=conf)


def test_cli_threshold_defaults_to_the_library_and_can_be_set(sim_run, tmp_path):
    from xami.cli import main

    gt, pred, _, metrics = sim_run
    for args, conf in (([], metrics["conf"]), (["--conf", "0.5"], 0.5)):
        out = tmp_path / str(conf)
        assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(out),
                     *args]) == 0
        assert json.loads((out / "metrics.json").read_text())["conf"] == conf

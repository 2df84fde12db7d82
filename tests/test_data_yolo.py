"""YOLO-seg writer and reader: class index = COCO id - 1, exact polygons, data.yaml, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from _data_factory import tiny_dataset, write_frame
from xami.classes import yolo_names
from xami.data.coco import read_coco
from xami.data.loading import load_dataset, write_dataset
from xami.data.polygons import merge_polygons
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.data.yolo import read_yolo, write_yolo
from xami.errors import DatasetError

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def random_polygon_dataset(root: Path, rng: np.random.Generator) -> Dataset:
    """Two images with random non-grid polygons of every class (stress the %.10g precision)."""
    records = []
    for i in range(2):
        anns = tuple(Annotation(cid, (rng.uniform([0, 0], [31, 23], size=(7, 2)),), 0)
                     for cid in (1, 2, 3, 4, 5))
        name = f"S000000001{i}_B.jpg"
        write_frame(root / "train" / name, rng)
        records.append(ImageRecord(name, 24, 32, anns))
    return Dataset({"train": tuple(records)}, {"train": root / "train"})


def test_coco_yolo_coco_keeps_every_instance_and_class(tmp_path: Path,
                                                       rng: np.random.Generator) -> None:
    """One instance per line: single polygons come back exactly, multi-part ones bridged."""
    for dataset in (tiny_dataset(tmp_path / "src", rng),
                    random_polygon_dataset(tmp_path / "rand", rng)):
        out = tmp_path / str(len(dataset.splits))  # a folder per dataset
        write_dataset(dataset, out / "coco", layout="coco")
        write_dataset(load_dataset(out / "coco"), out / "yolo", layout="yolo")
        write_dataset(read_yolo(out / "yolo"), out / "back", layout="coco")
        for split, records in dataset.splits.items():
            back = read_coco(out / "back" / split / "_annotations.coco.json")
            for rec, rec_back in zip(records, back, strict=True):
                assert [a.category_id for a in rec_back.annotations] == [
                    a.category_id for a in rec.annotations]
                for ann, ann_back in zip(rec.annotations, rec_back.annotations, strict=True):
                    (polygon,) = ann_back.polygons
                    np.testing.assert_allclose(polygon, merge_polygons(ann.polygons),
                                               rtol=1e-6, atol=1e-6 * 32)


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_multi_part_instance_is_one_line_of_the_same_area(tmp_path: Path,
                                                          rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "src", rng)
    write_yolo(dataset, tmp_path / "yolo")
    n_lines = sum(len((tmp_path / "yolo" / split / "labels").joinpath(
        Path(rec.file_name).with_suffix(".txt")).read_text().splitlines())
        for split, records in dataset.splits.items() for rec in records)
    assert n_lines == sum(len(rec.annotations) for _, rec in dataset.records())
    (two_part,) = dataset.splits["train"][1].annotations
    assert len(two_part.polygons) == 2
    merged = merge_polygons(two_part.polygons)
    assert _area(merged) == pytest.approx(sum(_area(p) for p in two_part.polygons))


def test_data_yaml_is_the_same_wherever_the_dataset_is(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_yolo(tiny_dataset(tmp_path / f"src_{name}", np.random.default_rng(0)),
                   tmp_path / name / "yolo")
    assert ((tmp_path / "a/yolo/data.yaml").read_bytes()
            == (tmp_path / "b/yolo/data.yaml").read_bytes())
    assert str(tmp_path) not in (tmp_path / "a/yolo/data.yaml").read_text()


def test_label_class_index_is_coco_id_minus_one(tmp_path: Path, rng: np.random.Generator) -> None:
    dataset = tiny_dataset(tmp_path / "src", rng)
    write_yolo(dataset, tmp_path / "yolo")
    star_loop = (tmp_path / "yolo/train/labels/S0000000002_V.txt").read_text().splitlines()
    assert [line.split()[0] for line in star_loop] == ["4"]  # one star-loop of two parts
    streaks = (tmp_path / "yolo/train/labels/S0000000001_U.txt").read_text().splitlines()
    assert [line.split()[0] for line in streaks] == ["2", "2", "0"]
    assert (tmp_path / "yolo/valid/labels/S0000000005_L.txt").read_text() == ""
    first = [float(v) for v in streaks[0].split()[1:]]
    assert min(first) >= 0 and max(first) <= 1
    back = read_yolo(tmp_path / "yolo")
    assert [a.category_id for a in back.splits["train"][1].annotations] == [5]
    assert back.splits["valid"][1].annotations == ()


def test_data_yaml_is_what_ultralytics_reads(tmp_path: Path, rng: np.random.Generator) -> None:
    write_yolo(tiny_dataset(tmp_path / "src", rng), tmp_path / "yolo")
    config = yaml.safe_load((tmp_path / "yolo/data.yaml").read_text())
    assert config == {"train": "train/images", "val": "valid/images", "nc": 5,
                      "names": yolo_names()}
    assert config["names"][4] == "star-loop"
    image = tmp_path / "yolo/train/images/S0000000001_U.jpg"
    assert image.stat().st_ino == (tmp_path / "src/train/S0000000001_U.jpg").stat().st_ino


def test_roboflow_style_yaml_and_missing_labels(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "yolo"
    write_frame(root / "train/images/S0000000001_U.jpg", rng)
    write_frame(root / "valid/images/S0000000002_U.jpg", rng)
    (root / "train/labels").mkdir(parents=True)
    (root / "train/labels/S0000000001_U.txt").write_text("3 0.1 0.1 0.5 0.1 0.3 0.5\n\n")
    (root / "data.yaml").write_text(yaml.safe_dump({
        "train": "../train/images", "val": "/home/someone/xami/valid/images", "nc": 5,
        "names": list(yolo_names().values())}))
    dataset = read_yolo(root)
    assert list(dataset.splits) == ["train", "valid"]
    (ann,) = dataset.splits["train"][0].annotations
    assert ann.category_id == 4
    np.testing.assert_allclose(ann.polygons[0], [[3.2, 2.4], [16, 2.4], [9.6, 12]])
    assert dataset.splits["valid"][0].annotations == ()
    assert dataset.splits["valid"][0].meta == {"obs_id": "0000000002", "filter": "U"}


@pytest.mark.parametrize(("line", "match"), [
    ("5 0.1 0.1 0.5 0.1 0.3 0.5", r"line 2: class '5' is not a YOLO index"),
    ("-1 0.1 0.1 0.5 0.1 0.3 0.5", r"line 2: class '-1'"),
    ("1 0.1 0.1 0.5 0.1 0.3", r"line 2: 5 coordinates"),
    ("1 0.5 0.5 0.2 0.2", r"line 2: 4 coordinates; a polygon needs.*at least 3 points"),
    ("1 0.1 0.1 0.5 nan 0.3 0.5", r"line 2: non-finite coordinate"),
    ("1 0.1 0.1 0.5 x 0.3 0.5", r"line 2: coordinates are not numbers"),
])
def test_label_errors_name_file_and_line(tmp_path: Path, rng: np.random.Generator, line: str,
                                         match: str) -> None:
    write_yolo(tiny_dataset(tmp_path / "src", rng), tmp_path / "yolo")
    label = tmp_path / "yolo/train/labels/S0000000003_U.txt"
    label.write_text(f"0 0.1 0.1 0.5 0.1 0.3 0.5\n{line}\n")
    with pytest.raises(DatasetError, match=r"S0000000003_U\.txt: " + match):
        read_yolo(tmp_path / "yolo")


@pytest.mark.parametrize(("text", "match"), [
    ("names: [a, b]\ntrain: train/images\n", r"data\.yaml: names .* are not the XAMI classes"),
    ("train: [1, 2]\n", r"data\.yaml: train: \[1, 2\] is not a folder path"),
    ("- just a list\n", r"data\.yaml: top level is not a mapping"),
    ("train: x: y: z\n", r"data\.yaml: not a YAML file"),
    ("test: test/images\n", r"data\.yaml: test: folder .*test/images not found"),
])
def test_data_yaml_errors(tmp_path: Path, rng: np.random.Generator, text: str,
                          match: str) -> None:
    write_yolo(tiny_dataset(tmp_path / "src", rng), tmp_path / "yolo")
    (tmp_path / "yolo/data.yaml").write_text(text)
    with pytest.raises(DatasetError, match=match):
        read_yolo(tmp_path / "yolo")


def test_missing_yaml_and_unreadable_image(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"data\.yaml: file not found"):
        read_yolo(tmp_path)
    (tmp_path / "train/images").mkdir(parents=True)
    (tmp_path / "train/images/S0000000001_U.jpg").write_bytes(b"not an image")
    (tmp_path / "data.yaml").write_text("train: train/images\n")
    with pytest.raises(DatasetError, match=r"S0000000001_U\.jpg: cannot read image header"):
        read_yolo(tmp_path)


def test_ultralytics_reads_the_layout(tmp_path: Path, rng: np.random.Generator) -> None:
    pytest.importorskip("ultralytics")
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    write_yolo(tiny_dataset(tmp_path / "src", rng), tmp_path / "yolo")
    data = check_det_dataset(str(tmp_path / "yolo/data.yaml"))
    assert Path(data["val"]) == (tmp_path / "yolo/valid/images").resolve()
    dataset = YOLODataset(img_path=data["train"], data=data, task="segment", imgsz=32,
                          augment=False)
    classes = {Path(lab["im_file"]).name: lab["cls"].ravel().tolist() for lab in dataset.labels}
    assert classes == {"S0000000001_U.jpg": [2.0, 2.0, 0.0], "S0000000002_V.jpg": [4.0],
                       "S0000000003_U.jpg": []}  # the two-part star loop is one instance

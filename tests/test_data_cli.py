"""The ``xami dataset`` subcommands, run through `xami.cli.main` on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from _data_factory import tiny_dataset
from xami.cli import main
from xami.data.loading import write_dataset

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def make_data(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A COCO dataset in ``tmp_path/data``."""
    write_dataset(tiny_dataset(tmp_path / "data", rng), tmp_path / "data", layout="coco")
    return tmp_path / "data"


def test_stats(tmp_path: Path, rng: np.random.Generator, capsys) -> None:
    data = make_data(tmp_path, rng)
    assert main(["dataset", "stats", str(data), "--out", str(tmp_path / "stats")]) == 0
    assert "| ROS | 2 (50.00%) | 1 (50.00%) |" in capsys.readouterr().out
    assert json.loads((tmp_path / "stats/stats.json").read_text())["images"] == {
        "train": 3, "valid": 2}
    assert (tmp_path / "stats/box_centres.png").stat().st_size > 0


def test_convert_to_yolo_and_back(tmp_path: Path, rng: np.random.Generator) -> None:
    data = make_data(tmp_path, rng)
    assert main(["dataset", "convert", str(data), "--to", "yolo", "--out",
                 str(tmp_path / "yolo")]) == 0
    assert yaml.safe_load((tmp_path / "yolo/data.yaml").read_text())["nc"] == 5
    assert main(["dataset", "convert", str(tmp_path / "yolo"), "--to", "coco", "--out",
                 str(tmp_path / "coco")]) == 0
    assert (tmp_path / "coco/valid/_annotations.coco.json").is_file()


def test_convert_to_an_unknown_layout_is_a_usage_error(tmp_path: Path, rng: np.random.Generator,
                                                       capsys) -> None:
    data = make_data(tmp_path, rng)
    assert main(["dataset", "convert", str(data), "--to", "voc", "--out",
                 str(tmp_path / "voc")]) == 2
    assert capsys.readouterr().err == ("xami dataset: error: layout must be one of ('coco', "
                                       "'yolo'), got 'voc'\n")
    assert not (tmp_path / "voc").exists()


def test_split(tmp_path: Path, rng: np.random.Generator) -> None:
    data = make_data(tmp_path, rng)
    assert main(["dataset", "split", str(data), "--out", str(tmp_path / "split"), "--k", "2",
                 "--test-fraction", "0.2", "--group-obsid", "--seed", "1"]) == 0
    sizes = {s: len(json.loads((tmp_path / "split" / s / "_annotations.coco.json").read_text())
                    ["images"]) for s in ("train", "valid", "test")}
    assert sum(sizes.values()) == 5 and sizes["test"] >= 1


def test_show_and_errors(tmp_path: Path, rng: np.random.Generator, capsys) -> None:
    data = make_data(tmp_path, rng)
    assert main(["dataset", "show", str(data), "--out", str(tmp_path / "show"), "--n", "2"]) == 0
    assert len(list((tmp_path / "show").glob("*.png"))) == 2
    assert main(["dataset", "stats", str(tmp_path / "missing")]) == 1
    assert "missing: no such file or folder" in capsys.readouterr().err

"""Paths read from data files stay inside the dataset and output folders (COCO, YOLO, zip)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from _data_factory import tiny_dataset
from xami.cli import main
from xami.data.files import join_inside
from xami.data.loading import write_dataset
from xami.errors import DatasetError

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def _coco_with_file_name(root: Path, rng: np.random.Generator, file_name: str) -> Path:
    """A COCO dataset in ``root`` whose first valid image is named ``file_name``, an image
    really lying there (so that an unchecked reader would read it and write beside it)."""
    write_dataset(tiny_dataset(root, rng), root, layout="coco")
    ann = root / "valid" / "_annotations.coco.json"
    coco = json.loads(ann.read_text())
    first = root / "valid" / coco["images"][0]["file_name"]
    target = (root / "valid" / file_name).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first, target)
    coco["images"][0]["file_name"] = file_name
    ann.write_text(json.dumps(coco))
    return root


def _outside(tmp_path: Path, out: Path) -> set[Path]:
    """Every path under ``tmp_path`` but ``out`` and the zip extraction caches."""
    return {p for p in tmp_path.rglob("*")
            if out not in (p, *p.parents) and not any(q.suffix == ".extracted" for q in
                                                       (p, *p.parents))}


def _zip(folder: Path, target: Path) -> Path:
    """``folder`` zipped (members relative to it, nothing unsafe in the archive itself)."""
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return target


NAMES = {"dotdot": "../../evil.jpg", "absolute": None}  # None: an absolute path under tmp_path


@pytest.mark.parametrize("kind", list(NAMES))
@pytest.mark.parametrize("command", [["convert", "--to", "yolo"], ["convert", "--to", "coco"],
                                     ["show", "--n", "10"]])
@pytest.mark.parametrize("packed", [False, True])
def test_file_name_leaving_the_dataset_is_refused(tmp_path, rng, capsys, kind, command,
                                                  packed):
    file_name = NAMES[kind] or str(tmp_path / "victim" / "evil.jpg")
    data = _coco_with_file_name(tmp_path / "src" / "data", rng, file_name)
    if packed:
        data = _zip(data, tmp_path / "src" / "data.zip")
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    before = _outside(tmp_path, out)
    code = main(["dataset", command[0], str(data), "--out", str(out), *command[1:]])
    err = capsys.readouterr().err
    assert code == 1
    assert "_annotations.coco.json: image " in err and f"file_name {file_name!r}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _outside(tmp_path, out) == before


def test_yolo_split_folder_leaving_the_dataset_is_refused(tmp_path, rng, capsys):
    root = tmp_path / "src" / "yolo"
    write_dataset(tiny_dataset(tmp_path / "src" / "data", rng), root, layout="yolo")
    shutil.copytree(root / "valid" / "images", tmp_path / "src" / "images")
    config = yaml.safe_load((root / "data.yaml").read_text())
    (root / "data.yaml").write_text(yaml.safe_dump({**config, "val": ".."}))
    out = tmp_path / "work" / "out"
    before = _outside(tmp_path, out)
    code = main(["dataset", "convert", str(root), "--to", "coco", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "data.yaml: val '..' goes up with '..'" in err
    assert _outside(tmp_path, out) == before


@pytest.mark.parametrize("name, problem", [
    ("../x.png", "goes up with '..'"), ("a/../../x.png", "goes up with '..'"),
    ("..\\x.png", "goes up with '..'"), ("/etc/x.png", "is an absolute path"),
    ("C:\\x.png", "is an absolute path"), ("", "names no file"), (".", "names no file"),
])
def test_join_inside_refuses_names_leaving_the_folder(tmp_path, name, problem):
    with pytest.raises(DatasetError, match=rf"ann\.json: image 1: file_name .* {problem}"):
        join_inside(tmp_path, name, source=tmp_path / "ann.json", what="image 1: file_name")


def test_join_inside_keeps_sub_folders():
    assert join_inside(Path("out"), "train", "sub/S0000000001_U.jpg") == \
        Path("out/train/sub/S0000000001_U.jpg")

"""YAML config sections map onto the frozen config dataclasses, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xami.errors import InputError
from xami.io.config_file import read_config_section
from xami.train.detector import DetectorTrainConfig

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_defaults_without_a_file():
    assert read_config_section(None, "detector", DetectorTrainConfig) == DetectorTrainConfig()


def test_paper_yaml_is_the_default_recipe():
    assert read_config_section(CONFIGS / "paper.yaml", "detector",
                               DetectorTrainConfig) == DetectorTrainConfig()


def test_cpu_yaml_changes_only_the_length():
    cpu = read_config_section(CONFIGS / "cpu.yaml", "detector", DetectorTrainConfig)
    assert cpu.hours == 1.4 and cpu.mask_ratio == 4 and cpu.imgsz == 512 and cpu.mosaic == 0.0


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detector:\n  epohcs: 3\n")
    with pytest.raises(InputError, match=r"c\.yaml: unknown key\(s\) \['epohcs'\]"):
        read_config_section(path, "detector", DetectorTrainConfig)


@pytest.mark.parametrize("text, problem", [
    ("detector: [1, 2]\n", "must be a mapping"),
    ("- a\n- b\n", "must hold a mapping of sections"),
    ("detector: {epochs: [\n", "not valid YAML"),
])
def test_malformed_files_are_named(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        read_config_section(path, "detector", DetectorTrainConfig)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"none\.yaml: config file not found"):
        read_config_section(tmp_path / "none.yaml", "detector", DetectorTrainConfig)

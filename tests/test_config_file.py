"""YAML config sections map onto the frozen config dataclasses, with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from xami.errors import InputError, UsageError
from xami.io.config_file import read_config_section
from xami.pipeline import PipelineSpec
from xami.postprocess import FaintRuleConfig
from xami.priors import PriorConfig, SmokeRingPrior
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
    with pytest.raises(InputError, match=r"c\.yaml: unknown key\(s\) \['detector\.epohcs'\]"):
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


def test_predict_example_is_the_default_pipeline():
    """configs/predict_example.yaml states every default: it can never drift from the library."""
    path = CONFIGS / "predict_example.yaml"
    assert read_config_section(path, "predict", PipelineSpec) == PipelineSpec()
    written = yaml.safe_load(path.read_text(encoding="utf-8"))["predict"]
    assert _keys(written) == _keys(dataclasses.asdict(PipelineSpec()))  # every key documented


def _keys(values: dict, where: str = "") -> set[str]:
    """Dotted keys of a nested mapping."""
    keys = set()
    for name, value in values.items():
        keys.add(where + name)
        if isinstance(value, dict):
            keys |= _keys(value, f"{where}{name}.")
    return keys


def test_nested_sections_build_nested_configs(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("predict:\n  conf: 0\n  faint_rule: {threshold: 1}\n  streak_fit: null\n"
                    "  priors:\n    smoke_ring: {offset_range: [0.2, 0.3]}\n    streak: null\n")
    spec = read_config_section(path, "predict", PipelineSpec)
    priors = PriorConfig(smoke_ring=SmokeRingPrior(offset_range=(0.2, 0.3)), streak=None)
    assert spec == PipelineSpec(conf=0.0, faint_rule=FaintRuleConfig(threshold=1.0),
                                streak_fit=None, priors=priors)
    assert isinstance(spec.conf, float) and isinstance(spec.faint_rule.threshold, float)


@pytest.mark.parametrize("text, problem", [
    ("predict:\n  priors:\n    smoke_ring: {boots: 2}\n",
     r"unknown key\(s\) \['predict\.priors\.smoke_ring\.boots'\]; known in "
     r"'predict\.priors\.smoke_ring': \['offset_range'"),
    ("predict:\n  faint_rule: null\n", r"'predict\.faint_rule' cannot be null"),
    ("predict:\n  priors: 3\n", r"'predict\.priors' must be a mapping, got int"),
    ("predict:\n  priors: {streak: {extent: both}}\n",
     r"in 'predict\.priors\.streak': extent must be one of"),
    ("predict:\n  conf: 2\n", r"in 'predict': conf must be in \[0, 1\]"),
])
def test_nested_errors_name_the_dotted_key(tmp_path, text, problem):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=rf"p\.yaml: {problem}") as caught:
        read_config_section(path, "predict", PipelineSpec)
    assert "\n" not in str(caught.value)

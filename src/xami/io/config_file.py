"""Reading run configurations: YAML sections mapped onto the frozen config dataclasses."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from xami.errors import InputError

T = TypeVar("T")


def read_config_section(path: str | os.PathLike[str] | None, section: str, cls: type[T]) -> T:
    """Build the config dataclass ``cls`` from one section of a YAML file.

    Keys missing from the section keep the dataclass defaults (the paper's recipe); unknown keys
    are an error, so a typo never passes silently.

    Parameters
    ----------
    path : str or os.PathLike or None
        YAML file with top-level sections (``detector``, ``segmentor``, ``combined``); None gives
        the defaults.
    section : str
        Section name.
    cls : type
        A frozen dataclass type.

    Returns
    -------
    cls
        The configuration.

    Raises
    ------
    xami.errors.InputError
        The file is missing or not YAML, the section is not a mapping, or a key is unknown.

    Examples
    --------
    >>> from xami.train.detector import DetectorTrainConfig
    >>> read_config_section(None, "detector", DetectorTrainConfig).epochs
    300
    """
    if path is None:
        return cls()
    values = _read_yaml(Path(path)).get(section) or {}
    if not isinstance(values, dict):
        kind = type(values).__name__
        raise InputError(path, f"section {section!r} must be a mapping, got {kind}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(path, f"unknown key(s) {unknown} in section {section!r}; "
                               f"known: {sorted(known)}")
    return cls(**values)


def _read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file."""
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise InputError(path, "a config file must hold a mapping of sections")
    return data

"""Reading run configurations: YAML sections mapped onto the frozen config dataclasses."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from xami.errors import UsageError

T = TypeVar("T")


def read_config_section(path: str | os.PathLike[str] | None, section: str, cls: type[T]) -> T:
    """Build the config dataclass ``cls`` from one section of a YAML file.

    Keys missing from the section keep the dataclass defaults (the paper's recipe); unknown keys
    are an error at any depth, so a typo never passes silently. A field holding a config
    dataclass (such as `xami.pipeline.PipelineSpec`'s ``faint_rule`` or ``priors``) is built
    from a nested mapping the same way, its missing keys keeping their defaults; ``null`` sets a
    field that may be None (switching an optional step off); lists become tuples and integers
    given for a float field become floats.

    Parameters
    ----------
    path : str or os.PathLike or None
        YAML file with top-level sections (``detector``, ``segmentor``, ``combined``,
        ``predict``); None gives the defaults.
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
    xami.errors.UsageError
        The file is missing or not YAML, the section or a nested value is not a mapping, a
        key is unknown (named with its dotted path, ``predict.priors.streak.extnt``), or a
        value is refused by its dataclass.

    Examples
    --------
    >>> from xami.train.detector import DetectorTrainConfig
    >>> read_config_section(None, "detector", DetectorTrainConfig).epochs
    300
    """
    if path is None:
        return cls()
    return _build(cls, _read_yaml(Path(path)).get(section) or {}, path, section)


def _build(cls: type[T], values: Any, path: str | os.PathLike[str], where: str) -> T:
    """``cls`` from the mapping at dotted key ``where``, its nested dataclasses too."""
    if not isinstance(values, dict):
        raise UsageError(path, f"{where!r} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [f"{where}.{key}" for key in values if key not in known]
    if unknown:
        raise UsageError(path, f"unknown key(s) {unknown}; known in {where!r}: {known}")
    kwargs = {name: _value(hints[name], value, path, f"{where}.{name}")
              for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(path, f"in {where!r}: {err}") from err


def _value(hint: Any, value: Any, path: str | os.PathLike[str], where: str) -> Any:
    """The field value of a YAML value: a nested dataclass, a tuple, a float or as it is."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None:
        if type(None) not in options:
            raise UsageError(path, f"{where!r} cannot be null")
        return None
    nested = [t for t in options if dataclasses.is_dataclass(t)]
    if nested:
        return _build(nested[0], value, path, where)
    if isinstance(value, list):
        return tuple(value)
    if float in options and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _is_union(hint: Any) -> bool:
    """Whether ``hint`` is ``X | Y`` (or ``Optional[X]``)."""
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file."""
    if not path.is_file():
        raise UsageError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UsageError(path, f"not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise UsageError(path, "a config file must hold a mapping of sections")
    return data

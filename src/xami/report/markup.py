"""HTML building blocks of the report: escaping, number cells, tables, class labels and order."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xami.classes import BY_NAME, BY_SHORT, TABLE3_ORDER, ArtefactClass

DASH = "—"
"""What a cell shows for a missing or undefined value."""

DIGITS = 3
"""Decimals of a float cell."""

_RANK = {BY_SHORT[short].name: i for i, short in enumerate(TABLE3_ORDER)}


def table3_sorted(names: Iterable[str]) -> list[str]:
    """Class names in the paper's Table 3 order (CR, SR, SL, ROS, OT); other names after, as given.

    Parameters
    ----------
    names : iterable of str
        Full class names (``"star-loop"``) or any other keys.

    Returns
    -------
    list of str
        The same names, reordered.

    Examples
    --------
    >>> table3_sorted(["other", "star-loop", "mean", "central-ring"])
    ['central-ring', 'star-loop', 'other', 'mean']
    """
    return sorted(names, key=table3_rank)  # a stable sort: the other names keep their order


def table3_rank(name: str) -> int:
    """Row of a class name in the paper's Table 3 (0 for CR ... 4 for OT); 5 for any other name."""
    return _RANK.get(name, len(_RANK))


def esc(value: object) -> str:
    """Escaped text of a value; None as a dash."""
    return DASH if value is None else html.escape(str(value))


def num(value: object, digits: int | None = DIGITS) -> str:
    """A cell for a number: floats rounded (as written when ``digits`` is None), NaN as a dash."""
    if isinstance(value, float) and digits is not None:
        return DASH if math.isnan(value) else f"{value:.{digits}f}"
    return esc(value)


def row(cells: Iterable[str], tag: str = "td") -> str:
    """One table row of ready HTML cells."""
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def table(head: str, rows: Iterable[Sequence[str]], *, numeric: bool = False) -> str:
    """A table from a ready ``<tr>`` head (may be empty) and rows of ready HTML cells."""
    body = "\n".join(row(r) for r in rows)
    cls = ' class="num"' if numeric else ""
    thead = f"<thead>{head}</thead>" if head else ""
    return f"<table{cls}>{thead}<tbody>\n{body}\n</tbody></table>"


def field(obj: object, key: str) -> Any:
    """``obj[key]`` when ``obj`` is a JSON object, else None (tolerates partial files)."""
    return obj.get(key) if isinstance(obj, Mapping) else None


def class_label(name: str, cls: ArtefactClass | None = None) -> str:
    """Colour swatch, short name and full name of a class (plain escaped text if unknown)."""
    cls = cls or BY_NAME.get(name)
    if cls is None:
        return esc(name)
    r, g, b = cls.colour
    return (f'<span class="sw" style="background: rgb({r}, {g}, {b})"></span>'
            f'<b>{cls.short}</b> <span class="muted">{esc(cls.name)}</span>')

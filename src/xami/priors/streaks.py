"""Read-out streaks through a bright source's column, cut to where they are visible.

A read-out streak is the light a bright (>= 60 ct/s, saturated) source deposits while the frame
is transferred: it runs along the source's own column (SAS ``omqualitymap`` bit 1 marks 16
unbinned columns centred on the star, full height). In a frame it is visible where it stands
above the local sky and not inside the star's halo, which is what the real annotations box: often
one segment above and one below the star.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import ClassVar, NamedTuple

import numpy as np

from xami.classes import BY_NAME
from xami.instrument import RELEASED_SIZE, coverage_mask, grey_plane
from xami.priors.sources import BrightSource
from xami.structures import Instances

_EXTENTS = ("visible", "column")


@dataclass(frozen=True)
class StreakPrior:
    """Settings of the read-out-streak prior; lengths in pixels of a 512 frame (scaled with it).

    Attributes
    ----------
    extent : str
        ``"visible"``: each streak becomes the segments where it is visible, split at its star;
        ``"column"``: the full column (as SAS's bitmask marks it) is kept.
    boost : float
        Score factor of a streak with a saturated source on its column (capped at 1).
    penalty : float
        Score factor of a streak without one.
    column_tolerance : float
        Pixels beyond a saturated core's columns still counted as its column.
    block : int
        Rows per block of the column profile.
    nsigma : float
        A block is visible when the streak's median excess over the sides is above this many
        standard errors.
    side_gap, side_width : int
        The local sky is the median of ``side_width`` columns on each side, ``side_gap`` columns
        away from the streak's columns.
    max_gap : int
        Invisible runs shorter than this between visible ones are filled, rows (a streak is
        continuous along its column: such gaps are noise, a crossing source or a brighter patch
        of sky).
    min_length : int
        Shortest segment kept, rows.
    min_source_radius : float
        Smallest saturated core (equivalent radius, pixels) of a source whose halo cuts its
        streak: a source bright enough for a visible streak (>= 60 ct/s) saturates a core this
        large (real streak sources: 9.5-13 px, simulated: 5.5 px or more for 95 %); a smaller
        saturated star lying on the streak does not interrupt it.
    """

    artefact: ClassVar[str] = "read-out-streak"
    """The class (`xami.classes`) this step acts on."""

    extent: str = "visible"
    boost: float = 1.5
    penalty: float = 0.5
    column_tolerance: float = 2.0
    block: int = 16
    nsigma: float = 3.0
    side_gap: int = 3
    side_width: int = 5
    max_gap: int = 96
    min_length: int = 16
    min_source_radius: float = 5.0

    def __post_init__(self) -> None:
        if self.extent not in _EXTENTS:
            raise ValueError(f"extent must be one of {_EXTENTS}, got {self.extent!r}")
        if min(self.boost, self.penalty, self.column_tolerance, self.nsigma) < 0:
            raise ValueError("boost, penalty, column_tolerance and nsigma must be >= 0")
        if min(self.block, self.side_width, self.min_length) < 1 or self.side_gap < 0:
            raise ValueError(f"block, side_width and min_length must be >= 1 and side_gap >= 0, "
                             f"got {self.block!r}, {self.side_width!r}, {self.min_length!r}, "
                             f"{self.side_gap!r}")


_STREAK = BY_NAME[StreakPrior.artefact].coco_id


def column_parents(columns: tuple[int, int], sources: list[BrightSource], *,
                   tolerance: float = 2.0) -> list[BrightSource]:
    """The saturated sources centred on the streak's columns (within ``tolerance`` pixels).

    A read-out streak runs along its source's centre column; a wide saturated core (a bright
    galaxy, a merged pair) that merely reaches the column is not its source.
    """
    return [s for s in sources if columns[0] - tolerance <= s.x <= columns[1] + 1 + tolerance]


def visible_segments(image: np.ndarray, columns: tuple[int, int],
                     parents: list[BrightSource], *,
                     config: StreakPrior = StreakPrior()) -> list[tuple[int, int]]:
    """Row ranges where a streak on ``columns`` is visible above the sky, outside its stars' halos.

    Per row, the excess is the mean of the streak's columns minus the median of the side columns;
    a block of ``config.block`` rows is visible when its median excess exceeds ``config.nsigma``
    standard errors (from the rows' robust scatter). Runs of visible blocks are cut at the streak's
    source, the brightest parent (largest saturated core: a streak's light is proportional to its
    source's count rate, so fainter saturated stars on the column lie on the streak without
    interrupting it), over the rows where its halo (the side columns above the frame's sky)
    outshines the streak, at least over its saturated core.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, 3]`` frame (channel 0 is used); 0 is no coverage.
    columns : tuple of int
        First and last column of the streak (inclusive).
    parents : list of BrightSource
        Saturated sources on the column (`column_parents`).
    config : StreakPrior, optional
        Profile settings.

    Returns
    -------
    list of tuple of int
        ``(first_row, stop_row)`` ranges, top first; empty when the streak is nowhere visible.
    """
    return _visible_segments(_sky(image), columns, parents,
                             _scaled(config, image.shape[1] / RELEASED_SIZE))


def _scaled(config: StreakPrior, scale: float) -> StreakPrior:
    """``config`` with its lengths (given at 512) in pixels of a frame ``scale`` times as wide."""
    return replace(config, column_tolerance=config.column_tolerance * scale,
                   block=max(1, round(config.block * scale)),
                   side_gap=round(config.side_gap * scale),
                   side_width=max(1, round(config.side_width * scale)),
                   max_gap=round(config.max_gap * scale),
                   min_length=max(1, round(config.min_length * scale)),
                   min_source_radius=config.min_source_radius * scale)


class _Sky(NamedTuple):
    """What the row profiles read of a frame, computed once per frame, not per streak."""

    data: np.ndarray
    """``float64 [H, W]`` grey plane, NaN where not covered."""
    covered: np.ndarray
    """``bool [H, W]`` coverage (`coverage_mask`)."""
    level: float
    """Median of the covered pixels (NaN when none is)."""


def _sky(image: np.ndarray) -> _Sky:
    """The frame's `_Sky`."""
    plane = grey_plane(image)
    covered = coverage_mask(plane)
    data = np.where(covered, plane, np.nan)
    with _quiet():
        return _Sky(data, covered, float(np.nanmedian(data)))


def _visible_segments(sky: _Sky, columns: tuple[int, int], parents: list[BrightSource],
                      config: StreakPrior) -> list[tuple[int, int]]:
    """`visible_segments` on a frame's `_Sky` (``config`` scaled to the frame, `_scaled`)."""
    excess, side = _row_profile(sky.data, columns, config)
    visible = _visible_rows(excess, config)
    if not visible.any():
        return []
    amplitude = float(np.nanmedian(excess[visible]))
    visible = _fill_gaps(visible, config.max_gap)
    halo = _smooth(side - sky.level, 5) > amplitude
    source = max(parents, key=lambda p: p.radius, default=None)
    if source is not None and source.radius >= config.min_source_radius:
        r0, r1 = _halo_rows(halo, source)
        visible[r0:r1] = False
    runs = [_covered_span(np.isfinite(excess), r0, r1) for r0, r1 in _runs(visible)]
    return [(r0, r1) for r0, r1 in runs if r1 - r0 >= config.min_length]


def _covered_span(finite: np.ndarray, r0: int, r1: int) -> tuple[int, int]:
    """Rows ``r0:r1`` trimmed to their first and last covered row (seams inside are kept)."""
    rows = np.flatnonzero(finite[r0:r1])
    return (r0 + int(rows[0]), r0 + int(rows[-1]) + 1) if rows.size else (r0, r0)


def _row_profile(data: np.ndarray, columns: tuple[int, int],
                 config: StreakPrior) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the streak's excess over its sides, and the sides' level (NaN: no coverage)."""
    c0, c1 = columns
    w = data.shape[1]
    left = data[:, max(0, c0 - config.side_gap - config.side_width):max(0, c0 - config.side_gap)]
    right = data[:, min(w, c1 + 1 + config.side_gap):min(w, c1 + 1 + config.side_gap
                                                         + config.side_width)]
    sides = np.concatenate([left, right], axis=1)
    with np.errstate(all="ignore"), _quiet():
        side = np.nanmedian(sides, axis=1) if sides.shape[1] else np.full(len(data), np.nan)
        on = np.nanmean(data[:, c0:c1 + 1], axis=1)
    return on - side, side


def _visible_rows(excess: np.ndarray, config: StreakPrior) -> np.ndarray:
    """Rows in blocks whose median excess is significant."""
    n = len(excess)
    starts = range(0, n, config.block)
    with _quiet():
        medians = np.array([np.nanmedian(excess[s:s + config.block]) for s in starts])
    block_of_row = np.arange(n) // config.block
    residual = excess - medians[block_of_row]
    finite = np.isfinite(residual)
    if finite.sum() < 2:
        return np.zeros(n, bool)
    sigma = 1.4826 * np.median(np.abs(residual[finite]))
    counts = np.array([np.isfinite(excess[s:s + config.block]).sum() for s in starts])
    error = 1.2533 * sigma / np.sqrt(np.maximum(counts, 1))
    significant = np.nan_to_num(medians, nan=0.0) > config.nsigma * error
    return significant[block_of_row]


def _halo_rows(halo: np.ndarray, parent: BrightSource) -> tuple[int, int]:
    """The rows around a parent where its halo outshines the streak (at least its core)."""
    n = len(halo)
    r0 = max(0, int(np.floor(parent.y - parent.radius)))
    r1 = min(n, int(np.ceil(parent.y + parent.radius)) + 1)
    while r0 > 0 and halo[r0 - 1]:
        r0 -= 1
    while r1 < n and halo[r1]:
        r1 += 1
    return r0, r1


def _fill_gaps(flags: np.ndarray, max_gap: int) -> np.ndarray:
    """``flags`` with runs of False shorter than ``max_gap`` between two runs of True set."""
    filled = flags.copy()
    runs = _runs(flags)
    for (_, stop), (start, _) in itertools.pairwise(runs):
        if start - stop < max_gap:
            filled[stop:start] = True
    return filled


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running median over ``width`` rows (NaN kept out), so a single hot row does not count."""
    padded = np.pad(values, width // 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    with _quiet():
        return np.nan_to_num(np.nanmedian(windows, axis=1), nan=-np.inf)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's all-NaN warnings (uncovered rows are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def apply_streak_prior(image: np.ndarray, instances: Instances, sources: list[BrightSource], *,
                       config: StreakPrior = StreakPrior()) -> Instances:
    """Rescore read-out streaks by their column's bright source; cut them to their visible part.

    A streak with a saturated source on its column (`column_parents`) has its score multiplied
    by ``config.boost`` (capped at 1), one without by ``config.penalty``. With
    ``config.extent == "visible"`` each streak is replaced by one instance per
    `visible_segments` range (its columns over those rows, same class and score); a streak
    visible nowhere is kept whole.

    Parameters
    ----------
    image : numpy.ndarray
        The frame (``uint8 [H, W]`` or ``[H, W, 3]``); 0 is no coverage.
    instances : Instances
        Predictions on ``image`` (streak masks fitted to the columns,
        `xami.postprocess.apply_streak_fit`, or the model's).
    sources : list of BrightSource
        The frame's saturated sources (`xami.priors.sources.find_bright_sources`).
    config : StreakPrior, optional
        Score factors and extent.

    Returns
    -------
    Instances
        A new `Instances`: other classes first in their order, then the streaks' segments.
    """
    config = _scaled(config, instances.image_size[1] / RELEASED_SIZE)
    streaks = np.flatnonzero(instances.labels == _STREAK)
    sky = _sky(image) if config.extent == "visible" and streaks.size else None
    parts = [instances[np.flatnonzero(instances.labels != _STREAK)]]
    for i in streaks:
        streak = instances[int(i)]
        columns = _columns(streak)
        parents = column_parents(columns, sources, tolerance=config.column_tolerance)
        streak.scores = np.minimum(1.0, streak.scores * (config.boost if parents
                                                         else config.penalty))
        if sky is not None:
            segments = _visible_segments(sky, columns, parents, config)
            if segments:
                streak = _segmented(streak, columns, segments, sky.covered)
        parts.append(streak)
    return Instances.concatenate(parts)


def _columns(streak: Instances) -> tuple[int, int]:
    """First and last column of a single streak's mask (its box where the mask is empty)."""
    cols = np.flatnonzero(streak.masks[0].any(axis=0))
    if cols.size:
        return int(cols[0]), int(cols[-1])
    x0, _, x1, _ = streak.boxes[0]
    return int(np.floor(x0)), max(int(np.floor(x0)), int(np.ceil(x1)) - 1)


def _segmented(streak: Instances, columns: tuple[int, int], segments: list[tuple[int, int]],
               covered: np.ndarray) -> Instances:
    """One instance per row range: the streak's columns over those rows, where covered."""
    masks = np.zeros((len(segments), *streak.image_size), bool)
    for k, (r0, r1) in enumerate(segments):
        masks[k, r0:r1, columns[0]:columns[1] + 1] = True
    return Instances.from_masks(masks & covered, labels=np.repeat(streak.labels, len(segments)),
                                scores=np.repeat(streak.scores, len(segments)))

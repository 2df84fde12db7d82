"""What ``xami predict`` writes: the formats, the mask grid, and which images it redoes."""

from __future__ import annotations

from dataclasses import dataclass

from xami.errors import UsageError
from xami.io.frames import MASK_GRIDS
from xami.predict.image_result import FORMATS


@dataclass(frozen=True)
class PredictConfig:
    """What `run_predict` writes.

    Attributes
    ----------
    formats : tuple of str
        Any of `FORMATS`.
    mask_grid : str
        One of `MASK_GRIDS` (default: the first, ``frame``).
    overwrite : bool
        Redo images whose outputs are complete.
    retry_failed : bool
        Redo images that failed in an earlier run (by default their failure is reported again).
    """

    formats: tuple[str, ...] = FORMATS
    mask_grid: str = MASK_GRIDS[0]
    overwrite: bool = False
    retry_failed: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown or not self.formats:
            raise UsageError(None, f"formats must be among {', '.join(FORMATS)}, got "
                                   f"{', '.join(self.formats) or 'none'}")
        if self.mask_grid not in MASK_GRIDS:
            raise UsageError(None, f"mask grid must be one of {MASK_GRIDS}, got "
                                   f"{self.mask_grid!r}")

"""Exceptions and warnings raised by xami; every message names the file and the problem."""

from __future__ import annotations

from os import PathLike


class XamiError(Exception):
    """Base class of every error xami raises on purpose."""


class InputError(XamiError, ValueError):
    """An input file or value cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class FitsError(InputError):
    """A FITS file cannot be read as an XMM-OM image."""


class ImageError(InputError):
    """An 8-bit image file (PNG/JPEG) cannot be read as an XAMI frame."""


class DatasetError(InputError):
    """A dataset file (COCO JSON, YOLO labels, data.yaml, zip) is missing or malformed."""


class CheckpointError(InputError):
    """A model checkpoint cannot be loaded."""


class NoDetectionsWarning(UserWarning):
    """No artefact was found in an image; the result is empty."""

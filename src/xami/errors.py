"""Exceptions and warnings raised by xami; every message names the file and the problem."""

from __future__ import annotations

import re
from os import PathLike

_NOISE = (  # what foreign libraries add to their messages that is no reason for a user
    re.compile(r"ERROR \d+ in \w+\(\) at line \d+ of file \S+\.c:\s*"),  # wcslib's C location
    re.compile(r"\x1b\[[0-9;]*m"),  # terminal colours
    re.compile(r"This file can still be loaded.*?(?=WeightsUnpickler error:|$)", re.S),  # torch
    re.compile(r"Please use `torch\.serialization\.(add_)?safe_globals.*", re.S),  # torch
    re.compile(r"\s*If this is really a FITS file, try with ignore_missing_simple=True\.?"),
)


def clean_message(text: str) -> str:
    """One line of ``text`` without what foreign libraries add to their messages.

    Removes wcslib's C source locations (``ERROR 5 in wcsset() at line 2775 of file
    cextern/wcslib/C/wcs.c:``), torch's advice to load a checkpoint with ``weights_only=False``
    and astropy's to open a file with ``ignore_missing_simple=True`` (xami refuses both on
    purpose), and terminal colour codes; whitespace runs become one space.

    Parameters
    ----------
    text : str
        A message, possibly holding a foreign library's text.

    Returns
    -------
    str
        The message on one line.

    Examples
    --------
    >>> clean_message("ERROR 5 in wcsset() at line 2775 of file cextern/wcslib/C/wcs.c:\\n"
    ...               "Ill-conditioned coordinate transformation parameters.")
    'Ill-conditioned coordinate transformation parameters.'
    """
    for pattern in _NOISE:
        text = pattern.sub("", text)
    return " ".join(text.split())


class XamiError(Exception):
    """Base class of every error xami raises on purpose."""


class InputError(XamiError, ValueError):
    """An input file or value cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = clean_message(problem)
        super().__init__(self.problem if path is None else f"{path}: {self.problem}")


class UsageError(InputError):
    """An option, or a setting in a config file, has a value xami cannot use (not an input
    file's fault); the command line exits 2."""


class OutputError(XamiError, OSError):
    """An output file cannot be written (a full disk, lost permissions): not its input's fault."""

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = clean_message(problem)
        super().__init__(f"{path}: {self.problem}")


class FitsError(InputError):
    """A FITS file cannot be read as an XMM-OM image."""


class ImageError(InputError):
    """An 8-bit image file (PNG/JPEG) cannot be read as an XAMI frame."""


class DatasetError(InputError):
    """A dataset file (COCO JSON, YOLO labels, data.yaml, zip) is missing or malformed."""


class DownloadError(XamiError):
    """A file cannot be downloaded (offline, not found) or is not the expected one."""


class CheckpointError(InputError):
    """A model checkpoint cannot be loaded."""


class MissingExtraError(XamiError, ImportError):
    """A feature needs a package of an optional extra that is not installed; the CLI exits 2.

    Parameters
    ----------
    feature : str
        What was asked for (``"the torch backend"``).
    package : str
        The missing package (``"torch"``).
    extra : str
        The extra that installs it (``"train"``).

    Examples
    --------
    >>> print(MissingExtraError("training", "torch", "train"))
    training needs torch, which is not installed: pip install "xami[train]"
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f'{feature} needs {package}, which is not installed: '
                         f'pip install "xami[{extra}]"')


class NoDetectionsWarning(UserWarning):
    """No artefact was found in an image; the result is empty."""


class GroundTruthWarning(UserWarning):
    """Inputs have no image in the ground truth: their predictions are kept, not evaluated."""

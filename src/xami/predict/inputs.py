"""Inputs of ``xami predict``: the files that paths, folders, globs and list files stand for.

Reading one input is `xami.io.frames.load_input`.
"""

from __future__ import annotations

import errno
import glob
import itertools
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xami.errors import InputError
from xami.io.fits import FITS_SUFFIXES, split_selector
from xami.io.images import IMAGE_SUFFIXES
from xami.predict.image_result import OUTPUT_SUFFIXES, read_result


@dataclass(frozen=True)
class FoundInput:
    """An input `find_inputs` found: a file, or an item that cannot be one and why.

    Attributes
    ----------
    spec : str
        The file (FITS optionally with ``[HDU]``) or the item as given.
    problem : str or None
        Why it cannot be an input (None: it is one, to be read).
    """

    spec: str
    problem: str | None = None


def find_inputs(items: Iterable[str | os.PathLike[str]], *,
                out: str | os.PathLike[str] | None = None) -> list[FoundInput]:
    """Input files from paths, folders, glob patterns and list files, and the items that fail.

    xami's own products are never inputs: ``*.xami.fits`` files, the files a run folder's
    records list as its outputs (the overlay ``NAME.png`` beside ``records/NAME.json``), and,
    when found by a folder or a pattern, any file inside the run folder ``out`` (except the
    files right in it when the folder or the pattern's fixed part is ``out`` itself, as in
    ``xami predict DIR --out DIR``). A named product, a symbolic link loop, a folder named like an
    image, a pattern or folder that yields no file and an unreadable list file each come back
    with their problem, so that a run reports them and does the rest.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        As for `expand_inputs`.
    out : str or os.PathLike, optional
        The run folder the inputs are predicted into.

    Returns
    -------
    list of FoundInput
        In order, duplicates dropped. Files that do not exist are kept without a problem: they
        fail when read, with a reason, like any unreadable input.
    """
    run = None if out is None else os.path.realpath(out)
    found: dict[str, FoundInput] = {}
    for item in map(str, items):
        for entry in _expand(item, run):
            found.setdefault(entry.spec, entry)
    return list(found.values())


def expand_inputs(items: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Input files from paths, folders, globs and list files.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Each is a file (FITS, optionally with an ``[HDU]`` selector, or PNG/JPEG), a folder (its
        FITS and image files, sorted, not recursive), a glob pattern (``obs/**/*.FIT``, sorted), or
        a list file ending in ``.txt``/``.lst`` with one path per line (blank lines and ``#``
        comments ignored; relative paths are relative to the list file). xami's own products
        are left out (`find_inputs`).

    Returns
    -------
    list of str
        Inputs in order, duplicates dropped. Files that do not exist are kept: they fail later
        with a reason, like any unreadable input.

    Raises
    ------
    xami.errors.InputError
        The first item that cannot be used (`find_inputs`): a glob pattern matches no file, a
        folder holds no input file, a list file is unreadable...
    """
    found = find_inputs(items)
    for entry in found:
        if entry.problem is not None:
            raise InputError(entry.spec, entry.problem)
    return [entry.spec for entry in found]


def _expand(item: str, run: str | None) -> list[FoundInput]:
    """The inputs one item stands for (a folder, a pattern, a list file or a file)."""
    if Path(item).is_dir():
        return _folder(Path(item), run)
    if any(ch in item for ch in "*?[") and not os.path.lexists(split_selector(item)[0]):
        matches = sorted(glob.glob(item, recursive=True))
        base = os.path.realpath(Path(*itertools.takewhile(
            lambda part: not glob.has_magic(part), Path(item).parts)))
        kept = [m for m in matches if not _is_product(m, run, found_in=base)]
        if not kept:
            return [FoundInput(item, "pattern matches no file" if not matches
                               else "pattern matches only xami's own products")]
        return [_check(m) for m in kept]
    if item.lower().endswith((".txt", ".lst")):
        try:
            return [_check(entry) for entry in _read_list(Path(item))]
        except InputError as err:
            return [FoundInput(item, err.problem)]
    return [_check(item)]


def _folder(folder: Path, run: str | None) -> list[FoundInput]:
    """The input-named entries of a folder, less xami's products."""
    try:
        names = sorted(p.name for p in folder.iterdir() if _is_input_name(p.name))
    except OSError as err:
        return [FoundInput(str(folder), f"cannot list the folder ({err.strerror})")]
    kept = [str(folder / n) for n in names
            if not _is_product(str(folder / n), run, found_in=os.path.realpath(folder))]
    if not kept:
        return [FoundInput(str(folder), "folder holds no FITS or image file")]
    return [_check(spec) for spec in kept]


def _check(spec: str) -> FoundInput:
    """A named file, with its problem when it plainly is not an input image."""
    path = split_selector(spec)[0]
    if _is_product(path, None, found_in=None):
        return FoundInput(spec, "an xami product (the output of a run), not an input image")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return FoundInput(spec, "symbolic link loop")
        return FoundInput(spec)  # missing: read later, failing with its reason
    if stat.S_ISDIR(mode):
        return FoundInput(spec, "a folder, not a FITS or image file")
    return FoundInput(spec)


def _is_product(path: str, run: str | None, *, found_in: str | None) -> bool:
    """Whether a file is one of xami's own products (never an input)."""
    if Path(path).name.lower().endswith(OUTPUT_SUFFIXES["fits"]):
        return True
    real = os.path.realpath(path)
    if run is not None and real.startswith(run + os.sep) and (
            found_in != run or os.path.dirname(real) != run):
        return True  # in the run folder, not looked for there; or in its records, plots...
    return _listed_output(Path(path))


def _listed_output(path: Path) -> bool:
    """Whether the records of the folder holding ``path`` list it as a run's output."""
    for suffix in OUTPUT_SUFFIXES.values():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            record = read_result(path.parent / "records" / f"{path.name[:-len(suffix)]}.json")
            if record is not None and path.name in record.outputs.values():
                return True
    return False


def _is_input_name(name: str) -> bool:
    """Whether a file name has a FITS or image ending."""
    return name.lower().endswith(FITS_SUFFIXES + IMAGE_SUFFIXES)


def _read_list(path: Path) -> list[str]:
    """The paths of a list file (relative ones resolved against its folder)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read list file ({err})") from None
    entries = [line.strip() for line in lines]
    return [str(path.parent / e) if not Path(e).is_absolute() else e
            for e in entries if e and not e.startswith("#")]

"""The run folder of ``xami predict``: checked up front, held by a run id, cleaned of its own
temporary files only; write failures there are the output's fault, not the input's."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from xami.errors import OutputError, UsageError
from xami.io.atomic import tagged_temp_files

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no other run's files are ever removed
    fcntl = None  # type: ignore[assignment]

_LOCK = ".xami.{}.lock"
"""A run's lock file in the run folder, held (``flock``) while the run lives."""


@contextlib.contextmanager
def hold_run_folder(out: Path) -> Iterator[str]:
    """Create and check ``out``, hold it under a new run id, and clean up after the run.

    Temporary files written in the block are named with the run id (`tagged_temp_files`). On
    leaving, the run removes its own temporary files (a Dask worker that died mid-write leaves
    one) and those of earlier runs whose process is gone (killed; their lock is free), never
    those of a run still going.

    Parameters
    ----------
    out : pathlib.Path
        The run folder (created with its ``records`` folder).

    Yields
    ------
    str
        The run id.

    Raises
    ------
    xami.errors.UsageError
        ``out`` is a file or cannot be created or written (nothing is written).
    """
    run_id = secrets.token_hex(6)  # 12 hex digits
    _create(out)
    lock = _lock(out, run_id)
    try:
        with tagged_temp_files(run_id):
            yield run_id
    finally:
        _remove_temporary_files(out, run_id)
        if lock is not None:
            lock.close()
        (out / _LOCK.format(run_id)).unlink(missing_ok=True)


def _create(out: Path) -> None:
    """Make the run folder and its ``records`` folder, or say in one line why they cannot be."""
    if out.exists() and not out.is_dir():
        raise UsageError(out, "the output folder is a file")
    try:
        (out / "records").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(out, f"cannot create the output folder ({err.strerror})") from None


def _lock(out: Path, run_id: str) -> IO[bytes] | None:
    """This run's lock file, created and held (also the proof that ``out`` is writable)."""
    try:
        stream = open(out / _LOCK.format(run_id), "xb")  # noqa: SIM115 - held for the run
    except OSError as err:
        raise UsageError(out, f"cannot write in the output folder ({err.strerror})") from None
    if fcntl is not None:
        fcntl.flock(stream, fcntl.LOCK_EX)
    return stream


def _remove_temporary_files(out: Path, run_id: str) -> None:
    """Remove this run's temporary files and those of runs that are gone, with their locks."""
    gone = [run_id]
    for lock in out.glob(_LOCK.format("*")):
        other = lock.name.split(".")[2]
        if re.fullmatch(r"[0-9a-f]{12}", other) and other != run_id and not _alive(lock):
            gone.append(other)
    for tag in gone:
        for folder in (out, out / "records"):
            for temporary in folder.glob(f".*.{tag}.*.tmp"):
                temporary.unlink(missing_ok=True)
        if tag != run_id:
            (out / _LOCK.format(tag)).unlink(missing_ok=True)


def _alive(lock: Path) -> bool:
    """Whether the run holding this lock file still runs (True when that cannot be told)."""
    if fcntl is None:
        return True
    try:
        with open(lock, "rb") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
    except OSError:  # held (EWOULDBLOCK), or gone as its run ended and cleaned up itself
        return True


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an `OSError` of the block, which writes ``path``, into an `OutputError`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(path, err.strerror or str(err)) from err


def output_failure(spec: str, err: OutputError) -> str:
    """The reason of an image whose output could not be written: not the input's fault."""
    return f"output failed: {err}; {spec} itself is fine and the next run redoes it"


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (symbolic links followed where they resolve)."""
    return os.path.realpath(a) == os.path.realpath(b)

"""Atomic file writing (a temporary file in the target folder, renamed into place when complete)
and file checksums."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TEMP_TAG: contextvars.ContextVar[str] = contextvars.ContextVar("xami_temp_tag", default="")


@contextlib.contextmanager
def tagged_temp_files(tag: str) -> Iterator[None]:
    """Put ``tag`` in the names of the temporary files the block's atomic writes make.

    The temporary file of ``NAME`` is then ``.NAME.<tag>.<random>.tmp``, so that a run can tell
    its own temporary files from another run's in a shared folder. The tag holds for the calling
    thread (a `contextvars` variable) and is restored on leaving the block.

    Parameters
    ----------
    tag : str
        Letters and digits (a run id).

    Raises
    ------
    ValueError
        ``tag`` is empty or holds other characters.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with tagged_temp_files("run1"), atomic_path(target) as tmp:
    ...     tmp.name.startswith(".out.txt.run1.")
    True
    """
    if not tag.isascii() or not tag.isalnum():
        raise ValueError(f"tag must be letters and digits, got {tag!r}")
    token = _TEMP_TAG.set(tag)
    try:
        yield
    finally:
        _TEMP_TAG.reset(token)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    Nothing half-written is ever left at ``path``: on an exception the temporary file is removed.
    The temporary file is ``.NAME.<random>.tmp`` (``.NAME.<tag>.<random>.tmp`` inside
    `tagged_temp_files`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = _TEMP_TAG.get()
    prefix = f".{path.name}.{tag}." if tag else f".{path.name}."
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Threads of the inference engines: one setting for ONNX Runtime and, when installed, torch."""

from __future__ import annotations

import os
import sys

_threads: int | None = None


def set_threads(threads: int) -> None:
    """Run torch and every ONNX Runtime session opened from now on with ``threads`` threads.

    Parameters
    ----------
    threads : int
        Threads per engine, >= 1. Torch is set only when it is installed (``xami[train]``).

    Raises
    ------
    xami.errors.UsageError
        ``threads`` is not a positive integer.
    """
    from xami.errors import UsageError

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(None, f"threads must be an integer >= 1, got {threads!r}")
    global _threads
    _threads = threads
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def thread_count() -> int:
    """The threads an engine runs on: torch's once torch is imported (`set_threads` sets it),
    else `set_threads`'s, else ``OMP_NUM_THREADS``'s (1 in Dask's workers), else one per core.

    Examples
    --------
    >>> thread_count() >= 1
    True
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    if _threads is not None:
        return _threads
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return int(omp) if omp.isdigit() and int(omp) > 0 else os.cpu_count() or 1

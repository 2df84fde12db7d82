"""Dask for ``xami predict``: a client (local cluster or scheduler) and bounded submission."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from xami.errors import UsageError
from xami.extras import import_extra
from xami.predict.image_result import FAILED, ContentKey, ImageResult, write_result
from xami.predict.resume import input_sha256

if TYPE_CHECKING:
    from distributed import Client


IN_FLIGHT_PER_THREAD = 4
"""Dask: images submitted and not yet finished per worker thread (enough to keep it busy)."""

WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask settings of the local cluster's workers: glibc's own malloc trim threshold instead of
Dask's 64 KiB, which returns every freed tensor to the kernel and makes the detector 1.4x slower
(127 -> 188 ms per 512 frame on one thread, measured). Workers keep Dask's one OpenMP thread."""


@contextlib.contextmanager
def dask_client(address: str | None = None, *, workers: int | None = None,
                dashboard_address: str = ":8787") -> Iterator[Client]:
    """A Dask client: of a new local cluster, or of the scheduler at ``address``.

    The local cluster has one worker process per core (or ``workers``), one thread each, and is
    closed on leaving the block; a scheduler at ``address`` is left running.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``); None starts a local cluster.
    workers : int, optional
        Local cluster: worker processes (default: ``os.cpu_count()``).
    dashboard_address : str
        Local cluster: where its dashboard listens (``":0"``: any free port).

    Yields
    ------
    distributed.Client

    Raises
    ------
    xami.errors.InputError
        ``workers`` is not positive, or is given with an ``address``.

    Examples
    --------
    >>> from xami.pipeline import PipelineSpec
    >>> with dask_client(workers=2) as client:  # doctest: +SKIP
    ...     summary = run_predict(["obs/"], "run", pipeline=PipelineSpec(), client=client)
    """
    dask = import_extra("dask", "xami predict --dask")
    distributed = import_extra("distributed", "xami predict --dask")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster  # noqa: N806

    if workers is not None and (address is not None or workers < 1):
        raise UsageError(None, f"workers must be a positive integer, for a local cluster (no "
                               f"address); got workers={workers!r}, address={address!r}")
    if address is not None:
        with Client(address) as client:
            yield client
        return
    with (dask.config.set(WORKER_CONFIG),
          LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                       processes=True, dashboard_address=dashboard_address) as cluster,
          Client(cluster) as client):
        yield client


def dask_results(client: Client, work: Callable[..., ImageResult],
                 todo: list[tuple[int, str, str]], out: Path, *, in_flight: int | None,
                 settings: str) -> Iterator[tuple[int, ImageResult]]:
    """(index, record) of each image as the cluster finishes it, submitted in bounded batches.

    ``work(spec, name, worker=...)`` predicts one image (`xami.predict.process_image` with the
    run's settings, whose SHA-256 is ``settings``). An image that kills every worker that tries
    it is recorded as failed with its content key, as any other failure: a rerun reports it
    again, and ``--retry-failed`` tries it again.
    """
    # at most `limit` images queued or running (looked up again at each batch, as workers
    # join), so the scheduler never holds the whole run and each result is released at once
    from distributed import KilledWorker, as_completed

    pending = iter(todo)
    running = as_completed()
    tasks: dict[str, tuple[int, str, str]] = {}
    limit = 0

    def top_up() -> None:
        nonlocal limit
        limit = in_flight or IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()))
        for task in itertools.islice(pending, limit - len(tasks)):
            future = client.submit(_predict_on_worker, work, task[1], task[2], pure=False)
            tasks[future.key] = task
            running.add(future)

    top_up()
    try:
        for future in running:
            i, spec, name = tasks.pop(future.key)
            try:
                record = future.result()
            except KilledWorker:  # the image killed every worker that tried it: go on
                record = ImageResult(spec, name, FAILED, f"{spec}: the Dask workers predicting "
                                                         f"it died (crash or out of memory?)",
                                     key=ContentKey(input_sha256(spec), settings))
                write_result(out, record)
            if len(tasks) <= limit // 2:
                top_up()
            yield i, record
    finally:  # any other task error stops the run
        client.cancel(list(running.futures))


def _predict_on_worker(work: Callable[..., ImageResult], spec: str, name: str
                       ) -> ImageResult:
    """`process_image` as a Dask task, recording the worker's address."""
    from distributed import get_worker

    return work(spec, name, worker=get_worker().address)

"""``xami predict``: find the artefacts of many images and write the products astronomers use.

Per input image ``NAME`` the run folder gets ``NAME.xami.fits`` (bitmask, instance ids and
instance table, `xami.products`), ``NAME.reg`` (DS9 outlines), ``NAME.png`` (overlay) and
``records/NAME.json`` (the image's entry of ``run.json``, with its COCO results); the run ends by
writing ``predictions.coco.json``, ``manifest.parquet`` (one row per input) and ``run.json`` for
all inputs. Every file is written atomically and the record last, so an image is finished exactly
when its record says ``done`` and its outputs exist: a rerun skips it, and an interrupted run
resumes where it stopped. An image that cannot be read gets a ``failed`` record with a one-line
reason and the run goes on. Images are predicted here or, with a Dask client, by the cluster's
workers, which write into the run folder themselves (`process_image` in both cases).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import hashlib
import io
import itertools
import json
import os
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from xami import __version__
from xami.classes import BY_COCO_ID, CLASSES, ArtefactClass
from xami.data.coco import read_coco
from xami.data.yolo import IMAGE_SUFFIXES
from xami.errors import InputError, NoDetectionsWarning, XamiError
from xami.instrument import RELEASED_SIZE
from xami.io.atomic import atomic_path, write_text_atomic
from xami.io.fits import FITS_SUFFIXES, fits_stem, read_om_image, split_selector
from xami.io.images import read_frame
from xami.models.detector import BUNDLED_DETECTOR
from xami.pipeline import Pipeline, PipelineSpec, cached_pipeline
from xami.preprocess import KEPT_CARDS, flip_wcs_rows, preprocess_image, read_sidecar, rebin_wcs
from xami.products import MaskGrid, write_mask_fits, write_regions
from xami.report.overlay import render_overlay, write_png

if TYPE_CHECKING:
    from distributed import Client

FORMATS: tuple[str, ...] = ("fits", "regions", "coco", "png")
"""Output formats of `run_predict` (``coco`` is the run's ``predictions.coco.json``)."""

MASK_GRIDS: tuple[str, ...] = ("frame", "native")
"""``frame``: masks on the 512 frame the models saw; ``native``: on the input FITS image's grid."""

LOCAL_WORKER = "local"
"""The ``worker`` of images predicted without Dask."""

IN_FLIGHT_PER_THREAD = 4
"""Dask: images submitted and not yet finished per worker thread (enough to keep it busy)."""

_SUFFIX = {"fits": ".xami.fits", "regions": ".reg", "png": ".png"}


@dataclass(frozen=True)
class PredictConfig:
    """What `run_predict` writes.

    Attributes
    ----------
    formats : tuple of str
        Any of `FORMATS`.
    mask_grid : str
        One of `MASK_GRIDS`.
    overwrite : bool
        Redo images whose outputs are complete.
    retry_failed : bool
        Redo images that failed in an earlier run (by default their failure is reported again).
    """

    formats: tuple[str, ...] = FORMATS
    mask_grid: str = "frame"
    overwrite: bool = False
    retry_failed: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown or not self.formats:
            raise InputError(None, f"formats must be among {', '.join(FORMATS)}, got "
                                   f"{', '.join(self.formats) or 'none'}")
        if self.mask_grid not in MASK_GRIDS:
            raise InputError(None, f"mask grid must be one of {MASK_GRIDS}, got "
                                   f"{self.mask_grid!r}")


@dataclass
class RunSummary:
    """The outcome of a prediction run.

    Attributes
    ----------
    records : list of dict
        One ``run.json`` entry per input, in input order.
    seconds : float
        Wall time of the run.
    run_json : pathlib.Path
        The ``run.json`` written.
    metrics : dict or None
        Evaluation metrics when a ground truth was given.
    manifest : pathlib.Path or None
        The manifest written (`write_manifest`).
    """

    records: list[dict[str, Any]]
    seconds: float
    run_json: Path
    metrics: dict[str, Any] | None = None
    manifest: Path | None = None
    failures: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.failures = [r for r in self.records if r["status"] == "failed"]

    def line(self) -> str:
        """One summary line: images, instances per class, failures, seconds per image."""
        counts = Counter(i["class"] for r in self.records for i in r["instances"])
        done = len(self.records) - len(self.failures)
        per_class = " ".join(f"{c.short} {counts[c.name]}" for c in CLASSES)
        timed = [r["seconds"] for r in self.records if r["status"] == "done" and r["seconds"]]
        per_image = f"{np.mean(timed):.2f} s/image" if timed else "no image processed"
        return (f"{len(self.records)} images ({done} done, {len(self.failures)} failed); "
                f"instances: {per_class}; {per_image}")


def expand_inputs(items: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Input files from paths, folders, glob patterns and list files.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Each is a file (FITS, optionally with an ``[HDU]`` selector, or PNG/JPEG), a folder (its
        FITS and image files, sorted, not recursive), a glob pattern (``obs/**/*.FIT``, sorted), or
        a list file ending in ``.txt``/``.lst`` with one path per line (blank lines and ``#``
        comments ignored; relative paths are relative to the list file).

    Returns
    -------
    list of str
        Inputs in order, duplicates dropped. Files that do not exist are kept: they fail later
        with a reason, like any unreadable input.

    Raises
    ------
    xami.errors.InputError
        A glob pattern matches nothing, a folder holds no input file, or a list file is
        unreadable.
    """
    out: list[str] = []
    for item in map(str, items):
        if Path(item).is_dir():
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and _is_input_name(p.name))
            if not found:
                raise InputError(item, "folder holds no FITS or image file")
        elif any(ch in item for ch in "*?[") and not Path(split_selector(item)[0]).exists():
            found = sorted(glob.glob(item, recursive=True))
            if not found:
                raise InputError(item, "pattern matches no file")
        elif item.lower().endswith((".txt", ".lst")):
            found = _read_list(Path(item))
        else:
            found = [item]
        out += [f for f in found if f not in out]
    return out


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


def input_name(spec: str) -> str:
    """Output ``NAME`` of an input: the file name without FITS or image endings."""
    base = Path(split_selector(spec)[0]).name
    if base.lower().endswith(FITS_SUFFIXES):
        return fits_stem(spec)
    return Path(base).stem


def is_fits(spec: str) -> bool:
    """Whether an input spec names a FITS file."""
    return split_selector(spec)[0].lower().endswith(FITS_SUFFIXES)


@dataclass(frozen=True)
class LoadedInput:
    """An input image ready for the models, with what its products need."""

    frame: np.ndarray
    grid: MaskGrid
    cards: dict[str, Any]


def load_input(spec: str, *, mask_grid: str = "frame") -> LoadedInput:
    """Read one input: a FITS image is rebinned and stretched as in ``xami preprocess``.

    A 2048 (or any multiple of 512) FITS image becomes the 512 frame; other FITS sizes are
    stretched at their own size. A PNG/JPEG frame is used as it is, with the WCS and stretch of
    its ``xami preprocess`` sidecar (``NAME.json`` beside it) when there is one.

    Parameters
    ----------
    spec : str
        Input file, FITS optionally with ``[HDU]``.
    mask_grid : str
        One of `MASK_GRIDS` (``native`` only differs from ``frame`` for rebinned FITS inputs).

    Returns
    -------
    LoadedInput
        The ``uint8`` frame, the mask grid and the cards for the FITS product.

    Raises
    ------
    xami.errors.XamiError
        The file cannot be read (the message names the file and the problem).
    """
    if not is_fits(spec):
        frame = read_frame(spec)
        sidecar_path = Path(spec).with_suffix(".json")
        if not sidecar_path.is_file():
            return LoadedInput(frame, MaskGrid(1, None), {"SRCFILE": Path(spec).name})
        sidecar, wcs = read_sidecar(sidecar_path)
        grid_wcs = None if wcs is None else flip_wcs_rows(wcs, frame.shape[0])
        stretch = sidecar.get("stretch", {})
        cards = {"SRCFILE": Path(spec).name, **_stretch_cards(stretch), **sidecar.get("header", {})}
        return LoadedInput(frame, MaskGrid(1, grid_wcs, int(stretch.get("factor", 1))), cards)
    om = read_om_image(spec)
    side = om.data.shape[0]
    frame = preprocess_image(om, size=RELEASED_SIZE if side % RELEASED_SIZE == 0 else side)
    factor = frame.params.factor
    cards = {"SRCFILE": Path(om.path).name, "SRCHDU": str(om.hdu),
             **_stretch_cards(asdict(frame.params)),
             **{k: om.header[k] for k in KEPT_CARDS if k in om.header}}
    if mask_grid == "native":
        grid = MaskGrid(factor, om.wcs, 1)
    else:
        grid = MaskGrid(1, None if om.wcs is None else rebin_wcs(om.wcs, factor), factor)
    return LoadedInput(frame.image, grid, cards)


def _stretch_cards(stretch: dict[str, Any]) -> dict[str, Any]:
    """FITS cards of a stretch's parameters."""
    keys = {"asinh_a": "ASINH_A", "vmin": "ZSVMIN", "vmax": "ZSVMAX", "factor": "REBIN",
            "contrast": "ZSCONTR"}
    return {"STRETCH": "zscale+asinh",
            **{card: stretch[k] for k, card in keys.items() if k in stretch}}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(pipeline: Pipeline | PipelineSpec) -> dict[str, Any]:
    """``run.json`` description of the models and thresholds of a pipeline or its settings."""
    def model(source: str | None) -> dict[str, str] | None:
        if not source:
            return None
        path = Path(source)
        return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else ""}

    if isinstance(pipeline, PipelineSpec):
        sources = (str(pipeline.detector or BUNDLED_DETECTOR), pipeline.segmentor)
        conf = pipeline.conf
    else:
        sources = (pipeline.detector.source, getattr(pipeline.segmentor, "source", None))
        conf = pipeline.detector.config.conf
    return {
        "models": {"detector": model(sources[0]), "segmentor": model(sources[1])},
        "settings": {"conf": conf, "faint_threshold": pipeline.faint_rule.threshold,
                     "streak_fit": pipeline.streak_fit is not None},
    }


def _provenance_cards(prov: dict[str, Any]) -> dict[str, Any]:
    """Primary-header cards of a run's provenance."""
    cards: dict[str, Any] = {"XAMIVER": (__version__, "xami version")}
    for key, name in (("DET", "detector"), ("SEG", "segmentor")):
        model = prov["models"][name]
        if model:
            cards[f"{key}FILE"] = (Path(model["path"]).name, f"{name} weights")
            cards[f"{key}SHA"] = model["sha256"]  # 64 hex digits: no room for a comment
    settings = prov["settings"]
    cards["CONF"] = (settings["conf"], "detector confidence threshold")
    cards["FAINTTHR"] = (settings["faint_threshold"], "faint-rule threshold")
    cards["STRKFIT"] = (settings["streak_fit"], "read-out streaks fitted to columns")
    return cards


def _outputs(name: str, formats: Sequence[str]) -> dict[str, str]:
    """Per-image output file names (relative to the run folder) of the requested formats."""
    return {f: name + _SUFFIX[f] for f in formats if f in _SUFFIX}


def _finished(record: dict[str, Any] | None, spec: str, out_dir: Path,
              config: PredictConfig) -> bool:
    """Whether an earlier record can stand for this input in this run."""
    if record is None or config.overwrite or record.get("input") != spec:
        return False
    if record["status"] == "failed":
        return not config.retry_failed
    wanted = _outputs(record["name"], config.formats)
    return (record.get("outputs") == wanted
            and all((out_dir / rel).is_file() for rel in wanted.values()))


def _read_record(path: Path) -> dict[str, Any] | None:
    """An earlier run's record, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def predict_image(spec: str, name: str, pipeline: Pipeline, out_dir: Path,
                  config: PredictConfig, cards: dict[str, Any]) -> dict[str, Any]:
    """Predict one input and write its products; returns its record (not yet written).

    Raises
    ------
    xami.errors.XamiError, OSError, ValueError
        The input cannot be read or a product cannot be written.
    """
    start = time.perf_counter()
    outputs = _outputs(name, config.formats)
    for rel in outputs.values():
        if (out_dir / rel).resolve() == Path(split_selector(spec)[0]).resolve():
            raise InputError(spec, f"output {rel} would overwrite the input")
    loaded = load_input(spec, mask_grid=config.mask_grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        found = pipeline.predict(loaded.frame)
    if "fits" in outputs:
        write_mask_fits(out_dir / outputs["fits"], found, loaded.grid,
                        cards={**cards, **loaded.cards})
    if "regions" in outputs:
        write_regions(out_dir / outputs["regions"], found, loaded.grid)
    if "png" in outputs:
        write_png(render_overlay(loaded.frame, found.masks, found.labels, found.scores),
                  out_dir / outputs["png"])
    instances = [{"id": i + 1, "class": BY_COCO_ID[int(label)].name, "score": float(score),
                  "bbox": [float(v) for v in box], "area": int(mask.sum())}
                 for i, (box, mask, label, score) in enumerate(
                     zip(found.boxes, found.masks, found.labels, found.scores, strict=True))]
    coco = [{k: v for k, v in entry.items() if k != "image_id"} for entry in found.to_coco(0)]
    return {"input": spec, "name": name, "status": "done", "reason": None,
            "seconds": time.perf_counter() - start, "outputs": outputs,
            "instances": instances, "coco": coco}


def process_image(spec: str, name: str, pipeline: Pipeline | PipelineSpec, out_dir: Path,
                  config: PredictConfig, cards: dict[str, Any], *,
                  worker: str = LOCAL_WORKER) -> dict[str, Any]:
    """Predict one input unless an earlier record stands for it; write its record last.

    What every run does per image, locally or as a Dask task. It is idempotent: a task redone
    after its worker died returns the record the first attempt completed.

    Parameters
    ----------
    spec, name : str
        Input file and its output ``NAME`` (`input_name`).
    pipeline : Pipeline or PipelineSpec
        The models, or their settings (built once per process and thread, `cached_pipeline`,
        and only when the image needs predicting).
    out_dir : pathlib.Path
        Run folder (its ``records`` folder exists).
    config : PredictConfig
        What to write.
    cards : dict
        Provenance cards of the FITS product.
    worker : str
        Who predicts it, kept in the record (a Dask worker's address).

    Returns
    -------
    dict
        The record, as written to ``records/NAME.json``.

    Raises
    ------
    xami.errors.CheckpointError
        The models cannot be built (the image itself is not marked failed).
    """
    record = _read_record(out_dir / "records" / f"{name}.json")
    if _finished(record, spec, out_dir, config):
        return record
    model = pipeline if isinstance(pipeline, Pipeline) else cached_pipeline(pipeline)
    try:
        record = predict_image(spec, name, model, out_dir, config, cards)
    except (XamiError, OSError, ValueError) as err:
        record = _failed(spec, name, _reason(spec, err))
    record["worker"] = worker
    _write_record(out_dir, record)
    return record


def _write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Write ``records/NAME.json``: the last file of an image, which marks it finished."""
    write_text_atomic(out_dir / "records" / f"{record['name']}.json", json.dumps(record) + "\n")


def run_predict(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                pipeline: Pipeline | PipelineSpec, config: PredictConfig = PredictConfig(),
                gt: str | os.PathLike[str] | None = None, progress: bool = True,
                client: Client | None = None, in_flight: int | None = None) -> RunSummary:
    """Predict every input and write the products, resumably, here or on a Dask cluster.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Files, folders, glob patterns and list files (`expand_inputs`); made absolute.
    out_dir : str or os.PathLike
        Run folder (created). With ``client`` the workers write into it: it must lie on a
        filesystem that they and this process share, at the same path.
    pipeline : Pipeline or PipelineSpec
        The models, or their settings (a Dask run needs the settings: each worker builds the
        models once and reuses them).
    config : PredictConfig
        Formats, mask grid, overwrite and retry behaviour.
    gt : str or os.PathLike, optional
        Ground-truth COCO file: COCO ``image_id`` values are taken from it by file name (without
        extension) and the run is evaluated against it (``metrics.json``, ``table3.md``, plots).
    progress : bool
        Show a progress bar.
    client : distributed.Client, optional
        Run on this Dask cluster (`dask_client`); None runs here, one image after the other.
    in_flight : int, optional
        Dask: the most images submitted and not yet finished (default: 4 per worker thread,
        following the cluster as workers join; set it for an adaptive cluster, which only grows
        with the work it sees).

    Returns
    -------
    RunSummary
        Records, failures, ``manifest.parquet`` (``manifest.csv`` without pyarrow) and (with
        ``gt``) metrics.

    Raises
    ------
    xami.errors.InputError
        No input was given, a folder/pattern/list file is unusable, ``in_flight`` is not
        positive, or a Dask run was given a `Pipeline` (nothing is written).
    xami.errors.CheckpointError
        The models cannot be built; the images finished so far are kept.

    Examples
    --------
    >>> from xami.pipeline import PipelineSpec
    >>> with dask_client(workers=4) as client:  # doctest: +SKIP
    ...     summary = run_predict(["obs/*.FIT"], "run", pipeline=PipelineSpec(), client=client)
    """
    start = time.perf_counter()
    specs = [os.path.abspath(s) for s in expand_inputs(inputs)]
    if not specs:
        raise InputError(None, "no input image given")
    if client is not None and isinstance(pipeline, Pipeline):
        raise InputError(None, "a Dask run takes the pipeline's settings (PipelineSpec), "
                               "not its models")
    if in_flight is not None and in_flight < 1:
        raise InputError(None, f"in_flight must be a positive integer, got {in_flight!r}")
    gt_ids = None if gt is None else {Path(r.file_name).stem: r.image_id for r in read_coco(gt)}
    out = Path(os.path.abspath(out_dir))
    (out / "records").mkdir(parents=True, exist_ok=True)
    prov = provenance(pipeline)
    work = functools.partial(process_image, pipeline=pipeline, out_dir=out, config=config,
                             cards=_provenance_cards(prov))
    records, todo = _plan(specs)
    results = (((i, work(spec, name)) for i, spec, name in todo) if client is None
               else _dask_results(client, work, todo, out, in_flight))
    with tqdm(total=len(todo), desc="predict", unit="image",
              disable=not progress or None) as bar:
        for i, record in results:
            records[i] = record
            bar.update()
    return _assemble(records, out, prov, config, gt, gt_ids, start)


def _plan(specs: list[str]) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
    """Records of inputs whose output name is taken, and (index, spec, name) of the others."""
    records: list[dict[str, Any]] = [{} for _ in specs]
    todo: list[tuple[int, str, str]] = []
    names: dict[str, str] = {}
    for i, spec in enumerate(specs):
        name = input_name(spec)
        if name in names:
            records[i] = _failed(spec, name, f"output name {name!r} already used by {names[name]}")
        else:
            names[name] = spec
            todo.append((i, spec, name))
    return records, todo


def _assemble(records: list[dict[str, Any]], out: Path, prov: dict[str, Any],
              config: PredictConfig, gt: str | os.PathLike[str] | None,
              gt_ids: dict[str, int] | None, start: float) -> RunSummary:
    """Write the run's files from all records: COCO results, metrics, manifest, ``run.json``."""
    _remove_orphans(out)
    metrics = None
    if "coco" in config.formats or gt is not None:
        coco = _coco_results(records, gt_ids)
        write_text_atomic(out / "predictions.coco.json", json.dumps(coco) + "\n")
        if gt is not None:
            from xami.eval.metrics import evaluate
            metrics = evaluate(gt, out / "predictions.coco.json", out,
                               conf=prov["settings"]["conf"])
    manifest = write_manifest(records, out)
    summary = RunSummary(records, time.perf_counter() - start, out / "run.json", metrics,
                         manifest)
    write_text_atomic(out / "run.json", json.dumps(_run_json(summary, prov), indent=1) + "\n")
    return summary


def _remove_orphans(out: Path) -> None:
    """Remove the temporary files of writes a killed process left (every image is finished)."""
    for folder in (out, out / "records"):
        for orphan in folder.glob(".*.tmp"):
            orphan.unlink(missing_ok=True)


def _failed(spec: str, name: str, reason: str) -> dict[str, Any]:
    """The record of an input that failed."""
    return {"input": spec, "name": name, "status": "failed", "reason": reason, "seconds": 0.0,
            "outputs": {}, "instances": [], "coco": [], "worker": None}


def _reason(spec: str, err: Exception) -> str:
    """One line naming the input and the problem."""
    text = str(err) if isinstance(err, XamiError) else f"{spec}: {err}"
    return " ".join(text.split())


# --------------------------------------------------------------------------- Dask
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
    from distributed import Client, LocalCluster

    if workers is not None and (address is not None or workers < 1):
        raise InputError(None, f"workers must be a positive integer, for a local cluster (no "
                               f"address); got workers={workers!r}, address={address!r}")
    if address is not None:
        with Client(address) as client:
            yield client
        return
    with (LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                       processes=True, dashboard_address=dashboard_address) as cluster,
          Client(cluster) as client):
        yield client


def _dask_results(client: Client, work: Callable[..., dict[str, Any]],
                  todo: list[tuple[int, str, str]], out: Path, in_flight: int | None
                  ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, record) of each image as the cluster finishes it, submitted in bounded batches."""
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
                record = _failed(spec, name, f"{spec}: the Dask workers predicting it died "
                                             f"(crash or out of memory?)")
                _write_record(out, record)
            if len(tasks) <= limit // 2:
                top_up()
            yield i, record
    finally:  # any other task error stops the run
        client.cancel(list(running.futures))


def _predict_on_worker(work: Callable[..., dict[str, Any]], spec: str, name: str
                       ) -> dict[str, Any]:
    """`process_image` as a Dask task, recording the worker's address."""
    from distributed import get_worker

    return work(spec, name, worker=get_worker().address)


# --------------------------------------------------------------------------- run files
def write_manifest(records: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> Path:
    """Write the run manifest: one row per input, as Parquet (CSV when pyarrow is absent).

    Columns: ``input``, ``name``, ``status`` (``done`` or ``failed``), ``reason`` (of a
    failure), ``n_<class>`` (instances of each class, ``-`` as ``_``), ``seconds``, ``worker``
    (``local`` or a Dask worker's address), and ``fits``, ``regions``, ``png`` (output files
    relative to the run folder; empty when not written).

    Parameters
    ----------
    records : sequence of dict
        The run's records (`RunSummary.records`).
    out_dir : str or os.PathLike
        Run folder.

    Returns
    -------
    pathlib.Path
        ``out_dir/manifest.parquet`` or ``out_dir/manifest.csv``.
    """
    rows = [_manifest_row(record) for record in records]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        path = Path(out_dir) / "manifest.csv"
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(path, text.getvalue())
        return path
    types = {"seconds": pa.float64(), **{_count_column(c): pa.int64() for c in CLASSES}}
    schema = pa.schema([(key, types.get(key, pa.string())) for key in rows[0]])
    path = Path(out_dir) / "manifest.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    return path


def _count_column(cls: ArtefactClass) -> str:
    """Manifest column of a class's instance count."""
    return "n_" + cls.name.replace("-", "_")


def _manifest_row(record: dict[str, Any]) -> dict[str, Any]:
    """The manifest row of one record."""
    counts = Counter(i["class"] for i in record["instances"])
    return {"input": record["input"], "name": record["name"], "status": record["status"],
            "reason": record["reason"], **{_count_column(c): counts[c.name] for c in CLASSES},
            "seconds": record["seconds"], "worker": record.get("worker"),
            **{f: record["outputs"].get(f) for f in _SUFFIX}}


def _coco_results(records: list[dict[str, Any]], gt_ids: dict[str, int] | None
                  ) -> list[dict[str, Any]]:
    """COCO results of all records, image ids from the ground truth by name (else 1..N)."""
    ids = gt_ids or {r["name"]: i for i, r in enumerate(records, start=1)}
    results = []
    for record in records:
        if record["name"] in ids:
            results += [{"image_id": ids[record["name"]], **entry} for entry in record["coco"]]
    return results


def _run_json(summary: RunSummary, prov: dict[str, Any]) -> dict[str, Any]:
    """The ``run.json`` document."""
    counts = Counter(i["class"] for r in summary.records for i in r["instances"])
    done = [r for r in summary.records if r["status"] == "done"]
    return {
        "xami_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["xami", *sys.argv[1:]]) if sys.argv else "",
        **prov,
        "images": [{k: v for k, v in r.items() if k != "coco"} for r in summary.records],
        "summary": {"images": len(summary.records), "done": len(done),
                    "failed": len(summary.failures),
                    "instances": {c.name: counts[c.name] for c in CLASSES},
                    "seconds_per_image": float(np.mean([r["seconds"] for r in done]))
                    if done else None},
    }

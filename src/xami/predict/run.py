"""Running ``xami predict``: one image (`process_image`) and a whole run (`run_predict`).

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

import functools
import json
import os
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from xami import __version__
from xami.classes import BY_COCO_ID, CLASSES
from xami.data.coco import read_coco
from xami.errors import InputError, NoDetectionsWarning, UsageError, XamiError
from xami.io.atomic import file_sha256, write_text_atomic
from xami.io.fits import fits_stem, split_selector
from xami.models.detector import BUNDLED_DETECTOR
from xami.pipeline import Pipeline, PipelineSpec, cached_pipeline
from xami.predict.cluster import _dask_results
from xami.predict.inputs import MASK_GRIDS, expand_inputs, load_input
from xami.predict.records import (
    FORMATS,
    LOCAL_WORKER,
    _failed,
    _outputs,
    _read_record,
    _reason,
    _write_record,
    write_manifest,
)
from xami.products import write_mask_fits, write_regions
from xami.report.overlay import render_overlay, write_png

if TYPE_CHECKING:
    from distributed import Client


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
            raise UsageError(None, f"formats must be among {', '.join(FORMATS)}, got "
                                   f"{', '.join(self.formats) or 'none'}")
        if self.mask_grid not in MASK_GRIDS:
            raise UsageError(None, f"mask grid must be one of {MASK_GRIDS}, got "
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

    def instance_counts(self) -> dict[str, int]:
        """Instances found per class name, every class listed."""
        counts = Counter(i["class"] for r in self.records for i in r["instances"])
        return {c.name: counts[c.name] for c in CLASSES}

    def seconds_per_image(self) -> float | None:
        """Mean seconds of the images done (None when none is)."""
        done = [r["seconds"] for r in self.records if r["status"] == "done"]
        return float(np.mean(done)) if done else None

    def line(self) -> str:
        """One summary line: images, instances per class, failures, seconds per image."""
        counts = self.instance_counts()
        done = len(self.records) - len(self.failures)
        per_class = " ".join(f"{c.short} {counts[c.name]}" for c in CLASSES)
        seconds = self.seconds_per_image()
        per_image = "no image processed" if seconds is None else f"{seconds:.2f} s/image"
        return (f"{len(self.records)} images ({done} done, {len(self.failures)} failed); "
                f"instances: {per_class}; {per_image}")


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
        Input file and its output ``NAME`` (`xami.io.fits.fits_stem`).
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
        raise UsageError(None, f"in_flight must be a positive integer, got {in_flight!r}")
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
        name = fits_stem(spec)
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
    return {
        "xami_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["xami", *sys.argv[1:]]) if sys.argv else "",
        **prov,
        "images": [{k: v for k, v in r.items() if k != "coco"} for r in summary.records],
        "summary": {"images": len(summary.records),
                    "done": len(summary.records) - len(summary.failures),
                    "failed": len(summary.failures), "instances": summary.instance_counts(),
                    "seconds_per_image": summary.seconds_per_image()},
    }

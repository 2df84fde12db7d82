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

import contextlib
import functools
import json
import os
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from xami import __version__
from xami.classes import BY_COCO_ID, CLASSES
from xami.data.coco import read_coco
from xami.errors import InputError, NoDetectionsWarning, OutputError, UsageError, XamiError
from xami.io.atomic import tagged_temp_files, write_text_atomic
from xami.io.fits import output_stem, split_selector
from xami.io.frames import MASK_GRIDS, load_input
from xami.pipeline import Pipeline, PipelineSpec, cached_pipeline
from xami.predict.cluster import _dask_results
from xami.predict.inputs import FoundInput, find_inputs
from xami.predict.provenance import _provenance_cards, provenance
from xami.predict.records import (
    FORMATS,
    LOCAL_WORKER,
    _failed,
    _outputs,
    _read_record,
    _reason,
    _retry_hint,
    _write_record,
    coco_image_ids,
    write_manifest,
)
from xami.predict.resume import input_sha256, redo_reason, redone_line, settings_sha256
from xami.predict.runfolder import (
    hold_run_folder,
    output_failure,
    same_file,
    writing,
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
    gt_unmatched : list of str
        Names of the inputs that the ground truth lacks (their predictions are kept with image
        ids of their own, and not evaluated; a `xami.errors.GroundTruthWarning` names them).
    """

    records: list[dict[str, Any]]
    seconds: float
    run_json: Path
    metrics: dict[str, Any] | None = None
    manifest: Path | None = None
    gt_unmatched: list[str] = field(default_factory=list)
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
        """One summary line: images, instances per class, failures, seconds per image, and
        how many were redone and why."""
        counts = self.instance_counts()
        done = len(self.records) - len(self.failures)
        per_class = " ".join(f"{c.short} {counts[c.name]}" for c in CLASSES)
        seconds = self.seconds_per_image()
        per_image = "no image processed" if seconds is None else f"{seconds:.2f} s/image"
        output = sum(r.get("fault") == "output" for r in self.failures)
        failed = f"{len(self.failures)} failed" + (f", {output} writing outputs" if output else "")
        redone = redone_line(self.records)
        return (f"{len(self.records)} images ({done} done, {failed}); "
                f"instances: {per_class}; {per_image}" + (f"; {redone}" if redone else ""))


def predict_image(spec: str, name: str, pipeline: Pipeline, out_dir: Path,
                  config: PredictConfig, cards: dict[str, Any]) -> dict[str, Any]:
    """Predict one input and write its products; returns its record (not yet written).

    Raises
    ------
    xami.errors.OutputError
        A product cannot be written (not the input's fault).
    xami.errors.XamiError, OSError, ValueError
        The input cannot be read.
    """
    start = time.perf_counter()
    outputs = _outputs(name, config.formats)
    for rel in outputs.values():
        if same_file(out_dir / rel, split_selector(spec)[0]):
            raise InputError(spec, f"output {rel} would overwrite the input")
    loaded = load_input(spec, mask_grid=config.mask_grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        found = pipeline.predict(loaded.frame)
    if "fits" in outputs:
        with writing(out_dir / outputs["fits"]):
            write_mask_fits(out_dir / outputs["fits"], found, loaded.grid,
                            cards={**cards, **loaded.cards})
    if "regions" in outputs:
        with writing(out_dir / outputs["regions"]):
            write_regions(out_dir / outputs["regions"], found, loaded.grid)
    if "png" in outputs:
        overlay = render_overlay(loaded.frame, found.masks, found.labels, found.scores)
        with writing(out_dir / outputs["png"]):
            write_png(overlay, out_dir / outputs["png"])
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
                  worker: str = LOCAL_WORKER, settings: str = "",
                  run_id: str | None = None) -> dict[str, Any]:
    """Predict one input unless an earlier record stands for it; write its record last.

    What every run does per image, locally or as a Dask task. It is idempotent: a task redone
    after its worker died returns the record the first attempt completed. An earlier record
    stands only for the same input content and settings (`xami.predict.resume`); a redone
    image's record says why (``redone``). An output that cannot be written fails the image
    for this run only: no record is written, so the next run redoes it.

    Parameters
    ----------
    spec, name : str
        Input file and its output ``NAME`` (`xami.io.fits.output_stem`).
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
    settings : str
        SHA-256 of the settings that shape the outputs (`xami.predict.resume.settings_sha256`).
    run_id : str, optional
        The run's id, put in the names of its temporary files
        (`xami.io.atomic.tagged_temp_files`).

    Returns
    -------
    dict
        The record, as written to ``records/NAME.json`` (``fault: output`` when an output
        could not be written, and then not written).

    Raises
    ------
    xami.errors.CheckpointError
        The models cannot be built (the image itself is not marked failed).
    """
    key = {"input_sha256": input_sha256(spec), "settings_sha256": settings}
    earlier = _read_record(out_dir / "records" / f"{name}.json")
    why = redo_reason(earlier, spec, key, out_dir, config)
    if earlier is not None and why is None:
        return {**earlier, "redone": None, **_retry_hint(earlier)}
    model = pipeline if isinstance(pipeline, Pipeline) else cached_pipeline(pipeline)
    with contextlib.ExitStack() as stack:
        if run_id is not None:
            stack.enter_context(tagged_temp_files(run_id))
        try:
            record = {**_attempt(spec, name, model, out_dir, config, cards), "worker": worker,
                      "redone": why or None, **key}
            with writing(out_dir / "records" / f"{name}.json"):
                _write_record(out_dir, record)
        except OutputError as err:
            record = {**_failed(spec, name, output_failure(spec, err)), "worker": worker,
                      "fault": "output"}
    return record


def _attempt(spec: str, name: str, pipeline: Pipeline, out_dir: Path, config: PredictConfig,
             cards: dict[str, Any]) -> dict[str, Any]:
    """`predict_image`, or the failed record of an input that cannot be read."""
    try:
        return predict_image(spec, name, pipeline, out_dir, config, cards)
    except OutputError:
        raise
    except (XamiError, OSError, ValueError) as err:
        return _failed(spec, name, _reason(spec, err))


def run_predict(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                pipeline: Pipeline | PipelineSpec, config: PredictConfig = PredictConfig(),
                gt: str | os.PathLike[str] | None = None, progress: bool = True,
                client: Client | None = None, in_flight: int | None = None) -> RunSummary:
    """Predict every input and write the products, resumably, here or on a Dask cluster.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Files, folders, glob patterns and list files (`find_inputs`: never xami's own
        products); made absolute.
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
        Inputs it lacks keep their predictions, with image ids after its largest, and are not
        evaluated (a `xami.errors.GroundTruthWarning` names them; no evaluation when none
        matches).
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
        No input was given, ``in_flight`` is not positive, or a Dask run was given a
        `Pipeline` (nothing is written). An input that cannot be used (a pattern or folder
        that yields no file, a symbolic link loop...) is a failed image, not an error.
    xami.errors.UsageError
        ``out_dir`` is a file or cannot be created or written (nothing is written).
    xami.errors.OutputError
        A run file (``run.json``, manifest, COCO results) cannot be written.
    xami.errors.CheckpointError
        The models cannot be built; the images finished so far are kept.

    Examples
    --------
    >>> from xami.pipeline import PipelineSpec
    >>> with dask_client(workers=4) as client:  # doctest: +SKIP
    ...     summary = run_predict(["obs/*.FIT"], "run", pipeline=PipelineSpec(), client=client)
    """
    start = time.perf_counter()
    out = Path(os.path.abspath(out_dir))
    found = [FoundInput(os.path.abspath(f.spec), f.problem) for f in find_inputs(inputs, out=out)]
    if not found:
        raise InputError(None, "no input image given")
    if client is not None and isinstance(pipeline, Pipeline):
        raise InputError(None, "a Dask run takes the pipeline's settings (PipelineSpec), "
                               "not its models")
    if in_flight is not None and in_flight < 1:
        raise UsageError(None, f"in_flight must be a positive integer, got {in_flight!r}")
    gt_ids = None if gt is None else {Path(r.file_name).stem: r.image_id for r in read_coco(gt)}
    prov = provenance(pipeline)
    with hold_run_folder(out) as run_id:
        work = functools.partial(process_image, pipeline=pipeline, out_dir=out, config=config,
                                 cards=_provenance_cards(prov), run_id=run_id,
                                 settings=settings_sha256(prov, config))
        records, todo = _plan(found)
        results = (((i, work(spec, name)) for i, spec, name in todo) if client is None
                   else _dask_results(client, work, todo, out, in_flight))
        with tqdm(total=len(todo), desc="predict", unit="image",
                  disable=not progress or None) as bar:
            for i, record in results:
                records[i] = record
                bar.update()
        with writing(out):
            return _assemble(records, out, prov, config, gt, gt_ids, start)


def _plan(found: list[FoundInput]) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
    """Records of unusable inputs and of those whose output name is taken, and (index, spec,
    name) of the others."""
    records: list[dict[str, Any]] = [{} for _ in found]
    todo: list[tuple[int, str, str]] = []
    names: dict[str, str] = {}
    for i, (spec, problem) in enumerate((f.spec, f.problem) for f in found):
        name = output_stem(spec)
        if problem is not None:
            records[i] = _failed(spec, name, str(InputError(spec, problem)))
        elif name in names:
            records[i] = _failed(spec, name, f"output name {name!r} already used by {names[name]}")
        else:
            names[name] = spec
            todo.append((i, spec, name))
    return records, todo


def _assemble(records: list[dict[str, Any]], out: Path, prov: dict[str, Any],
              config: PredictConfig, gt: str | os.PathLike[str] | None,
              gt_ids: dict[str, int] | None, start: float) -> RunSummary:
    """Write the run's files from all records: COCO results, metrics, manifest, ``run.json``."""
    metrics = None
    unmatched = [r["name"] for r in records if gt_ids is not None and r["name"] not in gt_ids]
    if "coco" in config.formats or gt is not None:
        coco = _coco_results(records, coco_image_ids(records, gt_ids, gt))
        write_text_atomic(out / "predictions.coco.json", json.dumps(coco) + "\n")
        if gt_ids is not None and len(unmatched) < len(records):  # else nothing to evaluate
            from xami.eval.metrics import evaluate
            gt_images = set(gt_ids.values())
            metrics = evaluate(gt, [e for e in coco if e["image_id"] in gt_images], out,
                               conf=prov["settings"]["conf"])
    manifest = write_manifest(records, out)
    summary = RunSummary(records, time.perf_counter() - start, out / "run.json", metrics,
                         manifest, unmatched)
    write_text_atomic(out / "run.json", json.dumps(_run_json(summary, prov), indent=1) + "\n")
    return summary


def _coco_results(records: list[dict[str, Any]], ids: dict[str, int]) -> list[dict[str, Any]]:
    """COCO results of all records, with their image ids (`coco_image_ids`)."""
    return [{"image_id": ids[record["name"]], **entry}
            for record in records for entry in record["coco"]]


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

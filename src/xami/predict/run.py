"""Running ``xami predict`` over many inputs (`run_predict`).

Per input image ``NAME`` the run folder gets ``NAME.xami.fits`` (bitmask, instance ids and
instance table, `xami.products`), ``NAME.reg`` (DS9 outlines), ``NAME.png`` (overlay) and
``records/NAME.json`` (the image's entry of ``run.json``, with its COCO results); the run ends by
writing ``predictions.coco.json``, ``manifest.parquet`` (one row per input) and ``run.json`` for
all inputs. Every file is written atomically and the record last, so an image is finished exactly
when its record says ``done`` and its outputs exist: a rerun skips it, and an interrupted run
resumes where it stopped. An image that cannot be read gets a ``failed`` record with a one-line
reason and the run goes on. Images are predicted here or, with a Dask client, by the cluster's
workers, which write into the run folder themselves (`xami.predict.image.process_image` in both
cases).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from xami import __version__
from xami.data.coco import read_coco
from xami.errors import GroundTruthWarning, InputError, UsageError
from xami.io.atomic import write_text_atomic
from xami.io.fits import output_stem
from xami.pipeline import Pipeline, PipelineSpec
from xami.predict.cluster import dask_results
from xami.predict.config import PredictConfig
from xami.predict.image import process_image
from xami.predict.image_result import FAILED, ImageResult
from xami.predict.inputs import FoundInput, find_inputs
from xami.predict.manifest import write_manifest
from xami.predict.provenance import provenance, provenance_cards
from xami.predict.resume import settings_sha256
from xami.predict.runfolder import hold_run_folder, writing
from xami.predict.summary import RunSummary

if TYPE_CHECKING:
    from distributed import Client


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
    prov = provenance(pipeline.spec if isinstance(pipeline, Pipeline) else pipeline)
    settings = settings_sha256(prov, config)
    with hold_run_folder(out) as run_id:
        work = functools.partial(process_image, pipeline=pipeline, out_dir=out, config=config,
                                 cards=provenance_cards(prov), run_id=run_id, settings=settings)
        records, todo = _plan(found)
        results = (((i, work(spec, name)) for i, spec, name in todo) if client is None
                   else dask_results(client, work, todo, out, in_flight=in_flight,
                                     settings=settings))
        with tqdm(total=len(todo), desc="predict", unit="image",
                  disable=not progress or None) as bar:
            for i, record in results:
                records[i] = record
                bar.update()
        with writing(out):
            return _assemble(records, out, prov, config, gt, gt_ids, start)


def _plan(found: list[FoundInput]) -> tuple[list[ImageResult | None],
                                            list[tuple[int, str, str]]]:
    """Records of unusable inputs and of those whose output name is taken (None for the others),
    and (index, spec, name) of the others, to predict."""
    records: list[ImageResult | None] = [None for _ in found]
    todo: list[tuple[int, str, str]] = []
    names: dict[str, str] = {}
    for i, (spec, problem) in enumerate((f.spec, f.problem) for f in found):
        name = output_stem(spec)
        if problem is not None:
            records[i] = ImageResult(spec, name, FAILED, str(InputError(spec, problem)))
        elif name in names:
            records[i] = ImageResult(spec, name, FAILED,
                                     f"output name {name!r} already used by {names[name]}")
        else:
            names[name] = spec
            todo.append((i, spec, name))
    return records, todo


def _assemble(records: list[ImageResult], out: Path, prov: dict[str, Any],
              config: PredictConfig, gt: str | os.PathLike[str] | None,
              gt_ids: dict[str, int] | None, start: float) -> RunSummary:
    """Write the run's files from all records: COCO results, metrics, manifest, ``run.json``."""
    metrics = None
    unmatched = [r.name for r in records if gt_ids is not None and r.name not in gt_ids]
    if "coco" in config.formats or gt is not None:
        coco = _coco_results(records, coco_image_ids(records, gt_ids, gt))
        write_text_atomic(out / "predictions.coco.json", json.dumps(coco) + "\n")
        if gt_ids is not None and len(unmatched) < len(records):  # else nothing to evaluate
            from xami.eval import evaluate
            from xami.report.evaluation import write_evaluation
            gt_images = set(gt_ids.values())
            evaluation = evaluate(gt, [e for e in coco if e["image_id"] in gt_images],
                                  conf=prov["settings"]["conf"])
            write_evaluation(out, evaluation)
            metrics = evaluation.metrics
    manifest = write_manifest(records, out)
    summary = RunSummary(records, time.perf_counter() - start, out / "run.json", metrics,
                         manifest, unmatched)
    write_text_atomic(out / "run.json", json.dumps(_run_json(summary, prov), indent=1) + "\n")
    return summary


def coco_image_ids(records: Sequence[ImageResult], gt_ids: dict[str, int] | None,
                   gt: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """COCO ``image_id`` of every record's ``name``: the ground truth's, by file name without
    extension, else an id of its own after the ground truth's largest (1..N without one).

    Inputs the ground truth lacks are named in a `xami.errors.GroundTruthWarning`.
    """
    if gt_ids is None:
        return {r.name: i for i, r in enumerate(records, start=1)}
    unmatched = [r.name for r in records if r.name not in gt_ids]
    first = max(gt_ids.values(), default=0) + 1
    ids = {**gt_ids, **{name: i for i, name in enumerate(unmatched, start=first)}}
    if unmatched:
        what = ("no input matches an image of the ground truth" if len(unmatched) == len(records)
                else f"{len(unmatched)} of {len(records)} inputs have no image in the ground truth")
        warnings.warn(f"{what} {gt} (by file name without extension): {', '.join(unmatched)}; "
                      f"their predictions have image ids {first} and up and are not evaluated",
                      GroundTruthWarning, stacklevel=3)
    return ids


def _coco_results(records: list[ImageResult], ids: dict[str, int]) -> list[dict[str, Any]]:
    """COCO results of all records, with their image ids (`coco_image_ids`)."""
    return [{"image_id": ids[record.name], **entry}
            for record in records for entry in record.coco]


def _run_json(summary: RunSummary, prov: dict[str, Any]) -> dict[str, Any]:
    """The ``run.json`` document."""
    return {
        "xami_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["xami", *sys.argv[1:]]) if sys.argv else "",
        **prov,
        "images": [{k: v for k, v in r.to_json().items() if k != "coco"}
                   for r in summary.records],
        "summary": {"images": len(summary.records),
                    "done": len(summary.records) - len(summary.failures),
                    "failed": len(summary.failures), "instances": summary.instance_counts(),
                    "seconds_per_image": summary.seconds_per_image()},
    }

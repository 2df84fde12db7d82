"""One image of ``xami predict``: predicted and its products written (`predict_image`), unless
an earlier record stands for it, then its record written last (`process_image`).

What every run does per image, here or as a Dask task.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from xami.classes import BY_COCO_ID
from xami.errors import InputError, NoDetectionsWarning, OutputError, XamiError, clean_message
from xami.io.atomic import tagged_temp_files
from xami.io.fits import split_selector
from xami.io.frames import load_input
from xami.pipeline import Pipeline, PipelineSpec, cached_pipeline
from xami.predict.config import PredictConfig
from xami.predict.image_result import (
    DONE,
    FAILED,
    LOCAL_WORKER,
    ContentKey,
    ImageResult,
    output_files,
    read_result,
    write_result,
)
from xami.predict.resume import input_sha256, redo_reason
from xami.predict.runfolder import output_failure, same_file, writing
from xami.products import write_mask_fits, write_regions
from xami.report.overlay import render_overlay, write_png


def predict_image(spec: str, name: str, pipeline: Pipeline, out_dir: Path,
                  config: PredictConfig, cards: dict[str, Any]) -> ImageResult:
    """Predict one input and write its products; returns its result (not yet recorded).

    Raises
    ------
    xami.errors.OutputError
        A product cannot be written (not the input's fault).
    xami.errors.XamiError, OSError, ValueError
        The input cannot be read.
    """
    start = time.perf_counter()
    outputs = output_files(name, config.formats)
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
    return ImageResult(spec, name, DONE, None, time.perf_counter() - start, outputs,
                       tuple(instances), tuple(coco))


def process_image(spec: str, name: str, pipeline: Pipeline | PipelineSpec, out_dir: Path,
                  config: PredictConfig, cards: dict[str, Any], *,
                  worker: str = LOCAL_WORKER, settings: str = "",
                  run_id: str | None = None) -> ImageResult:
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
    ImageResult
        The result, as written to ``records/NAME.json`` (``fault="output"`` when an output
        could not be written, and then not written).

    Raises
    ------
    xami.errors.CheckpointError
        The models cannot be built (the image itself is not marked failed).
    """
    key = ContentKey(input_sha256(spec), settings)
    earlier = read_result(out_dir / "records" / f"{name}.json")
    why = redo_reason(earlier, spec, key, out_dir, config)
    if earlier is not None and why is None:
        return earlier.reused()
    model = pipeline if isinstance(pipeline, Pipeline) else cached_pipeline(pipeline)
    with contextlib.ExitStack() as stack:
        if run_id is not None:
            stack.enter_context(tagged_temp_files(run_id))
        try:
            result = replace(_attempt(spec, name, model, out_dir, config, cards), worker=worker,
                             key=key, redone=why or None)
            with writing(out_dir / "records" / f"{name}.json"):
                write_result(out_dir, result)
        except OutputError as err:
            result = ImageResult(spec, name, FAILED, output_failure(spec, err), worker=worker,
                                 fault="output")
    return result


def _attempt(spec: str, name: str, pipeline: Pipeline, out_dir: Path, config: PredictConfig,
             cards: dict[str, Any]) -> ImageResult:
    """`predict_image`, or the failed result of an input that cannot be read."""
    try:
        return predict_image(spec, name, pipeline, out_dir, config, cards)
    except OutputError:
        raise
    except (XamiError, OSError, ValueError) as err:
        return ImageResult(spec, name, FAILED, _reason(spec, err))


def _reason(spec: str, err: Exception) -> str:
    """One line naming the input and the problem."""
    named = isinstance(err, XamiError) and getattr(err, "path", "") is not None
    return clean_message(str(err) if named else f"{spec}: {err}")

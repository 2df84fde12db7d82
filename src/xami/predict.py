"""``xami predict``: find the artefacts of many images and write the products astronomers use.

Per input image ``NAME`` the run folder gets ``NAME.xami.fits`` (bitmask, instance ids and
instance table, `xami.products`), ``NAME.reg`` (DS9 outlines), ``NAME.png`` (overlay) and
``records/NAME.json`` (the image's entry of ``run.json``, with its COCO results); the run ends by
writing ``predictions.coco.json`` and ``run.json`` for all inputs. Every file is written
atomically and the record last, so an image is finished exactly when its record says ``done`` and
its outputs exist: a rerun skips it, and an interrupted run resumes where it stopped. An image that
cannot be read gets a ``failed`` record with a one-line reason and the run goes on.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shlex
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from xami import __version__
from xami.classes import BY_COCO_ID, CLASSES
from xami.data.coco import read_coco
from xami.data.yolo import IMAGE_SUFFIXES
from xami.errors import InputError, NoDetectionsWarning, XamiError
from xami.instrument import RELEASED_SIZE
from xami.io.atomic import write_text_atomic
from xami.io.fits import FITS_SUFFIXES, fits_stem, read_om_image, split_selector
from xami.io.images import read_frame
from xami.pipeline import Pipeline
from xami.preprocess import KEPT_CARDS, flip_wcs_rows, preprocess_image, read_sidecar, rebin_wcs
from xami.products import MaskGrid, write_mask_fits, write_regions
from xami.report.overlay import render_overlay, write_png

FORMATS: tuple[str, ...] = ("fits", "regions", "coco", "png")
"""Output formats of `run_predict` (``coco`` is the run's ``predictions.coco.json``)."""

MASK_GRIDS: tuple[str, ...] = ("frame", "native")
"""``frame``: masks on the 512 frame the models saw; ``native``: on the input FITS image's grid."""

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
    """

    records: list[dict[str, Any]]
    seconds: float
    run_json: Path
    metrics: dict[str, Any] | None = None
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


def provenance(pipeline: Pipeline) -> dict[str, Any]:
    """``run.json`` description of the models and thresholds of a pipeline."""
    def model(source: str | None) -> dict[str, str] | None:
        if not source:
            return None
        path = Path(source)
        return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else ""}

    return {
        "models": {"detector": model(pipeline.detector.source),
                   "segmentor": model(getattr(pipeline.segmentor, "source", None))},
        "settings": {"conf": pipeline.detector.config.conf,
                     "faint_threshold": pipeline.faint_rule.threshold,
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


def run_predict(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                pipeline: Pipeline, config: PredictConfig = PredictConfig(),
                gt: str | os.PathLike[str] | None = None, progress: bool = True) -> RunSummary:
    """Predict every input and write the products, resumably.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Files, folders, glob patterns and list files (`expand_inputs`).
    out_dir : str or os.PathLike
        Run folder (created).
    pipeline : Pipeline
        The models.
    config : PredictConfig
        Formats, mask grid, overwrite and retry behaviour.
    gt : str or os.PathLike, optional
        Ground-truth COCO file: COCO ``image_id`` values are taken from it by file name (without
        extension) and the run is evaluated against it (``metrics.json``, ``table3.md``, plots).
    progress : bool
        Show a progress bar.

    Returns
    -------
    RunSummary
        Records, failures and (with ``gt``) metrics.

    Raises
    ------
    xami.errors.InputError
        No input was given, or a folder/pattern/list file is unusable (nothing is written).
    """
    start = time.perf_counter()
    specs = expand_inputs(inputs)
    if not specs:
        raise InputError(None, "no input image given")
    gt_ids = None if gt is None else {Path(r.file_name).stem: r.image_id for r in read_coco(gt)}
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    prov = provenance(pipeline)
    cards = _provenance_cards(prov)
    records: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for spec in tqdm(specs, desc="predict", unit="image", disable=not progress or None):
        name = input_name(spec)
        record_path = out / "records" / f"{name}.json"
        if name in names:
            record = _failed(spec, name, f"output name {name!r} already used by {names[name]}")
            records.append(record)
            continue
        names[name] = spec
        record = _read_record(record_path)
        if not _finished(record, spec, out, config):
            try:
                record = predict_image(spec, name, pipeline, out, config, cards)
            except (XamiError, OSError, ValueError) as err:
                record = _failed(spec, name, _reason(spec, err))
            write_text_atomic(record_path, json.dumps(record) + "\n")
        records.append(record)
    metrics = None
    if "coco" in config.formats or gt is not None:
        coco = _coco_results(records, gt_ids)
        write_text_atomic(out / "predictions.coco.json", json.dumps(coco) + "\n")
        if gt is not None:
            from xami.eval.metrics import evaluate
            metrics = evaluate(gt, out / "predictions.coco.json", out,
                               conf=pipeline.detector.config.conf)
    seconds = time.perf_counter() - start
    summary = RunSummary(records, seconds, out / "run.json", metrics)
    write_text_atomic(out / "run.json", json.dumps(_run_json(summary, prov), indent=1) + "\n")
    return summary


def _failed(spec: str, name: str, reason: str) -> dict[str, Any]:
    """The record of an input that failed."""
    return {"input": spec, "name": name, "status": "failed", "reason": reason, "seconds": 0.0,
            "outputs": {}, "instances": [], "coco": []}


def _reason(spec: str, err: Exception) -> str:
    """One line naming the input and the problem."""
    text = str(err) if isinstance(err, XamiError) else f"{spec}: {err}"
    return " ".join(text.split())


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

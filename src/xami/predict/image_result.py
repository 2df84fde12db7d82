"""An image's result in a run: its record ``records/NAME.json`` (the resume state; its entry of
``run.json`` without ``coco``) and the names of the output files it lists.

`ImageResult` is written to JSON in one place (`write_result`) and read back in one
(`read_result`); the JSON keys and values are those of every earlier xami version that kept a
content key (``input_sha256`` and ``settings_sha256``), so that a rerun resumes their runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xami.io.atomic import write_text_atomic

FORMATS: tuple[str, ...] = ("fits", "regions", "coco", "png")
"""Output formats of `run_predict` (``coco`` is the run's ``predictions.coco.json``)."""

OUTPUT_SUFFIXES: dict[str, str] = {"fits": ".xami.fits", "regions": ".reg", "png": ".png"}
"""File endings of the per-image outputs by format (``NAME`` + ending)."""

LOCAL_WORKER = "local"
"""The ``worker`` of images predicted without Dask."""

DONE = "done"
FAILED = "failed"


def output_files(name: str, formats: Sequence[str]) -> dict[str, str]:
    """Per-image output file names (relative to the run folder) of the requested formats."""
    return {f: name + OUTPUT_SUFFIXES[f] for f in formats if f in OUTPUT_SUFFIXES}


@dataclass(frozen=True)
class ContentKey:
    """What an image's outputs were made from; a record stands for the image while it holds.

    Attributes
    ----------
    input_sha256 : str or None
        SHA-256 of the input's files (`xami.predict.resume.input_sha256`; None: unreadable).
    settings_sha256 : str
        SHA-256 of the settings that shape the outputs (`xami.predict.resume.settings_sha256`).
    """

    input_sha256: str | None
    settings_sha256: str


@dataclass(frozen=True)
class ImageResult:
    """The outcome of one input of a run, as ``records/NAME.json`` and ``run.json`` hold it.

    Attributes
    ----------
    input : str
        The input file (FITS optionally with ``[HDU]``) or the item as given.
    name : str
        Its output ``NAME`` (`xami.io.fits.output_stem`).
    status : str
        `DONE` or `FAILED`.
    reason : str or None
        One line saying why it failed.
    seconds : float
        Wall time of its prediction (0 when it failed).
    outputs : dict
        Output files by format (`output_files`).
    instances : tuple of dict
        ``id``, ``class`` (name), ``score``, ``bbox`` (XYXY pixels of the frame), ``area``.
    coco : tuple of dict
        COCO results without ``image_id`` (given when the run's ids are known).
    worker : str or None
        Who predicted it: `LOCAL_WORKER` or a Dask worker's address; None when nobody did.
    key : ContentKey or None
        What it was made from; None for an input that was never tried (an unusable item, an
        output name taken, an output that could not be written), whose result is not reused.
    redone : str or None
        Why an earlier record was not reused (`xami.predict.resume.redo_reason`); recorded
        with ``key``.
    fault : str or None
        ``"output"``: an output could not be written (not the input's fault; not recorded).
    """

    input: str
    name: str
    status: str
    reason: str | None
    seconds: float = 0.0
    outputs: Mapping[str, str] = field(default_factory=dict)
    instances: tuple[dict[str, Any], ...] = ()
    coco: tuple[dict[str, Any], ...] = ()
    worker: str | None = None
    key: ContentKey | None = None
    redone: str | None = None
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record's JSON document (keys in the order every xami version writes them)."""
        document = {"input": self.input, "name": self.name, "status": self.status,
                    "reason": self.reason, "seconds": self.seconds,
                    "outputs": dict(self.outputs), "instances": list(self.instances),
                    "coco": list(self.coco), "worker": self.worker}
        if self.key is not None:
            document.update(redone=self.redone, input_sha256=self.key.input_sha256,
                            settings_sha256=self.key.settings_sha256)
        if self.fault is not None:
            document["fault"] = self.fault
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ImageResult:
        """The result a record's JSON document holds (`to_json`'s, or an earlier version's).

        Raises
        ------
        KeyError, TypeError, AttributeError
            The document is not a record.
        """
        key = (ContentKey(document.get("input_sha256"), document["settings_sha256"])
               if "settings_sha256" in document else None)
        return cls(input=document["input"], name=document["name"], status=document["status"],
                   reason=document.get("reason"), seconds=document.get("seconds", 0.0),
                   outputs=dict(document.get("outputs") or {}),
                   instances=tuple(document.get("instances") or ()),
                   coco=tuple(document.get("coco") or ()), worker=document.get("worker"),
                   key=key, redone=document.get("redone"), fault=document.get("fault"))

    def reused(self) -> ImageResult:
        """This earlier result standing for its image in a rerun: not redone, and a failure's
        reason saying how to retry it."""
        if self.status != FAILED:
            return replace(self, redone=None)
        return replace(self, redone=None,
                       reason=f"{self.reason} (failed in an earlier run into this folder; "
                              f"--retry-failed retries it)")


def write_result(out_dir: Path, result: ImageResult) -> None:
    """Write ``records/NAME.json``: the last file of an image, which marks it finished."""
    write_text_atomic(out_dir / "records" / f"{result.name}.json",
                      json.dumps(result.to_json()) + "\n")


def read_result(path: Path) -> ImageResult | None:
    """An earlier run's result, or None when absent or not a record."""
    document = _read_record(path)
    try:
        return None if document is None else ImageResult.from_json(document)
    except (KeyError, TypeError, AttributeError):
        return None


def _read_record(path: Path) -> Any:
    """The JSON of a record file, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

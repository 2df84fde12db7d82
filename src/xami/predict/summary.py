"""The outcome of a prediction run: its results, and the line and counts that sum them up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import CLASSES
from xami.predict.image_result import DONE, FAILED, ImageResult
from xami.predict.resume import redone_line


@dataclass
class RunSummary:
    """The outcome of a prediction run.

    Attributes
    ----------
    records : list of ImageResult
        One result per input, in input order (``run.json``'s ``images``).
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
    failures : list of ImageResult
        The records of the inputs that failed.
    """

    records: list[ImageResult]
    seconds: float
    run_json: Path
    metrics: dict[str, Any] | None = None
    manifest: Path | None = None
    gt_unmatched: list[str] = field(default_factory=list)
    failures: list[ImageResult] = field(init=False)

    def __post_init__(self) -> None:
        self.failures = [r for r in self.records if r.status == FAILED]

    def instance_counts(self) -> dict[str, int]:
        """Instances found per class name, every class listed."""
        counts = Counter(i["class"] for r in self.records for i in r.instances)
        return {c.name: counts[c.name] for c in CLASSES}

    def seconds_per_image(self) -> float | None:
        """Mean seconds of the images done (None when none is)."""
        done = [r.seconds for r in self.records if r.status == DONE]
        return float(np.mean(done)) if done else None

    def line(self) -> str:
        """One summary line: images, instances per class, failures, seconds per image, and
        how many were redone and why."""
        counts = self.instance_counts()
        done = len(self.records) - len(self.failures)
        per_class = " ".join(f"{c.short} {counts[c.name]}" for c in CLASSES)
        seconds = self.seconds_per_image()
        per_image = "no image processed" if seconds is None else f"{seconds:.2f} s/image"
        output = sum(r.fault == "output" for r in self.failures)
        failed = f"{len(self.failures)} failed" + (f", {output} writing outputs" if output else "")
        redone = redone_line(self.records)
        return (f"{len(self.records)} images ({done} done, {failed}); "
                f"instances: {per_class}; {per_image}" + (f"; {redone}" if redone else ""))

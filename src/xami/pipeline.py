"""The XAMI pipeline: detector boxes -> segmentor masks -> the faint rule -> the streak fit ->
the instrument priors."""

from __future__ import annotations

import functools
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.errors import NoDetectionsWarning, UsageError
from xami.io.fits import is_fits_name, read_om_image
from xami.io.images import read_frame
from xami.models.build import DEFAULT_BACKEND, load_detector, load_segmentor
from xami.models.detector import Detector, DetectorConfig
from xami.postprocess import FaintRuleConfig, StreakFitConfig, apply_faint_rule, apply_streak_fit
from xami.preprocess import frame_rebin_factor, preprocess_om_image
from xami.priors import PriorConfig, apply_priors
from xami.structures import Instances

SCORE_DECIMALS = 4
"""Decimals of the scores `Pipeline.predict` returns (and every output holds). Torch's float sums
depend on the thread count: between 1 and 2 threads the detector's scores differ by up to 5e-7
(measured on simulated frames), so 4 decimals make the outputs of a local and a Dask run the
same, except for a score within 5e-7 of a rounding boundary (about 1 in 200)."""

BOX_DECIMALS = 2
"""Decimals (pixels) of the boxes `Pipeline.predict` returns: they differ by up to 3e-5 pixel
between 1 and 2 threads (measured), so about 1 coordinate in 300 still can."""


def read_input_frame(path: str | os.PathLike[str]) -> np.ndarray:
    """The 8-bit frame of an input file: FITS (``[HDU]`` allowed) is preprocessed, PNG/JPEG read.

    FITS images whose side is a multiple of 512 are rebinned to 512 (2048 -> 512 as in the paper);
    square ones of side 64 to 512 are stretched at their own size, others refused
    (`xami.preprocess.frame_rebin_factor`).

    Parameters
    ----------
    path : str or os.PathLike
        A raw or rebinned OM FITS image, or a released-style 8-bit frame.

    Returns
    -------
    numpy.ndarray
        ``uint8 [H, W]``, row 0 at the top.
    """
    if not is_fits_name(path):
        return read_frame(path)
    return preprocess_om_image(read_om_image(path)).image


class Pipeline:
    """Detector, then (optionally) segmentor and the faint rule, the streak fit, the priors.

    Parameters
    ----------
    detector : Detector, optional
        The detector (None: the bundled weights).
    segmentor : Segmentor, optional
        A `xami.models.segmentor.Segmentor`; None runs the detector alone, whose masks are kept.
    conf : float
        Detector confidence threshold (default `DetectorConfig.conf`).
    faint_rule : FaintRuleConfig
        The faint rule applied after the segmentor.
    streak_fit : StreakFitConfig or None
        The read-out-streak column fit (`xami.postprocess.apply_streak_fit`); None keeps the
        model's streak masks.
    priors : PriorConfig or None
        What the instrument knows (`xami.priors.apply_priors`): one central ring at its fixed
        position, smoke rings tied to a parent, streaks on a bright source's column cut to their
        visible part; None switches all of them off.

    Examples
    --------
    >>> pipe = Pipeline(conf=0.2)  # doctest: +SKIP
    >>> instances = pipe.predict("S0743200101_V.jpg")  # doctest: +SKIP
    """

    def __init__(self, detector: Detector | None = None, segmentor: Any | None = None, *,
                 conf: float = DetectorConfig.conf, faint_rule: FaintRuleConfig = FaintRuleConfig(),
                 streak_fit: StreakFitConfig | None = StreakFitConfig(),
                 priors: PriorConfig | None = PriorConfig()) -> None:
        self.detector = detector or load_detector()
        self.conf = conf
        self.segmentor = segmentor
        self.faint_rule = faint_rule
        self.streak_fit = streak_fit
        self.priors = priors

    def predict(self, image_or_path: np.ndarray | str | os.PathLike[str]) -> Instances:
        """Find the artefacts of one image.

        Parameters
        ----------
        image_or_path : numpy.ndarray or str or os.PathLike
            An 8-bit frame (``uint8 [H, W]`` or ``[H, W, 3]``) or a file (FITS, PNG, JPEG).

        Returns
        -------
        Instances
            Masks at the frame's size; with a segmentor, scores are the detector's confidences
            and masks the segmentor's (or the detector's where the faint rule says so);
            read-out streaks are fitted to the frame's columns; then the instrument priors
            adjust scores, classes and streak extents. Scores are rounded to `SCORE_DECIMALS`
            and boxes to `BOX_DECIMALS`, so that outputs do not depend on the thread count. A
            frame without detections is returned empty, with a `NoDetectionsWarning`, priors
            or not.

        Raises
        ------
        xami.errors.InputError
            The frame is not square with a side from 64 to 512 (`xami.preprocess.SIZE_RULE`;
            FITS files are rebinned first), or the file cannot be read.
        """
        frame = (read_input_frame(image_or_path) if isinstance(image_or_path, str | Path)
                 else np.asarray(image_or_path))
        frame_rebin_factor(frame.shape, rebin=False)  # a size the models read, or why not
        detections = self.detector.predict(frame, conf=self.conf)
        if len(detections) == 0:
            warnings.warn("no artefact detected", NoDetectionsWarning, stacklevel=2)
            return detections
        found = detections
        if self.segmentor is not None:
            segmented = self.segmentor.predict(frame, detections.boxes, labels=detections.labels)
            segmented = Instances(segmented.boxes, segmented.masks, detections.labels,
                                  detections.scores)
            found = apply_faint_rule(frame, segmented, detections, config=self.faint_rule)
        if self.streak_fit is not None:
            found = apply_streak_fit(frame, found, config=self.streak_fit)
        if self.priors is not None:
            found = apply_priors(frame, found, config=self.priors)
        return Instances(found.boxes.round(BOX_DECIMALS), found.masks, found.labels,
                         found.scores.round(SCORE_DECIMALS))


@dataclass(frozen=True)
class PipelineSpec:
    """The settings a `Pipeline` is built from: small, hashable and picklable (what Dask sends).

    Model paths are stored absolute, so that workers started in another folder find them; they
    must lie on a filesystem the workers see.

    Attributes
    ----------
    detector : str or os.PathLike, optional
        Detector checkpoint or model yaml (`xami.models.detector.load_detector`); None: the
        bundled weights of the installation that builds the pipeline.
    segmentor : str or os.PathLike, optional
        SAM checkpoint (`xami.models.segmentor.load_segmentor`); None: the detector alone.
    sam_size : int, optional
        Segmentor input side in pixels; None: the checkpoint's (`load_segmentor`).
    backend : str
        ``"torch"`` or ``"onnx"`` (ONNX Runtime, exported once and cached next to the weights),
        for the detector and the segmentor.
    quantize : str, optional
        ``"int8"``: the segmentor's ONNX encoder quantised (``backend="onnx"`` only; see
        `xami.models.segmentor.load_segmentor`).
    conf : float
        Detector confidence threshold (default `DetectorConfig.conf`).
    faint_rule : FaintRuleConfig
        The faint rule applied after the segmentor.
    streak_fit : StreakFitConfig or None
        The read-out-streak column fit; None keeps the model's streak masks.
    priors : PriorConfig or None
        The instrument priors (`xami.priors`); None switches them off.

    Raises
    ------
    xami.errors.InputError
        ``conf`` is not in [0, 1], or ``quantize`` without a segmentor on ONNX Runtime.

    Examples
    --------
    >>> spec = PipelineSpec(conf=0.3)
    >>> spec.detector is None, spec.conf
    (True, 0.3)
    >>> pipe = spec.build()  # doctest: +SKIP
    """

    detector: str | os.PathLike[str] | None = None
    segmentor: str | os.PathLike[str] | None = None
    sam_size: int | None = None
    backend: str = DEFAULT_BACKEND
    quantize: str | None = None
    conf: float = DetectorConfig.conf
    faint_rule: FaintRuleConfig = FaintRuleConfig()
    streak_fit: StreakFitConfig | None = StreakFitConfig()
    priors: PriorConfig | None = PriorConfig()

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise UsageError(None, f"conf must be in [0, 1], got {self.conf!r}")
        if self.quantize is not None and (self.backend != "onnx" or self.segmentor is None):
            raise UsageError(None, "quantize needs a segmentor and backend='onnx', got "
                                   f"segmentor={self.segmentor!r}, backend={self.backend!r}")
        for name in ("detector", "segmentor"):
            path = getattr(self, name)
            if path is not None:  # a frozen dataclass normalises its fields this way
                object.__setattr__(self, name, os.path.abspath(path))

    def build(self) -> Pipeline:
        """Load the models and build the pipeline.

        Returns
        -------
        Pipeline

        Raises
        ------
        xami.errors.CheckpointError
            A model file is missing or cannot be loaded.
        """
        segmentor = None
        if self.segmentor is not None:
            segmentor = load_segmentor(self.segmentor, sam_size=self.sam_size,
                                       backend=self.backend, quantize=self.quantize)
        detector = load_detector(self.detector, backend=self.backend)
        return Pipeline(detector, segmentor, conf=self.conf,
                        faint_rule=self.faint_rule, streak_fit=self.streak_fit,
                        priors=self.priors)


def cached_pipeline(spec: PipelineSpec) -> Pipeline:
    """The pipeline of ``spec``, built on its first use in the calling thread and then reused.

    A Dask worker thus loads the models once, not once per image. The cache is per thread
    because ultralytics models are not safe to share between threads.

    Parameters
    ----------
    spec : PipelineSpec
        The settings.

    Returns
    -------
    Pipeline

    Raises
    ------
    xami.errors.CheckpointError
        A model file is missing or cannot be loaded.
    """
    return _built_pipeline(spec, threading.get_ident())


@functools.lru_cache(maxsize=8)  # one per settings and thread: a few, each tens of MB
def _built_pipeline(spec: PipelineSpec, thread: int) -> Pipeline:
    """The pipeline of ``spec`` for one thread (the thread id is only the cache key)."""
    return spec.build()


def pipeline_loads() -> int:
    """How many times this process has built a pipeline through `cached_pipeline`.

    On a Dask cluster, ``client.run(pipeline_loads)`` gives the count of each worker.

    Returns
    -------
    int
    """
    return _built_pipeline.cache_info().misses

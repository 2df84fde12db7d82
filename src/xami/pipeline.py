"""The XAMI pipeline: detector boxes -> segmentor masks -> the faint rule -> the streak fit ->
the instrument priors."""

from __future__ import annotations

import functools
import os
import threading
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from xami.errors import NoDetectionsWarning, UsageError
from xami.models.build import BACKENDS, DEFAULT_BACKEND, load_detector, load_segmentor
from xami.models.detector import Detector, DetectorConfig
from xami.postprocess import FaintRuleConfig, StreakFitConfig, apply_faint_rule, apply_streak_fit
from xami.preprocess import frame_rebin_factor
from xami.priors import PriorConfig, apply_priors
from xami.structures import Instances

if TYPE_CHECKING:
    from xami.models.box_segmentor import BoxSegmentor

SCORE_DECIMALS = 4
"""Decimals of the scores `Pipeline.predict` returns (and every output holds). Torch's float sums
depend on the thread count: between 1 and 2 threads the detector's scores differ by up to 5e-7
(measured on simulated frames), so 4 decimals make the outputs of a local and a Dask run the
same, except for a score within 5e-7 of a rounding boundary (about 1 in 200)."""

BOX_DECIMALS = 2
"""Decimals (pixels) of the boxes `Pipeline.predict` returns: they differ by up to 3e-5 pixel
between 1 and 2 threads (measured), so about 1 coordinate in 300 still can."""


@dataclass(frozen=True)
class PipelineSpec:
    """The description of a pipeline: small, hashable and picklable (what Dask sends).

    Everything a run states about its models and settings (``run.json``, the FITS cards) is
    read from it (`xami.predict.provenance.provenance`). Model paths are stored absolute, so
    that workers started in another folder find them; they must lie on a filesystem the workers
    see.

    Attributes
    ----------
    detector : str or os.PathLike, optional
        Detector checkpoint or model yaml (`xami.models.build.load_detector`); None: the
        bundled weights of the installation that builds the pipeline.
    segmentor : str or os.PathLike, optional
        SAM checkpoint (`xami.models.build.load_segmentor`); None: the detector alone.
    sam_size : int, optional
        Segmentor input side in pixels; None: the size saved in the checkpoint (`load_segmentor`),
        and recorded as None: a run states the size it was asked for, so that a local and a Dask
        run of one spec record the same without reading the checkpoint.
    backend : str
        ``"torch"`` or ``"onnx"`` (ONNX Runtime, exported once and cached next to the weights),
        for the detector and the segmentor (default `xami.models.build.DEFAULT_BACKEND`).
    quantize : str, optional
        ``"int8"``: the segmentor's ONNX encoder quantised (``backend="onnx"`` only; see
        `xami.models.build.load_segmentor`).
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

    Raises
    ------
    xami.errors.InputError
        ``conf`` is not in [0, 1], ``backend`` not one of `xami.models.build.BACKENDS`, or
        ``quantize`` without a segmentor on ONNX Runtime.

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
        if self.backend not in BACKENDS:
            raise UsageError(None, f"backend must be one of {BACKENDS}, got {self.backend!r}")
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
        return Pipeline(self)


class Pipeline:
    """Detector, then (optionally) segmentor and the faint rule, the streak fit, the priors.

    Parameters
    ----------
    spec : PipelineSpec
        The description: every setting is read from it and the models not given are loaded
        from it.
    detector : Detector, optional
        A built detector, used instead of the spec's.
    segmentor : BoxSegmentor, optional
        A built segmentor (`xami.models.build.load_segmentor`: torch or ONNX), used instead of
        the spec's.

    Attributes
    ----------
    spec : PipelineSpec
        What this pipeline runs: ``spec`` with the ``source`` and ``backend`` of the models
        given (and the ``sam_size`` and ``quantize`` of a segmentor given). The models it
        loads follow that backend.
    detector : Detector
    segmentor : BoxSegmentor or None
        None runs the detector alone, whose masks are kept.

    Raises
    ------
    xami.errors.InputError
        The detector and the segmentor given run on different backends (a spec states one).
    xami.errors.CheckpointError
        A model file of the spec is missing or cannot be loaded.

    Examples
    --------
    >>> pipe = Pipeline(PipelineSpec(conf=0.2))  # doctest: +SKIP
    >>> instances = pipe.predict(frame)  # doctest: +SKIP
    """

    def __init__(self, spec: PipelineSpec = PipelineSpec(), *, detector: Detector | None = None,
                 segmentor: BoxSegmentor | None = None) -> None:
        self.spec = _described(spec, detector, segmentor)
        self.segmentor = segmentor if segmentor is not None else _spec_segmentor(self.spec)
        self.detector = detector or load_detector(self.spec.detector, backend=self.spec.backend)

    def predict(self, frame: np.ndarray) -> Instances:
        """Find the artefacts of one frame.

        Parameters
        ----------
        frame : numpy.ndarray
            An 8-bit frame, ``uint8 [H, W]`` or ``[H, W, 3]``, row 0 at the top. Files (FITS,
            PNG, JPEG) are read into frames by `xami.io.frames.load_input`.

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
        TypeError
            ``frame`` is not a numpy array (a file name, for instance).
        xami.errors.InputError
            The frame is not square with a side from 64 to 512 (`xami.preprocess.SIZE_RULE`).
        """
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a numpy array (uint8 [H, W] or [H, W, 3]), got "
                            f"{type(frame).__name__} {frame!r:.80}; read a file with "
                            f"xami.io.frames.load_input(path).frame")
        frame_rebin_factor(frame.shape, rebin=False)  # a size the models read, or why not
        detections = self.detector.predict(frame, conf=self.spec.conf)
        if len(detections) == 0:
            warnings.warn("no artefact detected", NoDetectionsWarning, stacklevel=2)
            return detections
        found = detections
        spec = self.spec
        if self.segmentor is not None:
            segmented = self.segmentor.predict(frame, detections.boxes, labels=detections.labels)
            segmented = Instances(segmented.boxes, segmented.masks, detections.labels,
                                  detections.scores)
            found = apply_faint_rule(frame, segmented, detections, config=spec.faint_rule)
        if spec.streak_fit is not None:
            found = apply_streak_fit(frame, found, config=spec.streak_fit)
        if spec.priors is not None:
            found = apply_priors(frame, found, config=spec.priors)
        return Instances(found.boxes.round(BOX_DECIMALS), found.masks, found.labels,
                         found.scores.round(SCORE_DECIMALS))


def _described(spec: PipelineSpec, detector: Detector | None,
               segmentor: BoxSegmentor | None) -> PipelineSpec:
    """``spec`` with the files, backend and segmentor settings of the built models given."""
    given = [engine for engine in (detector, segmentor) if engine is not None]
    if len({engine.backend for engine in given}) > 1:
        raise UsageError(None, f"the detector runs on {detector.backend} and the segmentor on "
                               f"{segmentor.backend}: a pipeline runs on one backend")
    changes: dict[str, Any] = {"backend": given[0].backend} if given else {}
    if detector is not None:
        changes["detector"] = detector.source or None
    if segmentor is not None:
        changes.update(segmentor=segmentor.source or None, sam_size=segmentor.config.sam_size,
                       quantize=getattr(segmentor, "quantize", None))
    return replace(spec, **changes)


def _spec_segmentor(spec: PipelineSpec) -> BoxSegmentor | None:
    """The segmentor of ``spec``, or None."""
    if spec.segmentor is None:
        return None
    return load_segmentor(spec.segmentor, sam_size=spec.sam_size, backend=spec.backend,
                          quantize=spec.quantize)


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

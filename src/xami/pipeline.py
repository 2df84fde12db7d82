"""The XAMI pipeline: detector boxes -> segmentor masks -> the faint rule -> the streak fit."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xami.errors import NoDetectionsWarning
from xami.instrument import RELEASED_SIZE
from xami.io.fits import FITS_SUFFIXES, read_om_image
from xami.io.images import read_frame
from xami.models.detector import Detector, load_detector
from xami.postprocess import FaintRuleConfig, StreakFitConfig, apply_faint_rule, apply_streak_fit
from xami.preprocess import preprocess_image
from xami.structures import Instances


def read_input_frame(path: str | os.PathLike[str]) -> np.ndarray:
    """The 8-bit frame of an input file: FITS (``[HDU]`` allowed) is preprocessed, PNG/JPEG read.

    FITS images whose side is a multiple of 512 are rebinned to 512 (2048 -> 512 as in the paper);
    others are stretched at their own size.

    Parameters
    ----------
    path : str or os.PathLike
        A raw or rebinned OM FITS image, or a released-style 8-bit frame.

    Returns
    -------
    numpy.ndarray
        ``uint8 [H, W]``, row 0 at the top.
    """
    name = str(path).split("[", 1)[0].lower()
    if not name.endswith(FITS_SUFFIXES):
        return read_frame(path)
    om = read_om_image(path)
    side = om.data.shape[0]
    return preprocess_image(om, size=RELEASED_SIZE if side % RELEASED_SIZE == 0 else side).image


class Pipeline:
    """Detector, then (optionally) segmentor and the faint rule, then the streak column fit.

    Parameters
    ----------
    detector : Detector, optional
        The detector (None: the bundled weights).
    segmentor : Segmentor, optional
        A `xami.models.segmentor.Segmentor`; None runs the detector alone, whose masks are kept.
    conf : float
        Detector confidence threshold (paper: 0.2).
    faint_rule : FaintRuleConfig
        The faint rule applied after the segmentor.
    streak_fit : StreakFitConfig or None
        The read-out-streak column fit (`xami.postprocess.apply_streak_fit`); None keeps the
        model's streak masks.

    Examples
    --------
    >>> pipe = Pipeline(conf=0.2)  # doctest: +SKIP
    >>> instances = pipe.predict("S0743200101_V.jpg")  # doctest: +SKIP
    """

    def __init__(self, detector: Detector | None = None, segmentor: Any | None = None, *,
                 conf: float = 0.2, faint_rule: FaintRuleConfig = FaintRuleConfig(),
                 streak_fit: StreakFitConfig | None = StreakFitConfig()) -> None:
        self.detector = detector or load_detector()
        self.detector.config = replace(self.detector.config, conf=conf)
        self.segmentor = segmentor
        self.faint_rule = faint_rule
        self.streak_fit = streak_fit

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
            read-out streaks are fitted to the frame's columns.
        """
        frame = (read_input_frame(image_or_path) if isinstance(image_or_path, str | Path)
                 else np.asarray(image_or_path))
        detections = self.detector.predict(frame)
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
        return found

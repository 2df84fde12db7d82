"""Combined stage: the frozen detector's boxes prompt the segmentor, whose decoder trains on them.

Reference notes §6.1: the detector's boxes on each training image (conf 0.25, as the authors'
evaluation) are decoded into masks, the masks are matched one-to-one to the ground truth by the
Hungarian algorithm on mask IoU, and the decoder is trained on the matched pairs; unmatched
predictions and ground truths contribute nothing, and so do images with no detection or no
ground truth (the authors' ``torch.stack([])`` crashed on such a batch; here it takes no step).
Unlike the authors, the focal loss gets logits (not probabilities) and the IoU head is trained
too, with the same `xami.train.losses.segmentor_loss` as the segmentor stage. The detector is
frozen, so its boxes are computed once per run. The loop is `xami.train.loop`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xami.errors import InputError
from xami.eval.matching import hungarian_match, mask_iou_matrix
from xami.models.box_segmentor import SegmentorConfig
from xami.models.build import load_detector
from xami.models.detector import Detector
from xami.models.segmentor import Segmentor
from xami.train.data import Embedder, EmbeddingCache, Sample, make_embedder
from xami.train.loop import ImageLosses, Run, check_loop_config, coerce_nested, fit
from xami.train.losses import LossConfig, LossTerms, segmentor_loss
from xami.train.schedule import ScheduleConfig
from xami.train.segmentor import load_split_samples, run_segmentor


def _constant_lr() -> ScheduleConfig:
    """The authors' combined-stage LR: 3e-5, no schedule."""
    return ScheduleConfig(lr0=3e-5, lr_final=3e-5, decay_steps=0)


@dataclass(frozen=True)
class CombinedTrainConfig:
    """How the combined stage trains the decoder on detector prompts (defaults: authors' code).

    Attributes
    ----------
    epochs : int
        Maximum epochs (paper: 10).
    batch_size : int
        Images per optimiser step (authors: 8).
    schedule : ScheduleConfig
        LR per optimiser step (authors: constant 3e-5).
    weight_decay : float
        AdamW weight decay (paper silent; authors' code: 5e-4).
    patience : int
        Early stopping on the validation loss (authors: 100, i.e. off for 10 epochs; 15 as the
        segmentor stage, which also never triggers within 10 epochs); 0 disables it.
    loss : LossConfig
        Loss weights (20 focal on logits + dice + IoU head; the authors had no IoU term).
    conf : float
        Detector confidence threshold for the prompt boxes (authors: 0.25).
    match_min_iou : float
        Matched pairs with a mask IoU at or below this are dropped (0: any overlap counts).
    sam_size : int
        Segmentor input side in pixels (paper: 1024).
    cache : bool
        Cache the frozen encoder's embeddings on disk.
    cache_dir : str or None
        Cache folder (default ``OUT/embeddings``); share it with the segmentor run to reuse its
        entries (they are keyed by the encoder weights, which this stage does not change).
    max_boxes_per_image : int or None
        Detections per image decoded (the most confident first; None: all, as the authors).
    seed : int
        Seed of the shuffling.
    """

    epochs: int = 10
    batch_size: int = 8
    schedule: ScheduleConfig = field(default_factory=_constant_lr)
    weight_decay: float = 5e-4
    patience: int = 15
    loss: LossConfig = field(default_factory=LossConfig)
    conf: float = 0.25
    match_min_iou: float = 0.0
    sam_size: int = SegmentorConfig.sam_size
    cache: bool = True
    cache_dir: str | None = None
    max_boxes_per_image: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        coerce_nested(self, schedule=ScheduleConfig, loss=LossConfig)
        check_loop_config(self)
        if not 0.0 <= self.conf <= 1.0:
            raise InputError(None, f"conf must be in [0, 1], got {self.conf!r}")

    @property
    def train_encoder(self) -> bool:
        """The combined stage trains the mask decoder only."""
        return False


def detect_boxes(detector: Detector, samples: Sequence[Sample], *, conf: float | None = None,
                 limit: int | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """The detector's boxes on each sample, most confident first.

    Parameters
    ----------
    detector : xami.models.detector.Detector
        The frozen detector.
    samples : sequence of Sample
        The frames.
    conf : float or None
        Minimum box confidence; None: the detector's ``config.conf``.
    limit : int or None
        Keep at most this many boxes per frame.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to numpy.ndarray
        ``float64 [N, 4]`` XYXY boxes in the frame's pixels per ``Sample.key`` (``N`` may be 0).
    """
    boxes = {}
    for sample in tqdm(samples, desc="detector boxes", disable=not progress, leave=False):
        found = detector.predict(sample.frame, conf=conf)
        order = np.argsort(-found.scores, kind="stable")[:limit]
        boxes[sample.key] = found.boxes[order].reshape(-1, 4)
    return boxes


def matched_loss(segmentor: Segmentor, embedding: torch.Tensor, boxes: np.ndarray,
                 sample: Sample, *, config: CombinedTrainConfig) -> LossTerms | None:
    """Loss on the predicted masks matched to the ground truth; None when nothing matches.

    The boxes are decoded, the soft masks (sigmoid of the logits, as the authors) are matched
    to the ground truth by `hungarian_match` on their IoU, and `segmentor_loss` is taken on
    the matched logits and predicted IoUs against the matched ground-truth masks.
    """
    if len(boxes) == 0 or len(sample.masks) == 0:
        return None
    logits, iou_pred = segmentor.decode(embedding, boxes, sample.size)
    soft = torch.sigmoid(logits.detach()).cpu().numpy()
    rows, cols = hungarian_match(mask_iou_matrix(soft, sample.masks),
                                 min_iou=config.match_min_iou)
    if len(rows) == 0:
        return None
    targets = torch.from_numpy(sample.masks[cols]).to(logits.dtype)
    rows_t = torch.from_numpy(rows)
    return segmentor_loss(logits[rows_t], iou_pred[rows_t], targets, config=config.loss)


def _detector_prompt_losses(segmentor: Segmentor, config: CombinedTrainConfig, embed: Embedder,
                            boxes: dict[str, np.ndarray]) -> ImageLosses:
    """Per-image losses of the combined stage (none for an image without detection or match)."""
    def losses(sample: Sample, rng: np.random.Generator | None) -> Iterator[LossTerms]:
        if len(boxes[sample.key]) == 0:
            return
        terms = matched_loss(segmentor, embed(sample.frame, True), boxes[sample.key], sample,
                             config=config)
        if terms is not None:
            yield terms

    return losses


def train_combined(data: str | os.PathLike[str], out: str | os.PathLike[str], *,
                   detector: str | os.PathLike[str] | Detector,
                   segmentor: str | os.PathLike[str] | Segmentor,
                   config: CombinedTrainConfig = CombinedTrainConfig(),
                   resume: bool = False, progress: bool = True) -> Path:
    """Train the segmentor's decoder on the frozen detector's box prompts; the best checkpoint.

    Parameters
    ----------
    data : str or os.PathLike
        A dataset `xami.data.load_dataset` reads, with ``train`` and ``valid`` splits.
    out : str or os.PathLike
        Run folder, laid out as `xami.train.segmentor.train_segmentor`'s.
    detector : str, os.PathLike or Detector
        The trained detector (ultralytics checkpoint or yaml, loaded on torch, or a loaded
        `Detector`); it detects at ``config.conf``.
    segmentor : str, os.PathLike or Segmentor
        The segmentor to start from (e.g. the segmentor stage's ``best.pt``), loaded at
        ``config.sam_size``. Ignored when resuming.
    config : CombinedTrainConfig
        The recipe.
    resume : bool
        Continue the run in ``out`` from ``weights/last.pt``.
    progress : bool
        Show progress bars.

    Returns
    -------
    pathlib.Path
        ``OUT/weights/best.pt``, loadable with `xami.models.build.load_segmentor`.

    Raises
    ------
    xami.errors.DatasetError
        No annotated image in the train or valid split.
    xami.errors.CheckpointError
        An unreadable detector or segmentor, or ``resume`` without a matching ``last.pt``.

    Examples
    --------
    >>> train_combined("sim", "runs/combined", detector="runs/detector/weights/best.pt",
    ...                segmentor="runs/sam/weights/best.pt")  # doctest: +SKIP
    """
    out = Path(out).resolve()
    train, valid = load_split_samples(data)
    if not isinstance(detector, Detector):
        detector = load_detector(detector, backend="torch")
    boxes = detect_boxes(detector, [*train, *valid], conf=config.conf,
                         limit=config.max_boxes_per_image, progress=progress)
    model = run_segmentor(segmentor, out, sam_size=config.sam_size, seed=config.seed,
                          resume=resume)
    cache = EmbeddingCache(config.cache_dir or out / "embeddings", model) if config.cache else None
    embed = make_embedder(model, train_encoder=False, cache=cache)
    run = Run("combined", model, config, _detector_prompt_losses(model, config, embed, boxes),
              train, valid, out, config.batch_size)
    return fit(run, resume=resume, progress=progress)

"""Segmentor training: MobileSAM's mask decoder fine-tuned on ground-truth box prompts.

The paper's recipe (reference notes §4): image encoder and prompt encoder frozen, each
ground-truth instance prompted by the tight box of its mask, multimask output with the mask of
highest predicted IoU kept, loss ``20 focal + dice + IoU-head`` (`xami.train.losses`), AdamW with
the LR decaying 3e-4 -> 6e-5 over the first 16 steps, early stopping on the validation loss.
Frozen-encoder embeddings are computed once and cached on disk (`xami.train.data`). The loop
itself is `xami.train.loop`, shared with the combined stage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xami.data import load_dataset
from xami.errors import DatasetError, InputError
from xami.models.box_segmentor import SegmentorConfig
from xami.models.segmentor import Segmentor, build_segmentor, load_torch_segmentor
from xami.train.augment import AugmentConfig, augment_sample, jitter_boxes
from xami.train.data import Embedder, EmbeddingCache, Sample, load_samples, make_embedder
from xami.train.loop import ImageLosses, Run, check_loop_config, coerce_nested, fit
from xami.train.losses import LossConfig, LossTerms, segmentor_loss
from xami.train.schedule import ScheduleConfig


@dataclass(frozen=True)
class SegmentorTrainConfig:
    """How the segmentor's decoder is fine-tuned (defaults: the paper's recipe).

    Attributes
    ----------
    epochs : int
        Maximum epochs (paper §3 / authors: 60).
    batch_size : int
        Images per optimiser step (paper: 8). The authors' "8" was 4 originals plus one
        augmented copy of each; with ``augment`` this is reproduced (``batch_size / 2``
        originals and their copies), without it the step takes ``batch_size`` originals.
    schedule : ScheduleConfig
        LR as a function of the optimiser step (paper: 3e-4 -> 6e-5 over 16 steps).
    weight_decay : float
        AdamW weight decay (paper: 1e-5; the authors' code used 5e-4).
    patience : int
        Early stopping: epochs without a lower validation loss (paper: 15); 0 disables it.
    loss : LossConfig
        Loss weights and IoU-head loss kind (paper: 20 focal + dice + IoU; MSE, ``"l1"`` as the
        authors' code).
    box_jitter : float
        Sigma of the box-side noise over the box's side (paper: 0, exact boxes).
    augment : bool
        Add one augmented copy of each training image (authors' code: yes; paper: no mention).
    augmentation : AugmentConfig
        The augmentations (authors' probabilities). With only flips and rotations enabled the
        augmented copies' embeddings are cached too (at most 8 variants per image); crops, blur
        and noise make new frames that are re-encoded each time.
    train_encoder : bool
        Train the whole model (image and prompt encoders too), needed when starting from random
        weights; disables the embedding cache. Paper: False.
    sam_size : int
        Model input side in pixels (paper: 1024; 512 is ~6x cheaper on a CPU).
    cache : bool
        Cache the frozen encoder's embeddings on disk (the authors recomputed them each epoch).
    cache_dir : str or None
        Cache folder (default ``OUT/embeddings``); may be shared by runs.
    max_boxes_per_image : int or None
        Prompts per image per step: a random subset when an image has more (None: all, paper).
        Validation takes the first ones.
    seed : int
        Seed of the shuffling, augmentation, jitter and subsets (and of random initial weights).
    """

    epochs: int = 60
    batch_size: int = 8
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    weight_decay: float = 1e-5
    patience: int = 15
    loss: LossConfig = field(default_factory=LossConfig)
    box_jitter: float = 0.0
    augment: bool = False
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    train_encoder: bool = False
    sam_size: int = SegmentorConfig.sam_size
    cache: bool = True
    cache_dir: str | None = None
    max_boxes_per_image: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        coerce_nested(self, schedule=ScheduleConfig, loss=LossConfig, augmentation=AugmentConfig)
        check_loop_config(self)
        if self.augment and self.batch_size % 2:
            raise InputError(None, "batch_size must be even with augment (originals + copies), "
                                   f"got {self.batch_size!r}")
        if self.box_jitter < 0:
            raise InputError(None, f"box_jitter must be >= 0, got {self.box_jitter!r}")

    @property
    def samples_per_step(self) -> int:
        """Original images per optimiser step."""
        return self.batch_size // 2 if self.augment else self.batch_size


def choose_prompts(n: int, limit: int | None, rng: np.random.Generator | None) -> np.ndarray:
    """Indices of the prompts used: all, a random subset of ``limit``, or the first ``limit``."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(rng.choice(n, limit, replace=False)) if rng is not None else np.arange(limit)


def initial_segmentor(init: str | os.PathLike[str] | Segmentor | None, *, sam_size: int,
                      seed: int) -> Segmentor:
    """The segmentor a run starts from: a checkpoint, a given model, or random weights."""
    if isinstance(init, Segmentor):
        if init.config.sam_size != sam_size:
            raise InputError(None, f"init segmentor has sam_size {init.config.sam_size}, "
                                   f"the config asks for {sam_size}")
        return init
    if init is not None:
        return load_torch_segmentor(init, sam_size=sam_size)
    torch.manual_seed(seed)
    return build_segmentor(SegmentorConfig(sam_size=sam_size))


def run_segmentor(init: str | os.PathLike[str] | Segmentor | None, out: Path, *,
                  sam_size: int, seed: int, resume: bool) -> Segmentor:
    """The model to train: from ``OUT/weights/last.pt`` when resuming, else ``init``.

    Loading the resumed weights here (not only in the loop) makes the embedding cache checksum
    the encoder that will actually run.
    """
    last = out / "weights" / "last.pt"
    return initial_segmentor(last if resume and last.is_file() else init,
                             sam_size=sam_size, seed=seed)


def embedding_cache(segmentor: Segmentor, config: SegmentorTrainConfig,
                    out: Path) -> EmbeddingCache | None:
    """The run's embedding cache, or None when the encoder trains or caching is off."""
    if config.train_encoder or not config.cache:
        return None
    return EmbeddingCache(config.cache_dir or out / "embeddings", segmentor)


def _gt_prompt_losses(segmentor: Segmentor, config: SegmentorTrainConfig,
                      embed: Embedder) -> ImageLosses:
    """Per-image losses: the original, then (training, ``augment``) its augmented copy."""
    def prompt_loss(sample: Sample, rng: np.random.Generator | None,
                    cacheable: bool) -> LossTerms:
        keep = choose_prompts(len(sample.masks), config.max_boxes_per_image, rng)
        boxes = sample.boxes[keep]
        if rng is not None:
            boxes = jitter_boxes(boxes, sample.size, config.box_jitter, rng)
        logits, iou_pred = segmentor.decode(embed(sample.frame, cacheable), boxes, sample.size)
        targets = torch.from_numpy(sample.masks[keep]).to(logits.dtype)
        return segmentor_loss(logits, iou_pred, targets, config=config.loss)

    def losses(sample: Sample, rng: np.random.Generator | None) -> Iterator[LossTerms]:
        yield prompt_loss(sample, rng, True)
        if rng is not None and config.augment:
            copy = augment_sample(sample, rng, config.augmentation)
            if len(copy.masks):
                yield prompt_loss(copy, rng, config.augmentation.is_cacheable)

    return losses


def train_segmentor(data: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    config: SegmentorTrainConfig = SegmentorTrainConfig(),
                    init: str | os.PathLike[str] | Segmentor | None = None,
                    resume: bool = False, progress: bool = True) -> Path:
    """Fine-tune the segmentor on ground-truth box prompts; the best checkpoint's path.

    Parameters
    ----------
    data : str or os.PathLike
        A dataset `xami.data.load_dataset` reads, with ``train`` and ``valid`` splits (the
        validation loss drives early stopping and the choice of the best weights).
    out : str or os.PathLike
        Run folder: ``weights/{best,last}.pt``, ``metrics.{csv,json}``, ``xami_config.json``,
        ``embeddings/`` (the cache, unless ``config.cache_dir`` puts it elsewhere).
    config : SegmentorTrainConfig
        The recipe (default: the paper's).
    init : str, os.PathLike, Segmentor or None
        Starting weights: a SAM checkpoint (e.g. ``mobile_sam.pt``) loaded at
        ``config.sam_size``, a `Segmentor`, or None for random weights (then train the encoder
        too: ``train_encoder=True``). Ignored when resuming.
    resume : bool
        Continue the run in ``out`` from ``weights/last.pt`` at the same step, LR and epoch.
    progress : bool
        Show a progress bar per epoch.

    Returns
    -------
    pathlib.Path
        ``OUT/weights/best.pt``, the weights of the epoch with the lowest validation loss,
        loadable with `xami.models.build.load_segmentor`.

    Raises
    ------
    xami.errors.DatasetError
        No annotated image in the train or valid split.
    xami.errors.CheckpointError
        Unreadable ``init``, or ``resume`` without a matching ``last.pt``.

    Examples
    --------
    >>> cfg = SegmentorTrainConfig(sam_size=512, epochs=5)
    >>> train_segmentor("sim", "runs/sam", config=cfg, init="mobile_sam.pt")  # doctest: +SKIP
    """
    out = Path(out).resolve()
    train, valid = load_split_samples(data)
    segmentor = run_segmentor(init, out, sam_size=config.sam_size, seed=config.seed,
                              resume=resume)
    embed = make_embedder(segmentor, train_encoder=config.train_encoder,
                          cache=embedding_cache(segmentor, config, out))
    run = Run("segmentor", segmentor, config, _gt_prompt_losses(segmentor, config, embed),
              train, valid, out, config.samples_per_step)
    return fit(run, resume=resume, progress=progress)


def load_split_samples(data: str | os.PathLike[str]) -> tuple[list[Sample], list[Sample]]:
    """The annotated ``train`` and ``valid`` samples of a dataset, each required non-empty."""
    dataset = load_dataset(data)
    train, valid = load_samples(dataset, "train"), load_samples(dataset, "valid")
    for split, samples in (("train", train), ("valid", valid)):
        if not samples:
            raise DatasetError(data, f"no annotated image in the {split!r} split")
    return train, valid

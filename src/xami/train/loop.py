"""The one plain training loop of the segmentor stages (decoder fine-tuning and combined stage).

What differs between the stages is only the per-image loss, passed in as `ImageLosses`; this
module holds everything else: which parameters train, AdamW with the LR as a pure function of
the optimiser step, one optimiser step per batch with gradients averaged over the images that
gave a loss, validation, early stopping on the validation loss, checkpoints that resume a run,
and the per-epoch CSV/JSON metrics.

A batch holds ``samples_per_step`` training samples; each may yield several image losses (an
original and its augmented copy). Each image's loss is back-propagated at once (its graph is
freed before the next image), and the accumulated gradients are divided by the number of images
that gave a loss, so the step follows the mean image loss. The authors summed over images; AdamW
is invariant to that constant factor (up to its epsilon). A batch where no image gave a loss (no
detection, no match) takes no step, and the step count does not advance.

Run folder: ``weights/last.pt`` (every epoch: model, optimizer, step, epoch, configs, metrics),
``weights/best.pt`` (written when the validation loss improves, so it holds that epoch's weights,
never a later state), ``metrics.csv``, ``metrics.json`` and ``xami_config.json``.
The shuffling and every random draw of epoch ``e`` come from ``numpy.random.default_rng([seed,
e, ...])``, so a resumed run repeats exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from xami import __version__
from xami.errors import CheckpointError, InputError
from xami.io.atomic import atomic_path, write_text_atomic
from xami.models.sam import load_sam_state
from xami.models.segmentor import Segmentor
from xami.train.data import Sample
from xami.train.losses import LossTerms
from xami.train.schedule import ScheduleConfig, set_lr

ImageLosses = Callable[[Sample, "np.random.Generator | None"], Iterator[LossTerms]]
"""``(sample, rng) -> LossTerms`` of each image the sample contributes (none, one or more);
``rng`` is None in validation (no augmentation, no jitter, no random subset)."""

TERMS = ("total", "focal", "dice", "iou")
RESUMABLE_CHANGES = frozenset({"epochs", "patience"})


class LoopConfig(Protocol):
    """The fields of a stage's training config that the loop reads."""

    epochs: int
    batch_size: int
    schedule: ScheduleConfig
    weight_decay: float
    patience: int
    seed: int
    train_encoder: bool
    max_boxes_per_image: int | None


@dataclass
class RunState:
    """Where a run is: optimiser steps taken, epochs completed, metrics of each epoch."""

    step: int = 0
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_epoch(self) -> int | None:
        """The (1-based) epoch with the lowest validation loss, the first one on ties."""
        if not self.history:
            return None
        return min(self.history, key=lambda row: _or_inf(row["valid_total"]))["epoch"]

    def should_stop(self, patience: int) -> bool:
        """True when ``patience`` epochs have passed without improvement (0: never)."""
        best = self.best_epoch
        return patience > 0 and best is not None and self.epoch - best >= patience


@dataclass(frozen=True)
class Run:
    """A stage's run: the model, its loss, its data and where it writes.

    ``kind`` names the stage in the checkpoints (``"segmentor"``, ``"combined"``).
    """

    kind: str
    segmentor: Segmentor
    config: LoopConfig
    losses: ImageLosses
    train: Sequence[Sample]
    valid: Sequence[Sample]
    out: Path
    samples_per_step: int


def check_loop_config(config: LoopConfig) -> None:
    """Validate the fields every stage's config shares, naming the bad value."""
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise InputError(None, f"{name} must be a positive integer, got {value!r}")
    if config.patience < 0 or config.weight_decay < 0:
        raise InputError(None, f"patience and weight_decay must be >= 0, got "
                               f"{config.patience!r} and {config.weight_decay!r}")
    limit = config.max_boxes_per_image
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InputError(None, f"max_boxes_per_image must be None or >= 1, got {limit!r}")


def coerce_nested(config: Any, **classes: type) -> None:
    """In a frozen config's ``__post_init__``: turn mapping fields (from YAML) into dataclasses."""
    for name, cls in classes.items():
        value = getattr(config, name)
        if isinstance(value, Mapping):
            object.__setattr__(config, name, cls(**value))


def set_trainable(model: torch.nn.Module, *, train_encoder: bool) -> list[torch.nn.Parameter]:
    """Freeze all but the mask decoder (or nothing, with ``train_encoder``); the trainable list."""
    for name, param in model.named_parameters():
        param.requires_grad_(train_encoder or name.startswith("mask_decoder."))
    return [p for p in model.parameters() if p.requires_grad]


def _set_mode(model: torch.nn.Module, *, training: bool, train_encoder: bool) -> None:
    """Train mode for what trains; frozen parts (TinyViT's batch norms) stay in eval mode."""
    model.eval()
    if training:
        (model if train_encoder else model.mask_decoder).train()


def fit(run: Run, *, resume: bool = False, progress: bool = True) -> Path:
    """Train ``run.segmentor`` until ``epochs`` or early stopping; the best checkpoint's path.

    Raises
    ------
    xami.errors.CheckpointError
        ``resume`` without ``weights/last.pt``, or with a config that differs in more than
        ``epochs`` / ``patience``.
    """
    config = run.config
    params = set_trainable(run.segmentor.model, train_encoder=config.train_encoder)
    optimizer = torch.optim.AdamW(params, lr=config.schedule.lr(0),
                                  weight_decay=config.weight_decay)
    state = _resume(run, optimizer) if resume else RunState()
    if not resume:
        write_text_atomic(run.out / "xami_config.json", json.dumps(_configs(run), indent=1))
    while state.epoch < config.epochs and not state.should_stop(config.patience):
        started = time.perf_counter()
        train_terms = _train_epoch(run, optimizer, params, state, progress)
        state.epoch += 1
        valid_terms = validate(run)
        row = {"epoch": state.epoch, "step": state.step, "lr": config.schedule.lr(state.step),
               **_prefixed("train", train_terms), **_prefixed("valid", valid_terms),
               "seconds": round(time.perf_counter() - started, 3)}
        state.history.append(row)
        _save_epoch(run, optimizer, state)
    return run.out / "weights" / "best.pt"


def _train_epoch(run: Run, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                 state: RunState, progress: bool) -> dict[str, float]:
    """One pass over the shuffled training samples; mean terms over the images that gave a loss."""
    config = run.config
    rng = np.random.default_rng([config.seed, state.epoch])
    order = rng.permutation(len(run.train))
    batches = [order[i:i + run.samples_per_step]
               for i in range(0, len(order), run.samples_per_step)]
    sums, count = dict.fromkeys(TERMS, 0.0), 0
    _set_mode(run.segmentor.model, training=True, train_encoder=config.train_encoder)
    bar = tqdm(batches, desc=f"{run.kind} epoch {state.epoch + 1}/{config.epochs}",
               disable=not progress, leave=False)
    for batch in bar:
        set_lr(optimizer, config.schedule.lr(state.step))
        optimizer.zero_grad(set_to_none=True)
        images = 0
        for index in batch:
            sample_rng = np.random.default_rng([config.seed, state.epoch, int(index)])
            for terms in run.losses(run.train[index], sample_rng):
                assert torch.isfinite(terms.total), f"training loss is {terms.total}"
                terms.total.backward()
                _accumulate(sums, terms.as_floats())
                images += 1
        if images:
            _average_grads(params, images)
            optimizer.step()
            state.step += 1
            count += images
            bar.set_postfix(loss=f"{sums['total'] / count:.4f}")
    return {k: v / count if count else math.nan for k, v in sums.items()}


def validate(run: Run) -> dict[str, float]:
    """Mean loss terms over the validation images that give a loss (NaN when none does)."""
    _set_mode(run.segmentor.model, training=False, train_encoder=run.config.train_encoder)
    sums, count = dict.fromkeys(TERMS, 0.0), 0
    with torch.no_grad():
        for sample in run.valid:
            for terms in run.losses(sample, None):
                _accumulate(sums, terms.as_floats())
                count += 1
    return {k: v / count if count else math.nan for k, v in sums.items()}


def _or_inf(value: float) -> float:
    """NaN (no validation image gave a loss) ranks last."""
    return math.inf if math.isnan(value) else value


def _accumulate(sums: dict[str, float], terms: dict[str, float]) -> None:
    """Add one image's terms to the running sums."""
    for key in sums:
        sums[key] += terms[key]


def _average_grads(params: list[torch.nn.Parameter], images: int) -> None:
    """Turn the summed per-image gradients into their mean."""
    for param in params:
        if param.grad is not None:
            param.grad.div_(images)


def _prefixed(prefix: str, terms: dict[str, float]) -> dict[str, float]:
    """``{"train_total": ...}`` from ``{"total": ...}``."""
    return {f"{prefix}_{key}": value for key, value in terms.items()}


def _configs(run: Run) -> dict[str, Any]:
    """The configs saved with every checkpoint and in ``xami_config.json``."""
    return {"kind": run.kind, "segmentor": dataclasses.asdict(run.segmentor.config),
            "train": dataclasses.asdict(run.config), "xami_version": __version__}


def _checkpoint(run: Run, state: RunState,
                optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """A checkpoint `load_segmentor` reads (``model`` + ``config``) that also resumes a run."""
    ckpt = {**run.segmentor.checkpoint(), "train_config": _configs(run)["train"],
            "kind": run.kind, "step": state.step, "epoch": state.epoch,
            "metrics": state.history, "xami_version": __version__}
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    return ckpt


def _save(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _save_epoch(run: Run, optimizer: torch.optim.Optimizer, state: RunState) -> None:
    """Write last.pt, best.pt when this epoch is the best so far, and the metrics logs."""
    weights = run.out / "weights"
    if state.best_epoch == state.epoch:
        _save(_checkpoint(run, state, None), weights / "best.pt")
    _save(_checkpoint(run, state, optimizer), weights / "last.pt")
    write_text_atomic(run.out / "metrics.json", json.dumps(state.history, indent=1))
    write_text_atomic(run.out / "metrics.csv", _csv(state.history))


def _csv(rows: list[dict[str, Any]]) -> str:
    """The per-epoch metrics as CSV text."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _resume(run: Run, optimizer: torch.optim.Optimizer) -> RunState:
    """Restore model, optimiser and run state from ``weights/last.pt``."""
    path = run.out / "weights" / "last.pt"
    if not path.is_file():
        raise CheckpointError(path, "cannot resume: checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    _check_same_config(path, ckpt.get("train_config", {}), _configs(run)["train"])
    load_sam_state(run.segmentor.model, ckpt["model"], path)
    optimizer.load_state_dict(ckpt["optimizer"])
    return RunState(step=ckpt["step"], epoch=ckpt["epoch"], history=list(ckpt["metrics"]))


def _check_same_config(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """A run resumes only with its own recipe (a longer run or patience are allowed)."""
    saved, current = json.loads(json.dumps(saved)), json.loads(json.dumps(current))
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    if changed:
        raise CheckpointError(path, f"cannot resume with a different training config; "
                                    f"changed: {changed}")

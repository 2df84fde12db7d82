"""Decoder training speed: cached frozen-encoder embeddings against recomputing them every epoch.

Usage::

    python benchmarks/training.py [--n 16] [--epochs 3] [--sam-size 1024]

Trains the same decoder twice on the same simulated set, once with xami's on-disk embedding cache
and once recomputing the frozen encoder for every image of every epoch (the authors' way), and
writes the per-epoch seconds of both to ``benchmarks/results/training.json``. The first cached
epoch fills the cache (it costs what an uncached epoch costs); the later ones only run the decoder.

Also written: the prompts per image and the speed-up the FLOPs allow at equal arithmetic
efficiency, ``(encoder + decoder step) / decoder step``, with the encoder's 77.5 GFLOP (1024) and
~8.1 GFLOP per prompt for the decoder's training step (forward ~2.7 with its first block's image
side shared by the prompts, backward about twice that), and the prompts per image below which a
3x speed-up is possible at all.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline import ENCODER_GFLOP  # the sibling benchmark (this folder is on sys.path)
from xami import __version__
from xami.sim import simulate_dataset
from xami.train.segmentor import SegmentorTrainConfig, load_split_samples, train_segmentor

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
DECODER_STEP_GFLOP = {1024: 8.1, 512: 2.0}  # per box: forward ~2.7 (shared first block) x 3


def _epoch_seconds(run: Path) -> list[float]:
    """Seconds of each epoch from a run's ``metrics.json``."""
    return [float(row["seconds"]) for row in json.loads((run / "metrics.json").read_text())]


def main(argv: list[str] | None = None) -> int:
    """Train both ways and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="simulated images (default 16)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--sam-size", type=int, default=1024, help="model input (default 1024)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = SegmentorTrainConfig(epochs=args.epochs, sam_size=args.sam_size, patience=0)
    report = {"xami_version": __version__, "machine": platform.processor() or platform.machine(),
              "threads": args.threads, "images": args.n, "sam_size": args.sam_size}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        simulate_dataset(tmp / "sim", args.n, seed=5, valid_fraction=0.25, workers=1,
                         progress=False)
        train, valid = load_split_samples(tmp / "sim")
        boxes = float(np.mean([len(s.masks) for s in train + valid]))
        for name, cache in (("cached", True), ("recomputed", False)):
            torch.manual_seed(0)
            train_segmentor(tmp / "sim", tmp / name, config=replace(config, cache=cache),
                            progress=False)
            report[f"{name}_epoch_seconds"] = _epoch_seconds(tmp / name)
    cached_later = float(np.median(report["cached_epoch_seconds"][1:]))
    recomputed = float(np.median(report["recomputed_epoch_seconds"]))
    report["cached_epoch_median_after_first"] = cached_later
    report["recomputed_epoch_median"] = recomputed
    report["speedup_per_epoch"] = recomputed / cached_later
    # what the arithmetic allows: recomputing adds the encoder's forward to the decoder's step
    encoder, step = ENCODER_GFLOP[args.sam_size], DECODER_STEP_GFLOP[args.sam_size] * boxes
    report["boxes_per_image"] = boxes
    report["flop_bound_speedup"] = (encoder + step) / step
    report["boxes_per_image_for_3x"] = encoder / (2 * DECODER_STEP_GFLOP[args.sam_size])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

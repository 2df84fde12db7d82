"""Time the mask decoder per box for several chunk sizes; writes results/decoder_chunks.json.

Usage: ``python benchmarks/decoder_chunks.py [--repeats 5] [--threads 2]``. A random-weights
MobileSAM decodes 20 boxes on one image's cached embeddings (prompt encoder + mask decoder +
multimask selection, no upsampling), at sam_size 512 and 1024, in chunks of 1, 2, 3, 5, 8 and 20
boxes, in interleaved rounds (after one warm-up round) so that load from other processes falls on
all chunk sizes alike. Reported per box: median and min wall time, and median process CPU time.
The fastest chunk size is chosen by the min wall time. On a machine shared with other processes
the median mostly measures their load; ``--threads 1`` then gives CPU times that are nearly
independent of it (wall time with 2 threads suffers most from oversubscription).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from xami.models.box_segmentor import SegmentorConfig
from xami.models.segmentor import Segmentor, build_segmentor

CHUNK_SIZES = (1, 2, 3, 5, 8, 10, 20)
SAM_SIZES = (512, 1024)
N_BOXES = 20
IMAGE_SIZE = (512, 512)
OUT = Path(__file__).resolve().parent / "results" / "decoder_chunks.json"


def random_boxes(n: int, seed: int = 0) -> np.ndarray:
    """``n`` XYXY boxes of 10-200 px inside a 512 x 512 image."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, size=(n, 2))
    return np.concatenate([xy, xy + rng.uniform(10, 200, size=(n, 2))], axis=1)


def time_decoder(segmentor: Segmentor, embeddings: torch.Tensor,
                 boxes: np.ndarray) -> tuple[float, float]:
    """Wall and process CPU seconds for one ``decode_low_res`` call on all boxes."""
    with torch.inference_mode():
        wall, cpu = time.perf_counter(), time.process_time()
        segmentor.decode_low_res(embeddings, boxes, IMAGE_SIZE)
        return time.perf_counter() - wall, time.process_time() - cpu


def summarise(times: list[tuple[float, float]]) -> dict[str, float]:
    """Milliseconds per box: median and min wall time, median CPU time."""
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return {"median_ms_per_box": 1e3 * statistics.median(wall) / N_BOXES,
            "min_ms_per_box": 1e3 * min(wall) / N_BOXES,
            "median_cpu_ms_per_box": 1e3 * statistics.median(cpu) / N_BOXES}


def measure(sam_size: int, repeats: int, threads: int) -> dict[str, dict[str, float]]:
    """Timings per box for each chunk size at ``sam_size`` (interleaved rounds)."""
    torch.manual_seed(0)
    base = build_segmentor(SegmentorConfig(sam_size=sam_size))
    torch.set_num_threads(threads)  # after the build: ultralytics_offline() sets all cores
    with torch.inference_mode():
        embeddings = base.embed(torch.randn(1, 3, sam_size, sam_size))
    boxes = random_boxes(N_BOXES)
    segmentors = {c: Segmentor(base.model, SegmentorConfig(sam_size=sam_size, chunk_size=c))
                  for c in CHUNK_SIZES}
    times: dict[int, list[tuple[float, float]]] = {c: [] for c in CHUNK_SIZES}
    for i in range(repeats + 1):
        for chunk, segmentor in segmentors.items():
            measured = time_decoder(segmentor, embeddings, boxes)
            if i:
                times[chunk].append(measured)
    rows = {str(c): summarise(t) for c, t in times.items()}
    print(f"sam_size {sam_size}: {json.dumps(rows)}", flush=True)
    return rows


def main() -> None:
    """Run the measurements and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = {str(s): measure(s, args.repeats, args.threads) for s in SAM_SIZES}
    fastest = {s: min(rows, key=lambda c: rows[c]["min_ms_per_box"])
               for s, rows in results.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "n_boxes": N_BOXES, "repeats": args.repeats, "threads": args.threads,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg(),
        "ms_per_box": results, "fastest_chunk_size": fastest}, indent=2) + "\n")
    print(f"fastest chunk size per sam_size: {fastest}; wrote {args.out}")


if __name__ == "__main__":
    main()

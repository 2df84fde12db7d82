"""Time ``simulate_dataset`` on N images at 512 and write ``benchmarks/results/simulate.json``.

Usage: ``python benchmarks/simulate.py [--n 1000] [--workers 2] [--realism PATH/realism.py]``.
With ``--realism`` the statistics of the simulated frames (``shared/tools/realism.py``) are
measured too and stored beside the timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from xami import __version__
from xami.sim import simulate_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"


def _realism(tool: Path, folder: Path, limit: int = 100) -> dict[str, dict[str, float]]:
    """Median and IQR of the realism statistics over ``limit`` frames of ``folder``."""
    spec = importlib.util.spec_from_file_location("realism", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = sorted(folder.rglob("*.jpg"))[:limit]
    rows = [module.image_stats(np.asarray(Image.open(p))[..., 0]) for p in paths]
    return module.summarize(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--realism", type=Path, default=None, help="path of realism.py")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = simulate_dataset(tmp, args.n, seed=args.seed, workers=args.workers)
        seconds = time.perf_counter() - start
        stats = _realism(args.realism, Path(tmp) / "coco") if args.realism else None
    n = sum(summary.images.values())
    result = {"xami_version": __version__, "n": n, "workers": args.workers,
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "seconds_total": round(seconds, 2), "seconds_per_image": round(seconds / n, 4),
              "instances_per_image": {k: round(v / n, 3) for k, v in summary.instances.items()},
              "empty_fraction": round(summary.empty / n, 3), "realism": stats}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(summary)
    print(json.dumps({k: result[k] for k in ("seconds_total", "seconds_per_image")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

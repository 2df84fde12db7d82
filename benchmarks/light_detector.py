"""The bundled detector on its two engines, seconds per frame (``results/light_detector.json``).

Usage::

    python benchmarks/light_detector.py [--n 20] [--repeats 3] [--threads 2]

``onnx`` is the default engine, the one the light install (`pip install xami`, no torch) runs:
`xami.models.yolo_onnx` on the shipped ``weights/detector.onnx``. ``torch`` is ultralytics'
predictor on ``weights/detector.pt`` (``xami[train]``). Both run on the same simulated frames,
taking turns frame by frame so that drift of the machine's speed falls on both; per engine the
median and quartiles of the seconds per frame (detector only: preprocessing, network, NMS and
masks), and the largest difference of their boxes and scores.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from xami import __version__
from xami.models.build import load_detector
from xami.sim import simulate_image
from xami.threads import set_threads

RESULTS = Path(__file__).resolve().parent / "results" / "light_detector.json"


def main(argv: list[str] | None = None) -> int:
    """Time both engines and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="frames (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    parser.add_argument("--threads", type=int, default=2, help="engine threads (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    frames = [simulate_image(seed).frame for seed in range(args.n)]
    engines = {name: load_detector(backend=name) for name in ("onnx", "torch")}
    for detector in engines.values():
        detector.predict(frames[0])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    box_diff = score_diff = 0.0
    for _ in range(args.repeats):
        for frame in frames:
            found = {}
            for name, detector in engines.items():
                t = time.perf_counter()
                found[name] = detector.predict(frame)
                seconds[name].append(time.perf_counter() - t)
            a, b = found["onnx"], found["torch"]
            if len(a) == len(b) and len(a):
                box_diff = max(box_diff, float(np.abs(a.boxes - b.boxes).max()))
                score_diff = max(score_diff, float(np.abs(a.scores - b.scores).max()))
    report = {
        "xami_version": __version__, "machine": platform.processor() or platform.machine(),
        "threads": args.threads, "frames": args.n, "repeats": args.repeats,
        "seconds_per_frame": {name: {"median": float(np.median(s)),
                                     "p25": float(np.percentile(s, 25)),
                                     "p75": float(np.percentile(s, 75))}
                              for name, s in seconds.items()},
        "max_box_difference_px": box_diff, "max_score_difference": score_diff}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["seconds_per_frame"]), f"boxes within {box_diff:.1e} px,",
          f"scores within {score_diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

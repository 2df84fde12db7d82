"""The real-frames ablation: each step measured on the real dev frames and on simulated frames.

Usage::

    xami simulate --out data/eval200 --n 200 --seed 2 --valid-fraction 1.0
    python benchmarks/ablation.py --sim data/eval200 --before OLD_DETECTOR.pt

Each row is one pipeline configuration (a detector and `xami predict` flags). The real figure is
`benchmarks/real_frames.py` (``../shared/realdev`` scored by ``realdev_eval.py``); the simulated one
is the mask AP50 of ``xami predict --gt`` on the simulated split. Writes ``results/ablation.json``
and ``results/ablation.md`` (the README table) and the rows into ``results/real_frames.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import real_frames  # benchmarks/ is the script's folder, so on sys.path
from xami.cli import main as xami_main
from xami.models.build import bundled_detector

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES = ("CR", "ROS", "SR", "SL")
NO_RING_PROPOSALS = ["--config", os.path.relpath(Path(__file__).parent / "no_ring_proposals.yaml")]
"""Flags of the rows before the smoke-ring proposals: every default but those."""


def steps(before: Path) -> list[tuple[str, Path, list[str]]]:
    """The rows: (label, detector, predict flags), cumulative within each detector."""
    rows = []
    no_loop = "--no-star-loop-prior"
    for tag, det in (("before", before), ("bundled", bundled_detector("torch"))):
        rows += [
            (f"{tag}: detector + streak fit", det, ["--no-priors"]),
            (f"{tag}: + central-ring prior", det,
             ["--no-smoke-ring-prior", "--no-streak-prior", no_loop]),
            (f"{tag}: + smoke-ring prior", det, [*NO_RING_PROPOSALS, "--no-streak-prior", no_loop]),
            (f"{tag}: + streak prior, full column", det,
             [*NO_RING_PROPOSALS, "--streak-extent", "column", no_loop]),
            (f"{tag}: + streak prior, visible part", det, [*NO_RING_PROPOSALS, no_loop]),
            (f"{tag}: + smoke-ring proposals", det, [no_loop]),
            (f"{tag}: + star loops filled", det, []),
        ]
    return rows


def sim_mask_ap50(sim: Path, detector: Path, flags: list[str]) -> float:
    """Mask AP50 of ``xami predict --gt`` on the simulated ``valid`` split."""
    images = sim / "coco" / "valid"
    with tempfile.TemporaryDirectory() as tmp:
        code = xami_main(["predict", str(images), "--out", tmp, "--detector", str(detector),
                          "--gt", str(images / "_annotations.coco.json"), "--formats", "coco",
                          *flags])
        if code not in (0, 1):
            raise SystemExit(f"xami predict exited {code}")
        return float(json.loads((Path(tmp) / "metrics.json").read_text())["segm"]["AP50"])


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table."""
    head = ("| step | real: agnostic AP50 | real: box mAP50 | "
            + " | ".join(f"real: {c}" for c in CLASSES) + " | real: CR / frame | sim: mask AP50 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        real = r["real"]
        per = " | ".join(f"{real['ap50'].get(c, float('nan')):.2f}" for c in CLASSES)
        lines.append(f"| {r['step']} | {real['agnostic_ap50']:.3f} | {real['mAP50']:.3f} | {per} "
                     f"| {real['central_ring_per_frame']:.1f} | {r['sim_mask_ap50']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure every row and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True, type=Path, help="simulated dataset (COCO layout)")
    parser.add_argument("--before", required=True, type=Path, help="the earlier detector")
    args = parser.parse_args(argv)
    rows = []
    for label, detector, flags in steps(args.before):
        real_json = RESULTS / "real_frames.json"
        code = real_frames.main(["--label", label, "--detector", str(detector),
                                 "--json", str(real_json), "--", *flags])
        if code != 0:
            return code
        real = json.loads(real_json.read_text()).get(label)
        if real is None:  # no real frames here: real_frames.py said so
            return 0
        rows.append({"step": label, "detector": str(detector), "flags": flags, "real": real,
                     "sim_mask_ap50": sim_mask_ap50(args.sim, detector, flags)})
        print(f"{label}: sim mask AP50 {rows[-1]['sim_mask_ap50']:.3f}", flush=True)
    (RESULTS / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "ablation.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where the released XAMI artefacts lie, against a simulated set: star loops and smoke rings.

Usage::

    python benchmarks/released_heatmap.py SIM [--figure PNG] [--json OUT]

The ten real dev frames hold two star loops and ten smoke rings: too few to place them. The
released dataset's own notebook (ESA-Datalabs/XAMI-dataset, ``load_and_visualise_dataset.ipynb``,
cell "Mask heatmap") shows, per class, the sum of the training split's box masks over the 512
frame (1377 star loops, 1267 smoke rings), drawn with ``imshow`` through a white - skyblue - navy
colour map. Its numbers are read back from that figure (``--figure``: the PNG decoded from the
notebook; each pixel's colour inverted through the colour map) and kept in
``results/released_heatmap.json``; this script computes the same numbers from the boxes of a
simulated dataset (``SIM``, any layout ``xami.data.load_dataset`` reads), sampled on the same grid,
and prints both:

- coverage radius: quartiles and 90th percentile of the distance from the chamfer axis
  (``xami.instrument.central_ring_frame_xy()``) over the box coverage;
- the coverage-weighted median x and y (512 px, y down);
- the radial profile of the coverage in 20 px rings, over its peak.

Writes the simulated numbers beside the released ones into ``--json`` (default
``results/released_heatmap_sim.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import BY_NAME
from xami.data import load_dataset
from xami.instrument import RELEASED_SIZE, central_ring_frame_xy

RESULTS = Path(__file__).resolve().parent / "results"
RELEASED = RESULTS / "released_heatmap.json"

PANELS = {"star-loop": 10, "smoke-ring": 254}
"""Left column of each class's training-split panel in the notebook's 1210 x 523 figure."""

PANEL_TOP, PANEL_SIZE, PANEL_ROWS = 34, 217, 210
"""Top row and size of a panel (217 px for 512; the rows read back: the first 210)."""

SOURCE = ("ESA-Datalabs/XAMI-dataset load_and_visualise_dataset.ipynb (commit 11bb5e45), cell "
          "'Mask heatmap', training-split panels, read back through the colour map")
"""Where the released numbers come from."""

RING_BINS = 20
"""Width of the radial profile's rings, 512 px."""


def grid() -> tuple[np.ndarray, np.ndarray]:
    """512-frame pixel (row, column) under each panel pixel, as ``imshow(nearest)`` samples it."""
    scale = PANEL_SIZE / RELEASED_SIZE
    rows = ((np.arange(PANEL_ROWS) + 0.5) / scale).astype(int)
    cols = ((np.arange(PANEL_SIZE) + 0.5) / scale).astype(int)
    return rows, cols


def coverage_stats(density: np.ndarray) -> dict[str, Any]:
    """Coverage radius quantiles, weighted median x / y and radial profile of a panel map."""
    rows, cols = grid()
    yy, xx = np.meshgrid(rows + 0.5, cols + 0.5, indexing="ij")
    x0, y0 = central_ring_frame_xy()
    radius = np.hypot(xx - x0, yy - y0).ravel()
    weight = density.ravel() / density.sum()
    order = np.argsort(radius)
    cumulative = np.cumsum(weight[order])
    quantiles = [float(radius[order][np.searchsorted(cumulative, q)]) for q in (.25, .5, .75, .9)]
    edges = np.arange(0, 260, RING_BINS)
    profile = np.array([density.ravel()[(radius >= e) & (radius < e + RING_BINS)].mean()
                        for e in edges])
    wx, wy = density.sum(0), density.sum(1)
    return {"radius_quartiles_90": [round(q) for q in quantiles],
            "median_x": round(float(cols[np.searchsorted(np.cumsum(wx) / wx.sum(), .5)] + .5)),
            "median_y": round(float(rows[np.searchsorted(np.cumsum(wy) / wy.sum(), .5)] + .5)),
            "profile": [round(float(v), 2) for v in profile / profile.max()]}


def from_figure(png: Path) -> dict[str, Any]:
    """The released numbers, read back from the notebook's figure."""
    from matplotlib.colors import LinearSegmentedColormap
    from PIL import Image

    lut = LinearSegmentedColormap.from_list("c", ["white", "skyblue", "navy"], N=256)(
        np.linspace(0, 1, 256))[:, :3] * 255
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    out: dict[str, Any] = {"source": SOURCE}
    for name, left in PANELS.items():
        panel = pixels[PANEL_TOP:PANEL_TOP + PANEL_ROWS, left:left + PANEL_SIZE]
        distance = ((panel[:, :, None, :] - lut[None, None]) ** 2).sum(-1)
        if np.sqrt(distance.min(-1)).max() > 5:
            raise ValueError(f"{png}: panel {name} holds colours outside the colour map")
        out[name] = coverage_stats(distance.argmin(-1) / 255.0)
    return out


def from_dataset(root: Path) -> dict[str, Any]:
    """The same numbers from a dataset's boxes (their heat map sampled on the panel grid)."""
    heat = {BY_NAME[name].coco_id: np.zeros((RELEASED_SIZE, RELEASED_SIZE)) for name in PANELS}
    for _, rec in load_dataset(root).records():
        scale = RELEASED_SIZE / rec.width
        for ann in rec.annotations:
            if ann.category_id in heat and not ann.iscrowd:
                x0, y0, x1, y1 = (int(v * scale) for v in ann.bbox)
                heat[ann.category_id][y0:y1, x0:x1] += 1
    rows, cols = grid()
    return {name: coverage_stats(heat[BY_NAME[name].coco_id][np.ix_(rows, cols)])
            for name in PANELS}


def main() -> None:
    """Print released against simulated; save both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sim", type=Path, help="simulated dataset")
    parser.add_argument("--figure", type=Path, default=None,
                        help="the notebook's heat-map PNG: re-read the released numbers from it")
    parser.add_argument("--json", type=Path, default=RESULTS / "released_heatmap_sim.json")
    args = parser.parse_args()
    if args.figure is not None:
        RELEASED.write_text(json.dumps(from_figure(args.figure), indent=2) + "\n")
    released, simulated = json.loads(RELEASED.read_text()), from_dataset(args.sim)
    for name in PANELS:
        for label, stats in (("released", released[name]), (args.sim.name, simulated[name])):
            print(f"{name:10s} {label:12s} radius p25/p50/p75/p90 {stats['radius_quartiles_90']} "
                  f"median x,y ({stats['median_x']}, {stats['median_y']}) "
                  f"profile {stats['profile']}")
    args.json.write_text(json.dumps({"released": released, "simulated": simulated,
                                     "sim": str(args.sim)}, indent=2) + "\n")


if __name__ == "__main__":
    main()

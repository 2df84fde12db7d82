"""Make ``docs/sim_vs_real.png``: real XMM-OM frames beside simulated ones with GT outlines.

Usage: ``python docs/make_sim_figure.py REAL_DIR [--out docs/sim_vs_real.png] [--seeds 0 1 2]``
where REAL_DIR holds real 512x512 frames (PNG/JPEG), e.g. ``shared/real_examples``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from xami.classes import BY_COCO_ID
from xami.sim import simulate_image


def _real_frames(folder: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    """Real 512x512 frames of ``folder`` (first channel), by name."""
    out = []
    for path in sorted(folder.glob("*")):
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        img = np.asarray(Image.open(path).convert("L"))
        if img.shape == (512, 512):
            out.append((path.stem, img))
    return out[:limit]


def _outline(ax: plt.Axes, masks: np.ndarray, labels: np.ndarray) -> None:
    """Draw each mask's outline in its class colour."""
    for mask, label in zip(masks, labels, strict=True):
        colour = np.array(BY_COCO_ID[int(label)].colour) / 255
        ax.contour(mask, levels=[0.5], colors=[colour], linewidths=0.6)


def main(argv: list[str] | None = None) -> int:
    """Draw the figure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("real", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("sim_vs_real.png"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 9])
    args = ap.parse_args(argv)
    real = _real_frames(args.real, 2)
    sims = [simulate_image(s) for s in args.seeds]
    cols = len(real) + 2 * len(sims)
    fig, axes = plt.subplots(1, cols, figsize=(2.2 * cols, 2.5), dpi=100)
    for ax, (name, img) in zip(axes, real, strict=False):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"real {name}", fontsize=6)
    for k, sim in enumerate(sims):
        for j, outline in enumerate((False, True)):
            ax = axes[len(real) + 2 * k + j]
            ax.imshow(sim.frame, cmap="gray", vmin=0, vmax=255)
            if outline:
                _outline(ax, sim.masks, sim.labels)
            ax.set_title(f"sim {sim.stem}{' + GT' if outline else ''}", fontsize=6)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout(pad=0.3)
    fig.savefig(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

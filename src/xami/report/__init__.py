"""Figures (matplotlib, no display needed) and overlays of frames with coloured instance masks."""

from xami.report.figures import plot_box_centres, plot_class_distribution
from xami.report.overlay import render_overlay, write_png

__all__ = ["plot_box_centres", "plot_class_distribution", "render_overlay", "write_png"]

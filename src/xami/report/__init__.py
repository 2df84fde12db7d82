"""Figures (matplotlib, no display needed), overlays with coloured masks and the HTML report."""

from xami.report.figures import plot_box_centres, plot_class_distribution
from xami.report.html import write_report
from xami.report.overlay import render_overlay, write_png

__all__ = [
    "plot_box_centres",
    "plot_class_distribution",
    "render_overlay",
    "write_png",
    "write_report",
]

"""The files of an evaluation: ``metrics.json``, ``table3.md`` and the IoU and AP figures."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xami.classes import BY_SHORT, TABLE3_ORDER
from xami.eval.metrics import PR_IOUS, Evaluation
from xami.io.atomic import write_text_atomic
from xami.report.figures import plot_iou_cdf, plot_per_class_ap


def write_evaluation(out_dir: str | os.PathLike[str], evaluation: Evaluation) -> None:
    """Write the files of an evaluation, each atomically.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder that receives ``metrics.json`` (``evaluation.metrics``, NaN as ``null``),
        ``table3.md`` (the paper's Table 3 layout: mask AP, box AP, precision/recall, mean IoU),
        ``plots/iou_cdf.png`` (per-image and matched-pair IoUs) and ``plots/per_class_ap.png``.
    evaluation : xami.eval.metrics.Evaluation
        What `xami.eval.evaluate` returns.

    Examples
    --------
    >>> from xami.eval import evaluate
    >>> write_evaluation("eval", evaluate("truth.coco.json", "predictions.coco.json"))
    ... # doctest: +SKIP
    """
    out_dir, metrics = Path(out_dir), evaluation.metrics
    text = json.dumps(_json_safe(metrics), indent=1, allow_nan=False)
    write_text_atomic(out_dir / "metrics.json", text + "\n")
    write_text_atomic(out_dir / "table3.md", _table3(metrics))
    per_image = [entry["iou"] for entry in metrics["per_image_iou"] if entry["iou"] is not None]
    plot_iou_cdf(per_image, out_dir / "plots" / "iou_cdf.png", matched=evaluation.matched_iou)
    plot_per_class_ap(metrics["segm"]["per_class"], out_dir / "plots" / "per_class_ap.png")


def mask_ap_line(metrics: Mapping[str, Any]) -> str:
    """The headline of an evaluation: ``"mask AP50 0.618, AP75 0.451, AP 0.419"``.

    Parameters
    ----------
    metrics : Mapping
        ``Evaluation.metrics`` (`xami.eval.evaluate`).

    Returns
    -------
    str
    """
    segm = metrics["segm"]
    return f"mask AP50 {segm['AP50']:.3f}, AP75 {segm['AP75']:.3f}, AP {segm['AP']:.3f}"


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None, recursively: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _table3(metrics: Mapping[str, Any]) -> str:
    """Markdown tables in the paper's Table 3 layout (mask AP, box AP, precision/recall)."""
    conf, mean, std = metrics["conf"], metrics["mean_iou"], metrics["mean_iou_std"]
    iou = "undefined" if math.isnan(mean) else f"{mean:.3f} ± {std:.3f}"
    lines = [f"# Evaluation of {metrics['provenance']['predictions']}", "",
             f"Ground truth: {metrics['provenance']['gt']} ({metrics['images']} images).", "",
             "## Mask AP (%), paper Table 3 layout", "", *_ap_table(metrics["segm"]), "",
             "AP 0.5:0.95 is the COCO standard. AP50-90 (paper) is the mean of AP at IoU 0.5 "
             "and at IoU 0.9 only, the way the XAMI authors computed their \"mAP50-90\"; it is "
             "given for comparison with the paper.", "",
             "## Box AP (%)", "", *_ap_table(metrics["bbox"]), "",
             f"## Precision and recall (%), predictions with score >= {conf:g}", "",
             *_pr_table(metrics["precision_recall"]), "",
             "Hungarian matching of masks per image and class; overall = unweighted mean over "
             "the classes where the ratio is defined.", "",
             f"Mean IoU per image (union of predicted vs union of ground-truth masks): "
             f"{iou} over {metrics['images_in_mean_iou']} images (images with "
             "neither predictions nor ground truth are skipped).", ""]
    return "\n".join(lines)


def _ap_table(ap: Mapping[str, Any]) -> list[str]:
    """Rows overall, CR, SR, SL, ROS, OT; columns AP50, AP75, AP 0.5:0.95, AP50-90 (paper)."""
    keys = ("AP50", "AP75", "AP", "AP50_90_paper")
    rows = [_row("", "AP50", "AP75", "AP 0.5:0.95", "AP50-90 (paper)"), _row(*["---"] * 5)]
    rows.append(_row("overall", *(_percent(ap[k]) for k in keys)))
    for short in TABLE3_ORDER:
        per_class = ap["per_class"][BY_SHORT[short].name]
        rows.append(_row(short, *(_percent(per_class[k]) for k in keys)))
    return rows


def _pr_table(pr: Mapping[str, Any]) -> list[str]:
    """Rows overall, CR, ...; columns precision and recall at each IoU threshold."""
    header = [f"{what} IoU>={t:g}" for t in PR_IOUS for what in ("P", "R")]
    rows = [_row("", *header), _row(*["---"] * (len(header) + 1))]
    cells = [(f"iou_{t}", key) for t in PR_IOUS for key in ("precision", "recall")]
    rows.append(_row("overall", *(_percent(pr[t]["mean"][k]) for t, k in cells)))
    for short in TABLE3_ORDER:
        name = BY_SHORT[short].name
        rows.append(_row(short, *(_percent(pr[t]["per_class"][name][k]) for t, k in cells)))
    return rows


def _row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _percent(value: float | None) -> str:
    """A 0..1 value in percent with one decimal; a dash where undefined."""
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"

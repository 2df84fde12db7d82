"""What a run states about its models and settings: ``run.json``'s ``models`` and ``settings``,
and the provenance cards of every FITS product."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from xami import __version__
from xami.io.atomic import file_sha256
from xami.models.build import bundled_detector
from xami.pipeline import Pipeline, PipelineSpec


def provenance(pipeline: Pipeline | PipelineSpec) -> dict[str, Any]:
    """``run.json`` description of the models and thresholds of a pipeline or its settings."""
    def model(source: str | None) -> dict[str, str] | None:
        if not source:
            return None
        path = Path(source)
        return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else ""}

    if isinstance(pipeline, PipelineSpec):
        sources = (str(pipeline.detector or bundled_detector(pipeline.backend)), pipeline.segmentor)
        conf, backend, quantize = pipeline.conf, pipeline.backend, pipeline.quantize
        sam_size = pipeline.sam_size if pipeline.segmentor else None
    else:
        segmentor = pipeline.segmentor
        sources = (pipeline.detector.source, segmentor.source if segmentor else None)
        conf = pipeline.conf
        backend = "onnx" if pipeline.detector.source.endswith(".onnx") else "torch"
        quantize = getattr(segmentor, "quantize", None)
        sam_size = segmentor.config.sam_size if segmentor else None
    return {
        "models": {"detector": model(sources[0]), "segmentor": model(sources[1])},
        "settings": {"conf": conf, "faint_threshold": pipeline.faint_rule.threshold,
                     "streak_fit": pipeline.streak_fit is not None, "backend": backend,
                     "sam_size": sam_size, "quantize": quantize,
                     "priors": None if pipeline.priors is None else asdict(pipeline.priors)},
    }


def _provenance_cards(prov: dict[str, Any]) -> dict[str, Any]:
    """Primary-header cards of a run's provenance."""
    cards: dict[str, Any] = {"XAMIVER": (__version__, "xami version")}
    for key, name in (("DET", "detector"), ("SEG", "segmentor")):
        model = prov["models"][name]
        if model:
            cards[f"{key}FILE"] = (Path(model["path"]).name, f"{name} weights")
            cards[f"{key}SHA"] = model["sha256"]  # 64 hex digits: no room for a comment
    settings = prov["settings"]
    cards["CONF"] = (settings["conf"], "detector confidence threshold")
    cards["FAINTTHR"] = (settings["faint_threshold"], "faint-rule threshold")
    cards["STRKFIT"] = (settings["streak_fit"], "read-out streaks fitted to columns")
    cards["BACKEND"] = (settings["backend"], "torch or onnx (ONNX Runtime)")
    priors = settings["priors"] or {}
    steps = [short for name, short in (("central_ring", "CR"), ("smoke_ring", "SR"),
                                       ("streak", "ROS")) if priors.get(name)]
    cards["PRIORS"] = (",".join(steps) or "none", "instrument priors (xami.priors)")
    if priors.get("streak"):
        cards["STRKEXT"] = (priors["streak"]["extent"], "streak extent: visible or column")
    if settings["sam_size"]:
        cards["SAMSIZE"] = (settings["sam_size"], "segmentor input side, pixels")
    if settings["quantize"]:
        cards["QUANTIZ"] = (settings["quantize"], "segmentor encoder quantisation")
    return cards

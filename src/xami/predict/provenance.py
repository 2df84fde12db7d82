"""What a run states about its models and settings: ``run.json``'s ``models`` and ``settings``,
and the provenance cards of every FITS product."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from xami import __version__
from xami.classes import BY_NAME
from xami.io.atomic import file_sha256
from xami.models.build import bundled_detector
from xami.pipeline import PipelineSpec
from xami.priors import STEPS


def provenance(spec: PipelineSpec) -> dict[str, Any]:
    """What a run states about a pipeline: ``run.json``'s ``models`` and ``settings``.

    A function of the spec alone (`xami.pipeline.Pipeline.spec` for built models), so that a
    local run and a Dask run of one spec state the same. ``sam_size`` is the spec's: None when
    the checkpoint's own size is used (the checkpoint is not read to tell it).

    Parameters
    ----------
    spec : PipelineSpec
        The pipeline's description.

    Returns
    -------
    dict
        ``models``: ``detector`` and ``segmentor`` (None without one), each ``path`` and
        ``sha256`` (empty when not a file); ``settings``: ``conf``, ``faint_rule``,
        ``streak_fit`` (None when off), ``backend``, ``sam_size``, ``quantize``, ``priors``: every
        setting of the spec, so that a rerun redoes the images whose settings changed.

    Examples
    --------
    >>> provenance(PipelineSpec(conf=0.3))["settings"]["conf"]
    0.3
    """
    detector = str(spec.detector or bundled_detector(spec.backend))
    return {
        "models": {"detector": _model(detector), "segmentor": _model(spec.segmentor)},
        "settings": {"conf": spec.conf, "faint_rule": asdict(spec.faint_rule),
                     "streak_fit": None if spec.streak_fit is None else asdict(spec.streak_fit),
                     "backend": spec.backend,
                     "sam_size": spec.sam_size if spec.segmentor else None,
                     "quantize": spec.quantize,
                     "priors": None if spec.priors is None else asdict(spec.priors)},
    }


def _model(source: str | None) -> dict[str, str] | None:
    """A model file and its SHA-256 (empty when it is not a file)."""
    if not source:
        return None
    path = Path(source)
    return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else ""}


def provenance_cards(prov: dict[str, Any]) -> dict[str, Any]:
    """Primary-header cards of a run's provenance."""
    cards: dict[str, Any] = {"XAMIVER": (__version__, "xami version")}
    for key, name in (("DET", "detector"), ("SEG", "segmentor")):
        model = prov["models"][name]
        if model:
            cards[f"{key}FILE"] = (Path(model["path"]).name, f"{name} weights")
            cards[f"{key}SHA"] = model["sha256"]  # 64 hex digits: no room for a comment
    settings = prov["settings"]
    cards["CONF"] = (settings["conf"], "detector confidence threshold")
    cards["FAINTTHR"] = (settings["faint_rule"]["threshold"], "faint-rule threshold")
    cards["STRKFIT"] = (settings["streak_fit"] is not None, "read-out streaks fitted to columns")
    cards["BACKEND"] = (settings["backend"], "torch or onnx (ONNX Runtime)")
    priors = settings["priors"] or {}
    steps = [BY_NAME[step.artefact].short for name, step in STEPS.items() if priors.get(name)]
    cards["PRIORS"] = (",".join(steps) or "none", "instrument priors (xami.priors)")
    if priors.get("streak"):
        cards["STRKEXT"] = (priors["streak"]["extent"], "streak extent: visible or column")
    if settings["sam_size"]:
        cards["SAMSIZE"] = (settings["sam_size"], "segmentor input side, pixels")
    if settings["quantize"]:
        cards["QUANTIZ"] = (settings["quantize"], "segmentor encoder quantisation")
    return cards

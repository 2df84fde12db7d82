"""``xami predict`` and the commands over its runs: flag-sources, evaluate, report, demo."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from xami.cli.common import EXIT_FAILED, EXIT_OK, Subcommands, count, given
from xami.errors import UsageError
from xami.models.detector import DetectorConfig

if TYPE_CHECKING:
    from xami.pipeline import PipelineSpec
    from xami.priors import PriorConfig

LOCAL_CLUSTER = "local"
"""``--dask`` without an address: a local cluster."""

SPEC_FLAGS = ("detector", "segmentor", "sam_size", "backend", "quantize", "conf")
"""The flags named after a `xami.pipeline.PipelineSpec` field."""


def add_commands(sub: Subcommands) -> None:
    """Add ``predict``, ``flag-sources``, ``evaluate``, ``report`` and ``demo``."""
    for add in (_add_predict, _add_flag_sources, _add_evaluate, _add_report, _add_demo):
        add(sub)


def _add_predict(sub: Subcommands) -> None:
    """``xami predict``: every option not given keeps the config file's or the library's value."""
    p = sub.add_parser("predict", help="find artefacts; write FITS masks, DS9 regions, COCO, PNG")
    p.add_argument("inputs", nargs="+", help="FITS (file.fits[HDU]) or PNG/JPEG files, folders, "
                   "glob patterns, or .txt/.lst list files (one path per line). Images must be "
                   "square: FITS with a side that is a multiple of 512 are rebinned to 512 "
                   "(2048, 1024), and FITS or PNG/JPEG of side 64 to 512 are read as they are")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="YAML whose `predict:` section sets the pipeline (xami.pipeline."
                        "PipelineSpec: models, conf, faint_rule, streak_fit, priors; see "
                        "configs/predict_example.yaml); the flags given override it")
    m = p.add_argument_group("models")
    m.add_argument("--detector", type=Path, default=None, metavar="PATH",
                   help="detector checkpoint or yaml (default: the bundled weights)")
    m.add_argument("--segmentor", type=Path, default=None, metavar="PATH",
                   help="SAM checkpoint; without it the detector's masks are used")
    m.add_argument("--sam-size", type=int, default=None, metavar="PIXELS",
                   help="segmentor input side, a multiple of 64: 1024 (the paper's) or 512 "
                        "(default: the checkpoint's, else the paper's)")
    m.add_argument("--backend", default=None, metavar="ENGINE",
                   help="onnx (default): ONNX Runtime for the detector and the segmentor (the "
                        "bundled detector's export ships with xami; others are exported once, "
                        "cached next to the weights); torch: PyTorch, needs xami[train]")
    m.add_argument("--quantize", default=None, metavar="MODE",
                   help="int8, with --backend onnx and --segmentor: INT8 segmentor encoder "
                        "(5-10%% faster on an AVX2 CPU, ~99%% of mask pixels unchanged)")
    m.add_argument("--conf", type=float, default=None,
                   help=f"detector confidence (default {DetectorConfig.conf}; the paper's 0.2 "
                        f"gives sparser masks)")
    g = p.add_argument_group("instrument priors (xami.priors; all on by default)")
    g.add_argument("--no-priors", action="store_true", help="switch every prior off")
    g.add_argument("--no-central-ring-prior", action="store_true",
                   help="keep every central-ring prediction (default: at most one, at the fixed "
                        "position, proposed there when none is found)")
    g.add_argument("--no-smoke-ring-prior", action="store_true",
                   help="do not rescore smoke rings by a saturated parent radially inward")
    g.add_argument("--no-streak-prior", action="store_true",
                   help="do not rescore read-out streaks or cut them to their visible part")
    g.add_argument("--no-star-loop-prior", action="store_true",
                   help="keep star-loop masks as found (default: filled to the loop's outline, as "
                        "the real annotations are)")
    g.add_argument("--no-proposals", action="store_true",
                   help="the priors only rescore and cut what the detector found; they add no "
                        "central ring at its fixed position and no smoke ring at a parent's "
                        "ghost position")
    g.add_argument("--streak-extent", default=None, metavar="EXTENT",
                   help="read-out streaks as the segments where they are visible (visible, the "
                        "default) or the full column, as SAS's bitmask marks them (column)")
    o = p.add_argument_group("outputs")
    o.add_argument("--formats", type=_formats, default=None, metavar="LIST",
                   help="comma-separated outputs among fits,regions,coco,png (default: all)")
    o.add_argument("--mask-grid", default=None, metavar="GRID",
                   help="FITS masks on the 512 frame (frame, the default) or the input FITS "
                        "image's grid (native)")
    o.add_argument("--gt", type=Path, default=None,
                   help="ground-truth COCO file: image ids by file name, and evaluate the run")
    o.add_argument("--overwrite", action="store_true", help="redo images already finished")
    o.add_argument("--retry-failed", action="store_true",
                   help="retry images that failed in an earlier run into --out")
    d = p.add_argument_group("parallelism (Dask workers write into --out: a filesystem they "
                             "share)")
    d.add_argument("--dask", nargs="?", const=LOCAL_CLUSTER, type=_dask_address,
                   metavar="ADDRESS", help="run on a Dask cluster: a local one (no ADDRESS) or "
                   "the scheduler at ADDRESS (tcp://host:8786); put it after the inputs")
    d.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes, one thread each (default: all cores)")
    d.add_argument("--threads", type=int, default=None,
                   help="torch and ONNX Runtime threads of a local run (default: all cores; Dask "
                        "workers use one each)")
    p.set_defaults(func=_cmd_predict)


def _formats(text: str) -> tuple[str, ...]:
    """``--formats`` value: the comma-separated names."""
    return tuple(f.strip() for f in text.split(",") if f.strip())


def _dask_address(text: str) -> str:
    """``--dask`` value: ``local`` or a scheduler address (not an input swallowed by mistake)."""
    if text == LOCAL_CLUSTER or re.fullmatch(r"(\w+://)?[\w.\-\[\]:]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"not a scheduler address (tcp://HOST:PORT): {text!r}; "
                                     f"put --dask after the inputs or write --dask=ADDRESS")


def pipeline_spec(args: argparse.Namespace) -> PipelineSpec:
    """The pipeline ``xami predict`` runs: ``--config``'s ``predict:`` section, then the flags.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``xami predict`` options.

    Returns
    -------
    xami.pipeline.PipelineSpec
        The file's spec (the defaults without ``--config``) with the flags given put over it:
        model and `SPEC_FLAGS` options replace its fields, ``--no-priors`` and the
        ``--no-STEP-prior`` flags switch priors off, ``--streak-extent`` sets the streak
        prior's extent (when the streak prior is on) and ``--no-proposals`` switches the
        priors' proposals off.

    Raises
    ------
    xami.errors.UsageError
        The config file or a flag's value cannot be used.

    Examples
    --------
    >>> from xami.cli import build_parser
    >>> args = build_parser().parse_args(["predict", "a.fits", "--out", "o", "--conf", "0.3",
    ...                                   "--no-smoke-ring-prior"])
    >>> spec = pipeline_spec(args)
    >>> spec.conf, spec.priors.smoke_ring, spec.priors.streak.extent
    (0.3, None, 'visible')
    """
    from xami.io.config_file import read_config_section
    from xami.pipeline import PipelineSpec

    spec = read_config_section(args.config, "predict", PipelineSpec)
    return dataclasses.replace(spec, priors=_priors(args, spec.priors), **given(args, *SPEC_FLAGS))


def _priors(args: argparse.Namespace, priors: PriorConfig | None) -> PriorConfig | None:
    """``priors`` with the prior flags given put over it."""
    if args.no_priors or priors is None:
        return None
    from xami.priors import STEPS

    changes = {step: None for step in STEPS if getattr(args, f"no_{step}_prior")}
    streak = changes.get("streak", priors.streak)
    if args.streak_extent is not None and streak is not None:
        try:
            changes["streak"] = dataclasses.replace(streak, extent=args.streak_extent)
        except ValueError as err:
            raise UsageError(None, f"--streak-extent: {err}") from err
    priors = dataclasses.replace(priors, **changes)
    return priors.without_proposals() if args.no_proposals else priors


def _cmd_predict(args: argparse.Namespace) -> int:
    """Run the pipeline over the inputs; report failures, unmatched ground truth and mask AP."""
    from xami.errors import GroundTruthWarning
    from xami.predict import PredictConfig, dask_client, run_predict

    config = PredictConfig(overwrite=args.overwrite, retry_failed=args.retry_failed,
                           **given(args, "formats", "mask_grid"))
    spec = pipeline_spec(args)
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(None, "--threads must be >= 1")
        from xami.threads import set_threads

        set_threads(args.threads)
    if args.workers is not None and args.dask != LOCAL_CLUSTER:
        raise UsageError(None, "--workers sizes a local cluster: use it with --dask and no "
                               "ADDRESS")
    cluster = (contextlib.nullcontext() if args.dask is None else dask_client(
        None if args.dask == LOCAL_CLUSTER else args.dask, **given(args, "workers")))
    with cluster as client, warnings.catch_warnings():
        warnings.simplefilter("ignore", GroundTruthWarning)  # said below, in one line
        summary = run_predict(args.inputs, args.out, pipeline=spec, config=config, gt=args.gt,
                              client=client)
    if summary.gt_unmatched:
        print(f"xami predict: warning: {len(summary.gt_unmatched)} inputs have no image in "
              f"--gt (by file name): {', '.join(summary.gt_unmatched)}; their predictions have "
              f"image ids of their own and are not evaluated", file=sys.stderr)
    for record in summary.failures:
        print(f"failed: {record.reason}", file=sys.stderr)
    print(f"xami predict: {summary.line()}; outputs in {args.out}")
    if summary.metrics is not None:
        from xami.report.evaluation import mask_ap_line

        print(f"{mask_ap_line(summary.metrics)}; metrics in {args.out / 'metrics.json'}")
    return EXIT_FAILED if summary.failures else EXIT_OK


def _add_flag_sources(sub: Subcommands) -> None:
    """``xami flag-sources``."""
    p = sub.add_parser("flag-sources", help="flag catalogue sources lying on artefacts")
    p.add_argument("catalogue", type=Path, help="FITS table (e.g. omdetect SRCLIST) or CSV with "
                   "XPOS/YPOS (input-image FITS pixels) or RA/DEC (deg)")
    p.add_argument("--masks", required=True, type=Path, help="NAME.xami.fits from xami predict")
    p.add_argument("--out", required=True, type=Path, help="output table (.csv: CSV, else FITS)")
    p.add_argument("--radius", type=float, default=None,
                   help="aperture radius, input-image pixels (default: omdetect's, "
                        "xami.source_flags.APERTURE_RADIUS)")
    p.set_defaults(func=_cmd_flag_sources)


def _cmd_flag_sources(args: argparse.Namespace) -> int:
    """Flag the catalogue's sources; say how many lie on artefacts."""
    from xami.source_flags import NOT_COVERED, flag_sources

    table = flag_sources(args.catalogue, args.masks, args.out, **given(args, "radius"))
    flagged = int(((table["XAMI_FLAG"] & ~NOT_COVERED) != 0).sum())
    uncovered = int((table["XAMI_FLAG"] == NOT_COVERED).sum())
    print(f"xami flag-sources: {flagged} of {len(table)} sources on artefacts, {uncovered} not "
          f"covered by the mask grid; wrote {args.out}")
    return EXIT_OK


def _add_evaluate(sub: Subcommands) -> None:
    """``xami evaluate``."""
    p = sub.add_parser("evaluate", help="COCO AP, precision/recall and IoU of predictions")
    p.add_argument("--gt", required=True, type=Path, help="ground-truth COCO file")
    p.add_argument("--pred", required=True, type=Path, help="COCO results file (predictions)")
    p.add_argument("--out", required=True, type=Path,
                   help="folder for metrics.json, table3.md and plots")
    p.add_argument("--conf", type=float, default=None,
                   help="score threshold for precision/recall and IoU (default: the paper's, "
                        "xami.eval.evaluate's)")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate predictions on a ground truth; write the metrics, tables and plots."""
    from xami.eval import evaluate
    from xami.report.evaluation import mask_ap_line, write_evaluation

    evaluation = evaluate(args.gt, args.pred, **given(args, "conf"))
    write_evaluation(args.out, evaluation)
    print(f"xami evaluate: {mask_ap_line(evaluation.metrics)}; wrote {args.out / 'metrics.json'}")
    return EXIT_OK


def _add_report(sub: Subcommands) -> None:
    """``xami report``."""
    p = sub.add_parser("report", help="one offline HTML page of a prediction run")
    p.add_argument("run_dir", type=Path, help="folder of an `xami predict` run")
    p.add_argument("--max-images", type=count, default=None,
                   help="overlays shown in the gallery (default: xami.report.html."
                        "write_report's)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    """Write the run's HTML report."""
    from xami.report.html import write_report

    print(f"xami report: wrote {write_report(args.run_dir, **given(args, 'max_images'))}")
    return EXIT_OK


def _add_demo(sub: Subcommands) -> None:
    """``xami demo``."""
    p = sub.add_parser("demo", help="simulate fields, predict on them with the bundled model, "
                       "evaluate and write the HTML report")
    p.add_argument("--out", type=Path, default=Path("demo_out"),
                   help="output folder (default: %(default)s)")
    p.add_argument("--n", type=int, default=None,
                   help="number of simulated fields (default: xami.demo.run_demo's)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: xami.demo.run_demo's)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run the demonstration."""
    from xami.demo import run_demo

    return EXIT_FAILED if run_demo(args.out, **given(args, "n", "seed")) else EXIT_OK

"""The ``xami`` command line: argparse subcommands, each a few lines over one library call.

Exit codes: 0 success, 1 when some inputs failed (the rest done), 2 for usage errors and for a
feature whose optional extra is not installed (``xami[train]``, ``xami[dask]``).
Heavy imports happen inside the command functions so that ``xami --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from xami import __version__
from xami.errors import MissingExtraError, UsageError, XamiError
from xami.extras import missing_extra
from xami.instrument import RELEASED_SIZE
from xami.models.build import BACKENDS, DEFAULT_BACKEND
from xami.models.detector import DetectorConfig

if TYPE_CHECKING:
    from xami.priors import PriorConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit 2), like xami's own."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} "
                              f"(see {self.prog} --help)\n")


def _count(text: str) -> int:
    """An ``int >= 0`` option value (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- simulate
def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate XMM-OM frames with exact artefact masks")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fits", action="store_true",
                   help="also write the native 2048x2048 FITS frames with WCS in OUT/fits/")
    p.add_argument("--valid-fraction", type=float, default=0.25,
                   help="fraction of images in the valid split (default 0.25, as released)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores; the output does not depend on it)")
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from xami.sim import simulate_dataset

    summary = simulate_dataset(args.out, args.n, seed=args.seed, fits=args.fits,
                               valid_fraction=args.valid_fraction, workers=args.workers)
    print(summary)
    return EXIT_OK


# --------------------------------------------------------------------------- preprocess
def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preprocess", help="rebin and stretch OM FITS images to 8-bit XAMI frames")
    p.add_argument("inputs", nargs="+", help="FITS files (file.fits[HDU] picks an HDU)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--size", type=int, default=RELEASED_SIZE,
                   help="output frame size, pixels (default %(default)s)")
    p.add_argument("--asinh-a", type=float, default=None,
                   help="Asinh stretch parameter a (default: xami.preprocess.DEFAULT_ASINH_A)")
    p.set_defaults(func=_cmd_preprocess)


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from xami.io.frames import preprocess_files

    failures = preprocess_files(args.inputs, args.out, size=args.size, asinh_a=args.asinh_a)
    for path, reason in failures:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


# --------------------------------------------------------------------------- dataset
def _add_dataset(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="dataset tools: stats, convert, split, show, compare")
    dsub = p.add_subparsers(dest="dataset_command", required=True)

    s = dsub.add_parser("stats", help="paper Tables 1 and 2 and distribution plots")
    s.add_argument("data", type=Path, help="dataset folder (COCO or YOLO layout) or XAMI zip")
    s.add_argument("--out", type=Path, default=None,
                   help="folder for stats.json, tables (Markdown) and plots")
    s.set_defaults(func=_cmd_dataset_stats)

    c = dsub.add_parser("convert", help="convert between the COCO and YOLO-seg layouts")
    c.add_argument("data", type=Path, help="source dataset folder or XAMI zip")
    c.add_argument("--to", required=True, choices=("coco", "yolo"), help="target layout")
    c.add_argument("--out", required=True, type=Path, help="output folder")
    c.set_defaults(func=_cmd_dataset_convert)

    t = dsub.add_parser("split", help="stratified k-fold split (optionally grouped by ObsID)")
    t.add_argument("data", type=Path, help="source dataset folder (COCO or YOLO) or XAMI zip")
    t.add_argument("--out", required=True, type=Path, help="output folder (COCO layout)")
    t.add_argument("--k", type=int, default=4, help="number of folds (default 4)")
    t.add_argument("--fold", type=int, default=0, help="which fold is the valid split (default 0)")
    t.add_argument("--test-fraction", type=float, default=0.0,
                   help="fraction of images held out as a test split (default 0)")
    t.add_argument("--group-obsid", action="store_true",
                   help="keep all images of one ObsID in the same fold")
    t.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    t.set_defaults(func=_cmd_dataset_split)

    w = dsub.add_parser("show", help="write PNG overlays of the annotations")
    w.add_argument("data", type=Path, help="dataset folder (COCO or YOLO layout) or XAMI zip")
    w.add_argument("--out", required=True, type=Path, help="output folder for the PNGs")
    w.add_argument("--n", type=int, default=8, help="number of images (default 8)")
    w.add_argument("--split", default=None, help="split to show (default: all)")
    w.set_defaults(func=_cmd_dataset_show)

    m = dsub.add_parser("compare", help="artefact statistics of two datasets side by side "
                        "(per class: box size, aspect, position, contrast, instances per image)")
    m.add_argument("a", type=Path, help="reference dataset A (any layout, a COCO json, a zip)")
    m.add_argument("b", type=Path, help="compared dataset B; ratios are B/A")
    m.add_argument("--out", type=Path, default=None,
                   help="folder for artefact_stats.json and artefact_stats.md")
    m.set_defaults(func=_cmd_dataset_compare)


def _cmd_dataset_stats(args: argparse.Namespace) -> int:
    from xami.data import compute_stats, load_dataset

    stats = compute_stats(load_dataset(args.data))
    print(stats.to_markdown())
    if args.out is not None:
        from xami.report.dataset import plot_stats

        stats.save(args.out)
        plot_stats(stats, args.out)
    return EXIT_OK


def _cmd_dataset_convert(args: argparse.Namespace) -> int:
    from xami.data import load_dataset, write_dataset

    write_dataset(load_dataset(args.data), args.out, layout=args.to)
    return EXIT_OK


def _cmd_dataset_split(args: argparse.Namespace) -> int:
    from xami.data import load_dataset, split_dataset, write_dataset

    split = split_dataset(load_dataset(args.data), k=args.k, fold=args.fold,
                          test_fraction=args.test_fraction, group_by_obsid=args.group_obsid,
                          seed=args.seed)
    write_dataset(split, args.out, layout="coco")
    return EXIT_OK


def _cmd_dataset_show(args: argparse.Namespace) -> int:
    from xami.data import load_dataset
    from xami.report.dataset import show_dataset

    written = show_dataset(load_dataset(args.data), args.out, n=args.n, split=args.split)
    print(f"wrote {len(written)} overlays to {args.out}")
    return EXIT_OK


def _cmd_dataset_compare(args: argparse.Namespace) -> int:
    from xami.data import load_dataset
    from xami.data.artefact_stats import compare_artefact_stats

    names = tuple((p.parent if p.is_file() and p.suffix != ".zip" else p).resolve().stem
                  for p in (args.a, args.b))  # folder names; a json's folder; a zip's stem
    comparison = compare_artefact_stats(load_dataset(args.a), load_dataset(args.b), names=names)
    print(comparison.to_markdown())
    if args.out is not None:
        comparison.save(args.out)
    return EXIT_OK


# --------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the detector, the segmentor or the combined stage")
    tsub = p.add_subparsers(dest="train_command", required=True)

    def common(parser: argparse.ArgumentParser, section: str, out: Path) -> None:
        parser.add_argument("--data", required=True, type=Path, help="dataset with train and "
                            "valid splits (COCO folder, zip, `xami simulate` output)")
        parser.add_argument("--config", type=Path, default=None,
                            help=f"YAML with a `{section}:` section (default: the paper recipe)")
        parser.add_argument("--out", type=Path, default=out, help="run folder")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out")

    d = tsub.add_parser("detector", help="train the YOLOv8-seg detector (ultralytics, offline)")
    d.add_argument("--data", required=True, type=Path,
                   help="YOLO-seg data.yaml, its folder, or an `xami simulate` output folder")
    d.add_argument("--config", type=Path, default=None,
                   help="YAML with a `detector:` section (default: the paper recipe)")
    d.add_argument("--out", type=Path, default=Path("runs/detector"), help="run folder")
    d.add_argument("--resume", action="store_true", help="continue the run in --out")
    d.set_defaults(func=_cmd_train_detector)
    s = tsub.add_parser("segmentor", help="fine-tune the segmentor's mask decoder on GT boxes")
    common(s, "segmentor", Path("runs/segmentor"))
    s.add_argument("--init", type=Path, default=None,
                   help="SAM checkpoint to start from (default: random weights)")
    s.add_argument("--train-encoder", action="store_true",
                   help="train the whole model, encoders too (needed from random weights)")
    s.set_defaults(func=_cmd_train_segmentor)
    c = tsub.add_parser("combined", help="train the decoder on the frozen detector's boxes")
    common(c, "combined", Path("runs/combined"))
    c.add_argument("--detector", required=True, type=Path, help="trained detector checkpoint")
    c.add_argument("--segmentor", required=True, type=Path, help="segmentor checkpoint")
    c.set_defaults(func=_cmd_train_combined)


def _cmd_train_detector(args: argparse.Namespace) -> int:
    from xami.io.config_file import read_config_section
    from xami.train.detector import DetectorTrainConfig, train_detector

    config = read_config_section(args.config, "detector", DetectorTrainConfig)
    best = train_detector(args.data, args.out, config=config, resume=args.resume)
    print(f"best checkpoint: {best}")
    return EXIT_OK


def _cmd_train_segmentor(args: argparse.Namespace) -> int:
    import dataclasses

    from xami.io.config_file import read_config_section
    from xami.train.segmentor import SegmentorTrainConfig, train_segmentor

    config = read_config_section(args.config, "segmentor", SegmentorTrainConfig)
    if args.train_encoder:
        config = dataclasses.replace(config, train_encoder=True)
    best = train_segmentor(args.data, args.out, config=config, init=args.init, resume=args.resume)
    print(f"best checkpoint: {best}")
    return EXIT_OK


def _cmd_train_combined(args: argparse.Namespace) -> int:
    from xami.io.config_file import read_config_section
    from xami.train.combined import CombinedTrainConfig, train_combined

    config = read_config_section(args.config, "combined", CombinedTrainConfig)
    best = train_combined(args.data, args.out, detector=args.detector, segmentor=args.segmentor,
                          config=config, resume=args.resume)
    print(f"best checkpoint: {best}")
    return EXIT_OK


# --------------------------------------------------------------------------- predict
def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="find artefacts; write FITS masks, DS9 regions, COCO, PNG")
    p.add_argument("inputs", nargs="+", help="FITS (file.fits[HDU]) or PNG/JPEG files, folders, "
                   "glob patterns, or .txt/.lst list files (one path per line). Images must be "
                   "square: FITS with a side that is a multiple of 512 are rebinned to 512 "
                   "(2048, 1024), and FITS or PNG/JPEG of side 64 to 512 are read as they are")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--detector", type=Path, default=None,
                   help="detector checkpoint or yaml (default: the bundled weights)")
    p.add_argument("--segmentor", type=Path, default=None,
                   help="SAM checkpoint; without it the detector's masks are used")
    p.add_argument("--sam-size", type=int, default=None, choices=(1024, 512),
                   help="segmentor input size (default: the checkpoint's, else 1024, the paper's)")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS,
                   help="onnx (default): ONNX Runtime for the detector and the segmentor (the "
                        "bundled detector's export ships with xami; others are exported once, "
                        "cached next to the weights); torch: PyTorch, needs xami[train]")
    p.add_argument("--quantize", default=None, choices=("int8",),
                   help="with --backend onnx and --segmentor: INT8 segmentor encoder (5-10%% "
                        "faster on an AVX2 CPU, ~99%% of mask pixels unchanged)")
    p.add_argument("--conf", type=float, default=DetectorConfig.conf,
                   help="detector confidence (default %(default)s; the paper's 0.2 gives sparser "
                        "masks)")
    g = p.add_argument_group("instrument priors (xami.priors; all on by default)")
    g.add_argument("--no-priors", action="store_true", help="switch every prior off")
    g.add_argument("--no-central-ring-prior", action="store_true",
                   help="keep every central-ring prediction (default: at most one, at the fixed "
                        "position, proposed there when none is found)")
    g.add_argument("--no-smoke-ring-prior", action="store_true",
                   help="do not rescore smoke rings by a saturated parent radially inward")
    g.add_argument("--no-streak-prior", action="store_true",
                   help="do not rescore read-out streaks or cut them to their visible part")
    g.add_argument("--streak-extent", default="visible", choices=("visible", "column"),
                   help="read-out streaks as the segments where they are visible (default) or the "
                        "full column, as SAS's bitmask marks them")
    p.add_argument("--formats", default=",".join(("fits", "regions", "coco", "png")),
                   help="comma-separated outputs among fits,regions,coco,png (default: all)")
    p.add_argument("--mask-grid", default="frame", choices=("frame", "native"),
                   help="FITS masks on the 512 frame (default) or the input FITS image's grid")
    p.add_argument("--gt", type=Path, default=None,
                   help="ground-truth COCO file: image ids by file name, and evaluate the run")
    p.add_argument("--overwrite", action="store_true", help="redo images already finished")
    p.add_argument("--retry-failed", action="store_true",
                   help="retry images that failed in an earlier run into --out")
    d = p.add_argument_group("Dask (the workers write into --out: a filesystem they share)")
    d.add_argument("--dask", nargs="?", const=LOCAL_CLUSTER, type=_dask_address,
                   metavar="ADDRESS", help="run on a Dask cluster: a local one (no ADDRESS) or "
                   "the scheduler at ADDRESS (tcp://host:8786); put it after the inputs")
    d.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes, one thread each (default: all cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and ONNX Runtime threads of a local run (default: all cores; Dask "
                        "workers use one each)")
    p.set_defaults(func=_cmd_predict)


LOCAL_CLUSTER = "local"


def _prior_config(args: argparse.Namespace) -> PriorConfig | None:
    """The `xami.priors.PriorConfig` of the predict flags (None: every prior off)."""
    from xami.priors import PriorConfig, StreakPrior

    if args.no_priors:
        return None
    default = PriorConfig()
    return PriorConfig(
        central_ring=None if args.no_central_ring_prior else default.central_ring,
        smoke_ring=None if args.no_smoke_ring_prior else default.smoke_ring,
        streak=None if args.no_streak_prior else StreakPrior(extent=args.streak_extent))


def _dask_address(text: str) -> str:
    """``--dask`` value: ``local`` or a scheduler address (not an input swallowed by mistake)."""
    if text == LOCAL_CLUSTER or re.fullmatch(r"(\w+://)?[\w.\-\[\]:]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"not a scheduler address (tcp://HOST:PORT): {text!r}; "
                                     f"put --dask after the inputs or write --dask=ADDRESS")


def _cmd_predict(args: argparse.Namespace) -> int:
    from xami.errors import GroundTruthWarning
    from xami.pipeline import PipelineSpec
    from xami.predict import PredictConfig, dask_client, run_predict

    config = PredictConfig(formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
                           mask_grid=args.mask_grid, overwrite=args.overwrite,
                           retry_failed=args.retry_failed)
    spec = PipelineSpec(args.detector, args.segmentor, sam_size=args.sam_size,
                        backend=args.backend, quantize=args.quantize, conf=args.conf,
                        priors=_prior_config(args))
    if args.threads is not None:
        if args.threads < 1:
            print("xami predict: error: --threads must be >= 1", file=sys.stderr)
            return EXIT_USAGE
        from xami.threads import set_threads

        set_threads(args.threads)
    if args.workers is not None and args.dask != LOCAL_CLUSTER:
        print("xami predict: error: --workers sizes a local cluster: use it with --dask and no "
              "ADDRESS", file=sys.stderr)
        return EXIT_USAGE
    cluster = (contextlib.nullcontext() if args.dask is None else dask_client(
        None if args.dask == LOCAL_CLUSTER else args.dask, workers=args.workers))
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


# --------------------------------------------------------------------------- flag-sources
def _add_flag_sources(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flag-sources", help="flag catalogue sources lying on artefacts")
    p.add_argument("catalogue", type=Path, help="FITS table (e.g. omdetect SRCLIST) or CSV with "
                   "XPOS/YPOS (input-image FITS pixels) or RA/DEC (deg)")
    p.add_argument("--masks", required=True, type=Path, help="NAME.xami.fits from xami predict")
    p.add_argument("--out", required=True, type=Path, help="output table (.csv: CSV, else FITS)")
    p.add_argument("--radius", type=float, default=12.0,
                   help="aperture radius, input-image pixels (default 12, omdetect's)")
    p.set_defaults(func=_cmd_flag_sources)


def _cmd_flag_sources(args: argparse.Namespace) -> int:
    from xami.source_flags import NOT_COVERED, flag_sources

    table = flag_sources(args.catalogue, args.masks, args.out, radius=args.radius)
    flagged = int(((table["XAMI_FLAG"] & ~NOT_COVERED) != 0).sum())
    uncovered = int((table["XAMI_FLAG"] == NOT_COVERED).sum())
    print(f"xami flag-sources: {flagged} of {len(table)} sources on artefacts, {uncovered} not "
          f"covered by the mask grid; wrote {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------------- evaluate, report
def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="COCO AP, precision/recall and IoU of predictions")
    p.add_argument("--gt", required=True, type=Path, help="ground-truth COCO file")
    p.add_argument("--pred", required=True, type=Path, help="COCO results file (predictions)")
    p.add_argument("--out", required=True, type=Path,
                   help="folder for metrics.json, table3.md and plots")
    p.add_argument("--conf", type=float, default=None,
                   help="score threshold for precision/recall and IoU (default: the paper's 0.2, "
                        "xami.eval.evaluate's)")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from xami.eval import evaluate
    from xami.report.evaluation import mask_ap_line, write_evaluation

    threshold = {} if args.conf is None else {"conf": args.conf}
    evaluation = evaluate(args.gt, args.pred, **threshold)
    write_evaluation(args.out, evaluation)
    print(f"xami evaluate: {mask_ap_line(evaluation.metrics)}; wrote {args.out / 'metrics.json'}")
    return EXIT_OK


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one offline HTML page of a prediction run")
    p.add_argument("run_dir", type=Path, help="folder of an `xami predict` run")
    p.add_argument("--max-images", type=_count, default=200,
                   help="overlays shown in the gallery (default 200)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from xami.report.html import write_report

    print(f"xami report: wrote {write_report(args.run_dir, max_images=args.max_images)}")
    return EXIT_OK


# --------------------------------------------------------------------------- weights
def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="official MobileSAM and XAMI checkpoints: list, fetch")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    wsub.add_parser("list", help="the known checkpoints").set_defaults(func=_cmd_weights_list)
    f = wsub.add_parser("fetch", help="download a checkpoint once, checked by its SHA-256")
    f.add_argument("name", help="a name from `xami weights list`, or any name with --url")
    f.add_argument("--url", default=None, help="download from here instead")
    f.add_argument("--sha256", default=None, help="expected SHA-256 (default: the known one)")
    f.add_argument("--out", type=Path, default=None,
                   help="folder (default: $XAMI_CACHE_DIR/weights, ~/.cache/xami/weights)")
    f.set_defaults(func=_cmd_weights_fetch)


def _cmd_weights_list(args: argparse.Namespace) -> int:
    from xami.models.fetch import SOURCES

    for source in SOURCES.values():
        print(f"{source.name:22} {source.what}\n{'':22} {source.url}\n{'':22} SHA-256: "
              f"{source.sha256 or 'not known'}")
    return EXIT_OK


def _cmd_weights_fetch(args: argparse.Namespace) -> int:
    from xami.models.fetch import SOURCES, fetch_weights

    path, digest = fetch_weights(args.name, url=args.url, sha256=args.sha256, folder=args.out)
    known = args.sha256 or getattr(SOURCES.get(args.name), "sha256", None)
    note = "checked" if known else "not checked: none known, --sha256 checks it"
    print(f"xami weights: {path} (SHA-256 {digest}, {note})")
    return EXIT_OK


# --------------------------------------------------------------------------- demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="simulate fields, predict on them with the bundled model, "
                       "evaluate and write the HTML report")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--n", type=int, default=24, help="number of simulated fields (default 24)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from xami.demo import run_demo

    return EXIT_FAILED if run_demo(args.out, n=args.n, seed=args.seed) else EXIT_OK


# --------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The ``xami`` argument parser with every subcommand."""
    parser = _Parser(
        prog="xami", description="Find and mask instrumental artefacts in XMM-OM images.")
    parser.add_argument("--version", action="version", version=f"xami {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_simulate, _add_preprocess, _add_dataset, _add_train, _add_predict,
                _add_flag_sources, _add_evaluate, _add_report, _add_weights, _add_demo):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xami`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, MissingExtraError) as err:
        print(f"xami {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:  # a command module that imports an extra's package
        missing = missing_extra(err, "this command")
        if missing is None:
            raise
        print(f"xami {args.command}: error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    except XamiError as err:
        print(f"xami {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

"""``xami simulate``, ``xami preprocess`` and ``xami dataset``: making and handling datasets."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xami.cli.common import EXIT_FAILED, EXIT_OK, Subcommands, given
from xami.instrument import RELEASED_SIZE


def add_commands(sub: Subcommands) -> None:
    """Add ``simulate``, ``preprocess`` and ``dataset``."""
    for add in (_add_simulate, _add_preprocess, _add_dataset):
        add(sub)


def _add_simulate(sub: Subcommands) -> None:
    """``xami simulate``."""
    p = sub.add_parser("simulate", help="simulate XMM-OM frames with exact artefact masks")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of images (default %(default)s)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: xami.sim.simulate_dataset's)")
    p.add_argument("--fits", action="store_true",
                   help="also write the native 2048x2048 FITS frames with WCS in OUT/fits/")
    p.add_argument("--valid-fraction", type=float, default=None,
                   help="fraction of images in the valid split (default: as released)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores; the output does not depend on it)")
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate a dataset and print its summary."""
    from xami.sim import simulate_dataset

    summary = simulate_dataset(args.out, args.n, fits=args.fits, workers=args.workers,
                               **given(args, "seed", "valid_fraction"))
    print(summary)
    return EXIT_OK


def _add_preprocess(sub: Subcommands) -> None:
    """``xami preprocess``."""
    p = sub.add_parser("preprocess", help="rebin and stretch OM FITS images to 8-bit XAMI frames")
    p.add_argument("inputs", nargs="+", help="FITS files (file.fits[HDU] picks an HDU)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--size", type=int, default=None,
                   help=f"output frame size, pixels (default {RELEASED_SIZE}, as released)")
    p.add_argument("--asinh-a", type=float, default=None,
                   help="Asinh stretch parameter a (default: xami.preprocess.DEFAULT_ASINH_A)")
    p.set_defaults(func=_cmd_preprocess)


def _cmd_preprocess(args: argparse.Namespace) -> int:
    """Preprocess FITS files into frames; name the files that failed."""
    from xami.io.frames import preprocess_files

    failures = preprocess_files(args.inputs, args.out, **given(args, "size", "asinh_a"))
    for path, reason in failures:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _add_dataset(sub: Subcommands) -> None:
    """``xami dataset`` and its subcommands."""
    p = sub.add_parser("dataset", help="dataset tools: stats, convert, split, show, compare")
    dsub = p.add_subparsers(dest="dataset_command", required=True)
    source = "dataset folder (COCO or YOLO layout) or XAMI zip"

    s = dsub.add_parser("stats", help="paper Tables 1 and 2 and distribution plots")
    s.add_argument("data", type=Path, help=source)
    s.add_argument("--out", type=Path, default=None,
                   help="folder for stats.json, tables (Markdown) and plots")
    s.set_defaults(func=_cmd_dataset_stats)

    c = dsub.add_parser("convert", help="convert between the COCO and YOLO-seg layouts")
    c.add_argument("data", type=Path, help=f"source {source}")
    c.add_argument("--to", required=True, dest="layout",
                   help="target layout: one of xami.data.loading.LAYOUTS (coco, yolo)")
    c.add_argument("--out", required=True, type=Path, help="output folder")
    c.set_defaults(func=_cmd_dataset_convert)

    t = dsub.add_parser("split", help="stratified k-fold split (optionally grouped by ObsID)")
    t.add_argument("data", type=Path, help=f"source {source}")
    t.add_argument("--out", required=True, type=Path, help="output folder (COCO layout)")
    t.add_argument("--k", type=int, default=None,
                   help="number of folds (default: xami.data.split_dataset's)")
    t.add_argument("--fold", type=int, default=None,
                   help="which fold is the valid split (default: the first)")
    t.add_argument("--test-fraction", type=float, default=None,
                   help="fraction of images held out as a test split (default: none)")
    t.add_argument("--group-obsid", action="store_true", dest="group_by_obsid",
                   help="keep all images of one ObsID in the same fold")
    t.add_argument("--seed", type=int, default=None,
                   help="random seed (default: xami.data.split_dataset's)")
    t.set_defaults(func=_cmd_dataset_split)

    w = dsub.add_parser("show", help="write PNG overlays of the annotations")
    w.add_argument("data", type=Path, help=source)
    w.add_argument("--out", required=True, type=Path, help="output folder for the PNGs")
    w.add_argument("--n", type=int, default=None,
                   help="number of images (default: xami.report.dataset.show_dataset's)")
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
    """Print the dataset's tables; save them and the plots to ``--out``."""
    from xami.data import compute_stats, load_dataset

    stats = compute_stats(load_dataset(args.data))
    print(stats.to_markdown())
    if args.out is not None:
        from xami.report.dataset import plot_stats

        stats.save(args.out)
        plot_stats(stats, args.out)
    return EXIT_OK


def _cmd_dataset_convert(args: argparse.Namespace) -> int:
    """Write the dataset in the other layout."""
    from xami.data import load_dataset, write_dataset

    write_dataset(load_dataset(args.data), args.out, layout=args.layout)
    return EXIT_OK


def _cmd_dataset_split(args: argparse.Namespace) -> int:
    """Re-split the dataset and write it in the COCO layout."""
    from xami.data import load_dataset, split_dataset, write_dataset

    split = split_dataset(load_dataset(args.data), group_by_obsid=args.group_by_obsid,
                          **given(args, "k", "fold", "test_fraction", "seed"))
    write_dataset(split, args.out, layout="coco")
    return EXIT_OK


def _cmd_dataset_show(args: argparse.Namespace) -> int:
    """Write annotation overlays."""
    from xami.data import load_dataset
    from xami.report.dataset import show_dataset

    written = show_dataset(load_dataset(args.data), args.out, **given(args, "n", "split"))
    print(f"wrote {len(written)} overlays to {args.out}")
    return EXIT_OK


def _cmd_dataset_compare(args: argparse.Namespace) -> int:
    """Print (and save) the artefact statistics of two datasets side by side."""
    from xami.data import load_dataset
    from xami.data.artefact_stats import compare_artefact_stats

    names = tuple((p.parent if p.is_file() and p.suffix != ".zip" else p).resolve().stem
                  for p in (args.a, args.b))  # folder names; a json's folder; a zip's stem
    comparison = compare_artefact_stats(load_dataset(args.a), load_dataset(args.b), names=names)
    print(comparison.to_markdown())
    if args.out is not None:
        comparison.save(args.out)
    return EXIT_OK

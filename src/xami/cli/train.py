"""``xami train``: the detector, the segmentor and the combined stage, each from a YAML recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from xami.cli.common import EXIT_OK, Subcommands, given


def add_commands(sub: Subcommands) -> None:
    """Add ``train`` and its subcommands."""
    p = sub.add_parser("train", help="train the detector, the segmentor or the combined stage")
    tsub = p.add_subparsers(dest="train_command", required=True)

    d = tsub.add_parser("detector", help="train the YOLOv8-seg detector (ultralytics, offline)")
    _common(d, "detector", "YOLO-seg data.yaml, its folder, or an `xami simulate` output folder")
    d.set_defaults(func=_cmd_train_detector)

    s = tsub.add_parser("segmentor", help="fine-tune the segmentor's mask decoder on GT boxes")
    _common(s, "segmentor")
    s.add_argument("--init", type=Path, default=None,
                   help="SAM checkpoint to start from (default: random weights)")
    s.add_argument("--train-encoder", action="store_true",
                   help="train the whole model, encoders too (needed from random weights)")
    s.set_defaults(func=_cmd_train_segmentor)

    c = tsub.add_parser("combined", help="train the decoder on the frozen detector's boxes")
    _common(c, "combined")
    c.add_argument("--detector", required=True, type=Path, help="trained detector checkpoint")
    c.add_argument("--segmentor", required=True, type=Path, help="segmentor checkpoint")
    c.set_defaults(func=_cmd_train_combined)


def _common(parser: argparse.ArgumentParser, section: str,
            data: str = "dataset with train and valid splits (COCO folder, zip, `xami simulate` "
                        "output)") -> None:
    """The options every training stage takes: data, recipe, run folder, resume."""
    parser.add_argument("--data", required=True, type=Path, help=data)
    parser.add_argument("--config", type=Path, default=None,
                        help=f"YAML with a `{section}:` section (default: the paper recipe)")
    parser.add_argument("--out", type=Path, default=Path("runs") / section,
                        help="run folder (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")


def _cmd_train_detector(args: argparse.Namespace) -> int:
    """Train the detector; print its best checkpoint."""
    from xami.io.config_file import read_config_section
    from xami.train.detector import DetectorTrainConfig, train_detector

    config = read_config_section(args.config, "detector", DetectorTrainConfig)
    best = train_detector(args.data, args.out, config=config, resume=args.resume)
    print(f"best checkpoint: {best}")
    return EXIT_OK


def _cmd_train_segmentor(args: argparse.Namespace) -> int:
    """Fine-tune the segmentor; print its best checkpoint."""
    import dataclasses

    from xami.io.config_file import read_config_section
    from xami.train.segmentor import SegmentorTrainConfig, train_segmentor

    config = read_config_section(args.config, "segmentor", SegmentorTrainConfig)
    if args.train_encoder:
        config = dataclasses.replace(config, train_encoder=True)
    best = train_segmentor(args.data, args.out, config=config, resume=args.resume,
                           **given(args, "init"))
    print(f"best checkpoint: {best}")
    return EXIT_OK


def _cmd_train_combined(args: argparse.Namespace) -> int:
    """Train the combined stage; print its best checkpoint."""
    from xami.io.config_file import read_config_section
    from xami.train.combined import CombinedTrainConfig, train_combined

    config = read_config_section(args.config, "combined", CombinedTrainConfig)
    best = train_combined(args.data, args.out, detector=args.detector, segmentor=args.segmentor,
                          config=config, resume=args.resume)
    print(f"best checkpoint: {best}")
    return EXIT_OK

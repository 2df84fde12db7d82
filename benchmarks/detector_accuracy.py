"""Mask and box AP of the pipeline on a COCO split; writes ``results/detector.json``.

Usage::

    xami simulate --out eval200 --n 200 --seed 2 --valid-fraction 1.0
    python benchmarks/detector_accuracy.py --data eval200 [--detector PATH] [--conf C] [--out J]
    python benchmarks/detector_accuracy.py --data eval200 --segmentor SAM.pt --sam-size 512 --out J

The default detector is the bundled one, run through `xami.Pipeline` (detector masks, streaks fitted
to their columns; ``--no-streak-fit`` keeps the detector's streak masks). With ``--segmentor`` the
detector's boxes prompt that SAM checkpoint at ``--sam-size``: two runs with the same checkpoint at
512 and 1024 give the accuracy of the native 512 mode against the paper's 1024 mode. AP is
pycocotools' (COCO definition), per class too.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

from tqdm import tqdm

from xami import __version__
from xami.data import load_dataset
from xami.data.coco import COCO_FILE_NAME
from xami.errors import NoDetectionsWarning
from xami.eval import coco_ap
from xami.io.images import read_frame
from xami.models.build import load_detector, load_segmentor
from xami.models.detector import DetectorConfig
from xami.pipeline import Pipeline
from xami.postprocess import StreakFitConfig
from xami.priors import PriorConfig

RESULTS = Path(__file__).resolve().parent / "results" / "detector.json"


def main(argv: list[str] | None = None) -> int:
    """Evaluate and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (COCO layout)")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--detector", type=Path, default=None, help="default: the bundled one")
    parser.add_argument("--conf", type=float, default=DetectorConfig.conf,
                        help="detector confidence threshold (default: the inference default)")
    parser.add_argument("--no-streak-fit", action="store_true",
                        help="keep the detector's read-out-streak masks")
    parser.add_argument("--no-priors", action="store_true",
                        help="skip the instrument priors (xami.priors)")
    parser.add_argument("--segmentor", type=Path, default=None, help="SAM checkpoint")
    parser.add_argument("--sam-size", type=int, default=None,
                        help="segmentor input (default: the checkpoint's, else 1024)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data)
    segmentor = (None if args.segmentor is None
                 else load_segmentor(args.segmentor, sam_size=args.sam_size, backend="torch"))
    pipeline = Pipeline(load_detector(args.detector), segmentor, conf=args.conf,
                        streak_fit=None if args.no_streak_fit else StreakFitConfig(),
                        priors=None if args.no_priors else PriorConfig())
    warnings.simplefilter("ignore", NoDetectionsWarning)
    results, start = [], time.perf_counter()
    records = dataset.splits[args.split]
    for record in tqdm(records, desc="detect", unit="img"):
        frame = read_frame(dataset.image_path(args.split, record))
        results += pipeline.predict(frame).to_coco(record.image_id)
    seconds = time.perf_counter() - start
    gt_json = Path(dataset.image_dirs[args.split]) / COCO_FILE_NAME
    report = {
        "xami_version": __version__, "machine": platform.processor() or platform.machine(),
        "detector": str(args.detector), "data": str(args.data), "split": args.split,
        "segmentor": None if args.segmentor is None else str(args.segmentor),
        "sam_size": None if args.segmentor is None else args.sam_size,
        "images": len(records), "seconds_per_image": seconds / max(len(records), 1),
        "conf": args.conf, "streak_fit": not args.no_streak_fit, "priors": not args.no_priors,
        "segm": coco_ap(gt_json, results, iou_type="segm"),
        "bbox": coco_ap(gt_json, results, iou_type="bbox"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("images", "seconds_per_image")}),
          "mask AP50 {:.3f} AP75 {:.3f} AP {:.3f}".format(
              report["segm"]["AP50"], report["segm"]["AP75"], report["segm"]["AP"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

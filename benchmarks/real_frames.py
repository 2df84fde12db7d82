"""Score a pipeline configuration on the real dev frames; writes ``results/real_frames.json``.

Usage::

    python benchmarks/real_frames.py [--label NAME] [--detector PATH] [--conf C]
                                     [--realdev DIR] [--json OUT] [--run DIR] [-- PREDICT FLAGS]

Runs ``xami predict ../shared/realdev/images --gt ../shared/realdev/annotations.coco.json
--formats coco`` (``--detector``, ``--conf`` and every flag after ``--`` are passed through) and
scores ``predictions.coco.json`` by calling ``score()`` of ``../shared/tools/realdev_eval.py``,
loaded from its file, so that the numbers are those the tool prints. The scores, the command, the
detector's SHA-256 and the date are stored under ``--label`` in the JSON (other labels kept), and
the tool's one-line summary is printed. ``../shared`` sits beside the repository; a fresh clone
has none: then the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
REALDEV = SHARED / "realdev"
EVAL_TOOL = SHARED / "tools" / "realdev_eval.py"
RESULTS = Path(__file__).resolve().parent / "results" / "real_frames.json"
REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "src" / "xami" / "weights" / "detector.onnx"  # the default backend's file


def _load_tool(path: Path) -> ModuleType:
    """``realdev_eval.py`` imported from its file (its ``score()`` is the one definition)."""
    spec = importlib.util.spec_from_file_location("realdev_eval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _predict_args(realdev: Path | str, run: Path | str, args: argparse.Namespace) -> list[str]:
    """The arguments of ``xami`` for this configuration."""
    cmd = ["predict", f"{realdev}/images", "--out", str(run),
           "--gt", f"{realdev}/annotations.coco.json", "--formats", "coco"]
    if args.conf is not None:
        cmd += ["--conf", str(args.conf)]
    if args.detector is not None:
        cmd += ["--detector", str(args.detector)]
    return cmd + args.predict_flags


def _shown(path: Path) -> str:
    """``path`` relative to the repository root when it is beside it (``../shared/realdev``)."""
    return os.path.relpath(path.resolve(), REPO) if path.is_absolute() else str(path)


def summary_line(scores: dict[str, Any]) -> str:
    """The one-line summary ``realdev_eval.py`` prints, from its ``score()`` result."""
    per = " ".join(f"{k} {v:.2f}" for k, v in scores["ap50"].items())
    rec = " ".join(f"{k} {v:.2f}" for k, v in scores["recall50"].items())
    return (f"real dev frames ({scores['frames']}): class-agnostic box AP50 "
            f"{scores['agnostic_ap50']:.3f} (recall {scores['agnostic_recall50']:.2f}) | box mAP50 "
            f"{scores['mAP50']:.3f} | per class AP50 {per} | recall {rec} | central-ring "
            f"predictions per frame {scores['central_ring_per_frame']:.1f}")


def _score_run(realdev: Path, run: Path, tool: Path) -> dict[str, Any]:
    """Scores of ``run/predictions.coco.json`` by the tool's ``score()``."""
    gt = json.loads((realdev / "annotations.coco.json").read_text())
    preds = json.loads((run / "predictions.coco.json").read_text())
    if isinstance(preds, dict):
        preds = preds.get("annotations", [])
    return _load_tool(tool).score(gt, preds)


def _store(path: Path, label: str, entry: dict[str, Any]) -> None:
    """Merge ``{label: entry}`` into the JSON at ``path`` (other labels kept)."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    table[label] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1) + "\n")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Options; everything after ``--`` goes to ``xami predict``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="bundled", help="name of this configuration in the JSON")
    ap.add_argument("--detector", type=Path, default=None,
                    help="detector checkpoint (default: the bundled weights)")
    ap.add_argument("--conf", type=float, default=None,
                    help="detector confidence (default: xami predict's)")
    ap.add_argument("--realdev", type=Path, default=REALDEV, help=f"default {REALDEV}")
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"default {RESULTS}")
    ap.add_argument("--run", type=Path, default=None,
                    help="keep the xami predict run here (default: a temporary folder)")
    args = ap.parse_args(own)
    args.predict_flags = extra
    return args


def main(argv: list[str] | None = None) -> int:
    """Predict, score, store and print."""
    args = _parse(argv)
    tool = args.realdev.parent / "tools" / "realdev_eval.py"
    if not (args.realdev / "annotations.coco.json").is_file() or not tool.is_file():
        print(f"real_frames: no real development frames at {args.realdev} (or no "
              f"{tool}); nothing measured. They live in ../shared beside the repository.")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or Path(tmp) / "run"
        cmd = [sys.executable, "-m", "xami", *_predict_args(args.realdev, run, args)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        scores = _score_run(args.realdev, run, tool)
    detector = args.detector or BUNDLED
    shown = ["xami", *_predict_args(_shown(args.realdev), "RUN", args)]
    _store(args.json, args.label, {
        **scores, "command": shlex.join(shown), "detector": _shown(detector),
        "detector_sha256": _sha256(detector),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
    print(summary_line(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pipeline speed on the CPU, every mode measured side by side in one process and one run.

Usage::

    python benchmarks/pipeline.py [--n 12] [--repeats 2] [--threads 2] [--predict-n 60]

Writes ``benchmarks/results/pipeline.json`` and ``benchmarks/results/pipeline.md`` (the README's
table).

Modes, on the same simulated 512 frames (PNG files, ~7 artefacts each) and the same MobileSAM
weights (random: no pretrained weights exist here; the arithmetic is the same), the bundled
detector's boxes:

- ``a_paper``: the authors' inference class (``InferXami.run_predict``, reference notes §6.2)
  rewritten here: OpenCV read, ultralytics ``predict`` on the file path, per-image normalisation,
  512 -> 1024 resize, eager PyTorch encoder, all boxes decoded in one batch, masks upsampled,
  ``sigmoid(10 logit) > 0.5``;
- ``b_xami_1024``: xami at 1024 with the PyTorch backend (boxes decoded in chunks);
- ``c_xami_onnx_1024``: xami at 1024 with ONNX Runtime (detector and segmentor);
- ``d_xami_native_512``: xami's native mode, the encoder on the 512 frame;
- ``e_detector_only``: the bundled default, detector only on its default engine (ONNX Runtime:
  the light install's path), with every output file written.

Each mode is built and warmed up on one frame; then the modes take turns on each frame
(``--repeats`` passes), so that drift of the machine's speed falls on all of them alike. Per mode:
median and spread of seconds per image per stage (read, preprocess, detector, encoder, decoder,
post-process: the faint rule, the streak fit and the instrument priors; write), images per second
end to end (without and with writing the per-image outputs: FITS mask, DS9 regions, PNG
overlay), the memory the mode adds at its peak (models, sessions, activations), the encoder's
achieved GFLOP/s, the time as a multiple of the fp32 FLOP floor (157 GFLOP/s), and the agreement
of the masks with mode ``a`` (identical pixels, and mask AP50/AP of the mode's masks with ``a``'s
as the ground truth).

Last, the bundled default end to end as a user runs it over many frames: ``xami predict FRAMES
--out RUN --dask --workers N`` (one process per core; `run_predict` with every output, records,
COCO file and manifest), with each backend, on ``--predict-n`` more frames, timed as
``dask_scaling.py`` times it (`measure_dask`: workers warm, one image predicted each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812  (the usual name)

from dask_scaling import measure_dask  # the sibling benchmark (this folder is on sys.path)
from xami import __version__
from xami.classes import coco_categories
from xami.errors import NoDetectionsWarning
from xami.eval import coco_ap
from xami.io.images import read_frame, write_frame
from xami.models.box_segmentor import SegmentorConfig
from xami.models.build import BACKENDS, bundled_detector, load_detector, load_segmentor
from xami.models.sam import build_sam_vit_t, load_sam_state, read_checkpoint
from xami.models.segmentor import build_segmentor
from xami.pipeline import PipelineSpec
from xami.postprocess import apply_faint_rule, apply_streak_fit
from xami.priors import apply_priors
from xami.products import write_mask_fits, write_regions
from xami.report.overlay import render_overlay, write_png
from xami.sim import simulate_image
from xami.structures import Instances, encode_rle, masks_to_boxes, xyxy_to_xywh
from xami.wcs import MaskGrid

RESULTS = Path(__file__).resolve().parent / "results"
PEAK_GFLOPS = 157.0  # 2 cores x 2.45 GHz x 32 fp32 FLOP/cycle (AVX2 FMA)
ENCODER_GFLOP = {1024: 77.5, 512: 20.6}  # MobileSAM TinyViT, measured (issue 5)
DECODER_GFLOP = {1024: 3.6, 512: 0.9}  # prompt encoder + mask decoder, per box
DETECTOR_GFLOP = 7.0  # yolov8n-seg at 512
STAGES = ("read", "preprocess", "detector", "encoder", "decoder", "postprocess", "write")


def _frames(n: int, out: Path) -> list[Path]:
    """``n`` simulated frames with 5-9 artefacts each, written as PNG files."""
    paths, seed = [], 0
    while len(paths) < n:
        sim = simulate_image(seed)
        seed += 1
        if 5 <= len(sim.labels) <= 9:
            paths.append(out / f"frame{len(paths):03d}.png")
            write_frame(paths[-1], sim.frame)
    return paths


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux ``clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """Peak RSS since the last reset, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _paper_sam(checkpoint: Path) -> torch.nn.Module:
    """MobileSAM as the authors build it: ultralytics' modules, contiguous weights, eval mode."""
    return load_sam_state(build_sam_vit_t(), read_checkpoint(checkpoint)[0], checkpoint)


class PaperBaseline:
    """The authors' ``InferXami.run_predict``, as the reference notes describe it (§4.4, §6.2)."""

    def __init__(self, detector_path: Path, sam: torch.nn.Module) -> None:
        import ultralytics

        self.detector = ultralytics.YOLO(str(detector_path))
        self.sam = sam

    def __call__(self, path: Path, times: dict[str, float]) -> Instances:
        """One image, timed per stage like the modes of xami."""
        t = time.perf_counter()
        bgr = cv2.imread(str(path))
        times["read"] = time.perf_counter() - t
        t = time.perf_counter()
        result = self.detector.predict(str(path), conf=0.2, verbose=False)[0]
        boxes = result.boxes.xyxy.float()
        labels = result.boxes.cls.numpy().astype(np.int64) + 1
        scores = result.boxes.conf.numpy().astype(np.float64)
        times["detector"] = time.perf_counter() - t
        t = time.perf_counter()
        image = torch.from_numpy(bgr).permute(2, 0, 1).float()
        valid = image[image > 0]
        mean, std = valid.mean(), valid.std()
        x = F.interpolate(image[None], size=(1024, 1024), mode="bilinear", antialias=True,
                          align_corners=False)
        covered = F.interpolate((image > 0).float()[None], size=(1024, 1024), mode="bilinear",
                                antialias=True, align_corners=False)
        x = torch.where(covered == 0, torch.zeros(()), (x - mean) / std)
        times["preprocess"] = time.perf_counter() - t
        h, w = bgr.shape[:2]
        if len(boxes) == 0:
            times["encoder"] = times["decoder"] = 0.0
            return Instances.empty(h, w)
        t = time.perf_counter()
        embeddings = self.sam.image_encoder(x)
        times["encoder"] = time.perf_counter() - t
        t = time.perf_counter()
        sparse, dense = self.sam.prompt_encoder(points=None, boxes=boxes * 2, masks=None)
        masks, iou = self.sam.mask_decoder(
            image_embeddings=embeddings, image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
        best = iou.argmax(dim=1)
        low = masks[torch.arange(len(boxes)), best][:, None]
        logits = F.interpolate(low, size=(1024, 1024), mode="bilinear", align_corners=False)
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        soft = torch.sigmoid(10 * logits)
        times["decoder"] = time.perf_counter() - t
        masks_np = (soft > 0.5).numpy()
        return Instances(boxes.numpy().astype(np.float64), masks_np, labels, scores)


class XamiMode:
    """xami's pipeline stages, timed (the same calls `xami.Pipeline.predict` makes).

    Returns the segmentor's masks before xami's post-processing (faint rule, streak fit,
    instrument priors), which the authors' class does not have, so that the masks compare with
    mode ``a``'s.
    """

    def __init__(self, detector: Any, segmentor: Any | None, out: Path) -> None:
        self.detector, self.segmentor, self.out = detector, segmentor, out

    def __call__(self, path: Path, times: dict[str, float]) -> Instances:
        """One image, timed per stage, products written."""
        t = time.perf_counter()
        frame = read_frame(path)
        times["read"] = time.perf_counter() - t
        t = time.perf_counter()
        found = self.detector.predict(frame)
        times["detector"] = time.perf_counter() - t
        if self.segmentor is not None and len(found):
            t = time.perf_counter()
            prepared = self.segmentor.prepare(frame)
            times["preprocess"] = time.perf_counter() - t
            with torch.inference_mode():
                t = time.perf_counter()
                embeddings = self.segmentor.embed(prepared)
                times["encoder"] = time.perf_counter() - t
                t = time.perf_counter()
                logits, _ = self.segmentor.decode(embeddings, found.boxes, frame.shape)
                masks = (logits > self.segmentor.config.mask_threshold).cpu().numpy()
                times["decoder"] = time.perf_counter() - t
            t = time.perf_counter()
            segmented = Instances(found.boxes, masks, found.labels, found.scores)
            found = apply_faint_rule(frame, segmented, found)
            raw = segmented
        else:
            t = time.perf_counter()
            raw = found
        final = apply_priors(frame, apply_streak_fit(frame, found))
        times["postprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        grid = MaskGrid(1, None)
        write_mask_fits(self.out / f"{path.stem}.xami.fits", final, grid, cards={})
        write_regions(self.out / f"{path.stem}.reg", final, grid)
        write_png(render_overlay(frame, final.masks, final.labels, final.scores),
                  self.out / f"{path.stem}.png")
        times["write"] = time.perf_counter() - t
        return raw


Mode = Callable[[Path, dict[str, float]], Instances]


def _rss_mb() -> float:
    """Current RSS of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _build(make: Callable[[], Mode], frame: Path) -> tuple[Mode, float]:
    """Build a mode and warm it up on one frame; the memory it added at its peak (MiB)."""
    before = _rss_mb()
    _reset_peak_rss()
    mode = make()
    mode(frame, {})
    return mode, _peak_rss_mb() - before


def _run_interleaved(modes: dict[str, Mode], frames: list[Path], repeats: int
                     ) -> tuple[dict[str, list[Instances]], dict[str, dict[str, Any]]]:
    """Time every mode on every frame, the modes in turn on each frame (``repeats`` passes).

    Interleaving puts any drift of the machine's speed (other load, clocks) on every mode alike.
    """
    times: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
    outputs: dict[str, list[Instances]] = {name: [] for name in modes}
    for round_ in range(repeats):
        for path in frames:
            for name, mode in modes.items():
                stage_times: dict[str, float] = {}
                start = time.perf_counter()
                found = mode(path, stage_times)
                stage_times["total"] = time.perf_counter() - start
                times[name].append(stage_times)
                if round_ == 0:
                    outputs[name].append(found)
    return outputs, {name: _stats(rows, outputs[name]) for name, rows in times.items()}


def _stats(rows: list[dict[str, float]], outputs: list[Instances]) -> dict[str, Any]:
    """Median and spread per stage, images per second with and without the writing."""
    totals = np.array([r["total"] for r in rows])
    compute = totals - np.array([r.get("write", 0.0) for r in rows])
    per_stage = {s: [r.get(s, 0.0) for r in rows] for s in STAGES}
    return {
        "stages": {s: {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
                       "p90": float(np.percentile(v, 90))} for s, v in per_stage.items()},
        "seconds_per_image": float(np.median(totals)),
        "seconds_per_image_without_writing": float(np.median(compute)),
        "images_per_second": len(totals) / float(totals.sum()),
        "images_per_second_without_writing": len(compute) / float(compute.sum()),
        "boxes_per_image": float(np.mean([len(o) for o in outputs])),
    }


def _agreement(reference: list[Instances], other: list[Instances], tmp: Path) -> dict[str, float]:
    """Identical mask pixels (instances paired by order) and mask AP against ``reference``."""
    same = total = 0
    for ref, out in zip(reference, other, strict=True):
        n = min(len(ref), len(out))
        same += int((ref.masks[:n] == out.masks[:n]).sum())
        total += int(ref.masks[:n].size)
    annotations = []
    for i, ref in enumerate(reference):
        for mask, label in zip(ref.masks, ref.labels, strict=True):
            if mask.any():
                box = xyxy_to_xywh(masks_to_boxes(mask[None]))[0]
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                    "segmentation": encode_rle(mask), "area": int(mask.sum()), "iscrowd": 0,
                    "bbox": [float(v) for v in box]})
    gt = tmp / "reference.coco.json"
    gt.write_text(json.dumps({
        "images": [{"id": i + 1, "file_name": f"{i}.png", "height": ref.image_size[0],
                    "width": ref.image_size[1]} for i, ref in enumerate(reference)],
        "annotations": annotations, "categories": coco_categories()}))
    results = [entry for i, out in enumerate(other) for entry in out.to_coco(i + 1)]
    ap = coco_ap(gt, results, iou_type="segm") if results else {"AP50": 0.0, "AP": 0.0}
    return {"identical_pixels": same / max(total, 1), "mask_AP50_vs_a": ap["AP50"],
            "mask_AP_vs_a": ap["AP"]}


def _floor_gflop(mode: str, boxes: float) -> float:
    """FLOPs an image of the mode needs, GFLOP."""
    if mode.startswith("e_"):
        return DETECTOR_GFLOP
    size = 512 if "512" in mode else 1024
    return ENCODER_GFLOP[size] + DECODER_GFLOP[size] * boxes + DETECTOR_GFLOP


def _markdown(report: dict[str, Any]) -> str:
    """The README's table."""
    head = ("| mode | s / image | images / s | vs a | with outputs: images / s | encoder s | "
            "encoder GFLOP/s | x FLOP floor | identical px vs a | mask AP50 vs a | added RSS MB |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    base = report["modes"]["a_paper"]["images_per_second_without_writing"]
    rows = []
    for name, m in report["modes"].items():
        rows.append(
            f"| {name} | {m['seconds_per_image_without_writing']:.3f} | "
            f"{m['images_per_second_without_writing']:.2f} | "
            f"{m['images_per_second_without_writing'] / base:.2f}x | "
            f"{m['images_per_second']:.2f} | {m['stages']['encoder']['median']:.3f} | "
            f"{m.get('encoder_gflops', float('nan')):.0f} | {m['x_flop_floor']:.1f} | "
            f"{m.get('identical_pixels', 1.0):.4f} | {m.get('mask_AP50_vs_a', 1.0):.3f} | "
            f"{m['added_peak_rss_mb']:.0f} |")
    runs = [f"- `xami predict --backend {r['backend']} --dask --workers {r['workers']}` on "
            f"{r['images']} frames, every output: **{r['images_per_s']:.2f} images/s**"
            for key, r in report.items() if key.startswith("xami_predict_")]
    return head + "\n".join(rows) + "\n\n" + "\n".join(runs) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Time every mode and write the JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="images (default 12)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the images")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--predict-n", type=int, default=60,
                        help="frames of the end-to-end `xami predict` runs (default 60)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="Dask workers of those runs (default: one per core)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", NoDetectionsWarning)

    report: dict[str, Any] = {
        "xami_version": __version__, "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": args.threads, "images": args.n,
        "repeats": args.repeats, "peak_gflops": PEAK_GFLOPS, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        frames = _frames(args.n, tmp / "frames")
        checkpoint = tmp / "sam.pt"
        torch.manual_seed(0)
        torch.save(build_segmentor(SegmentorConfig(sam_size=1024)).checkpoint(), checkpoint)
        detector = load_detector(backend="torch")
        modes: dict[str, Callable[[], Mode]] = {
            "a_paper": lambda: PaperBaseline(bundled_detector("torch"), _paper_sam(checkpoint)),
            "b_xami_1024": lambda: XamiMode(detector, load_segmentor(checkpoint, backend="torch"),
                                            tmp / "b"),
        }
        if "onnx" in BACKENDS:
            modes["c_xami_onnx_1024"] = lambda: XamiMode(
                load_detector(backend="onnx"), load_segmentor(checkpoint, backend="onnx"),
                tmp / "c")
        modes["d_xami_native_512"] = lambda: XamiMode(
            detector, load_segmentor(checkpoint, sam_size=512, backend="torch"), tmp / "d")
        modes["e_detector_only"] = lambda: XamiMode(load_detector(), None, tmp / "e")
        built, memory = {}, {}
        for name, make in modes.items():
            (tmp / name[0]).mkdir(exist_ok=True)
            with torch.inference_mode():
                built[name], memory[name] = _build(make, frames[0])
        with torch.inference_mode():
            outputs, all_stats = _run_interleaved(built, frames, args.repeats)
        for name, stats in all_stats.items():
            stats["added_peak_rss_mb"] = memory[name]
            encoder = stats["stages"]["encoder"]["median"]
            size = 512 if "512" in name else 1024
            if encoder > 0:
                stats["encoder_gflops"] = ENCODER_GFLOP[size] / encoder
                stats["encoder_fraction_of_peak"] = stats["encoder_gflops"] / PEAK_GFLOPS
            floor = _floor_gflop(name, stats["boxes_per_image"]) / PEAK_GFLOPS
            stats["flop_floor_seconds"] = floor
            stats["x_flop_floor"] = stats["seconds_per_image_without_writing"] / floor
            if name != "a_paper" and not name.startswith("e_"):
                stats.update(_agreement(outputs["a_paper"], outputs[name], tmp))
            report["modes"][name] = stats
            print(name, json.dumps({k: round(v, 4) for k, v in stats.items()
                                    if isinstance(v, float)}))
        del built
        predict_frames = _frames(args.predict_n, tmp / "predict_frames")
        for backend in ("torch", "onnx"):
            row = measure_dask([str(f) for f in predict_frames], tmp / f"predict_{backend}",
                               PipelineSpec(backend=backend), args.workers)
            report[f"xami_predict_{backend}"] = {"backend": backend, **row}
            print(f"xami predict --backend {backend} --dask --workers {args.workers}: "
                  f"{row['images_per_s']:.2f} images/s", flush=True)
    base = report["modes"]["a_paper"]["images_per_second_without_writing"]
    report["speedup_vs_a"] = {name: m["images_per_second_without_writing"] / base
                              for name, m in report["modes"].items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(report, indent=1))
    (args.out / "pipeline.md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Images per second of ``xami predict`` on a local Dask cluster of 1, 2, ... workers.

Usage: ``python benchmarks/dask_scaling.py [--n 200] [--workers 1,2] [--inputs DIR]
[--segmentor CKPT --sam-size 512]``; writes ``benchmarks/results/dask.json``. Run it on an
otherwise idle machine: it measures throughput.

The inputs are ``--n`` simulated 2048 x 2048 FITS fields with WCS (``xami simulate --fits``), or
the FITS files of ``--inputs``. Each configuration predicts all of them with the bundled detector
(and ``--segmentor``) and every output format into a fresh folder, and is timed from the call to
`run_predict` to its return (submission, prediction, writing, assembly). Before the timing each
worker builds its models and predicts one image (as in any real run), so the figures are the steady
state a long run sees. The baseline is the same run without Dask, in this process, on one torch
thread (each worker has one). Reported per configuration: images/s, wall seconds, the mean
per-image seconds of the records, and the model loads of each worker (1). Scaling efficiency of N
workers is ``rate(N) / (N * rate(1))``. The cost of 1e5 images is given in core-hours for each
cluster size (one worker is one core): ``1e5 * N / rate(N) / 3600``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from xami import __version__
from xami.errors import NoDetectionsWarning
from xami.io.frames import load_input
from xami.pipeline import PipelineSpec, cached_pipeline, pipeline_loads
from xami.predict import dask_client, expand_inputs, run_predict
from xami.sim import simulate_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "dask.json"


def _warm(spec: PipelineSpec, image: str) -> int:
    """Build the models in the calling thread (a worker's: where its tasks run) and predict one
    image, so that first-call set-up stays out of the timing; the process's load count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        cached_pipeline(spec).predict(load_input(image).frame)
    return pipeline_loads()


def timed_run(inputs: list[str], out: Path, spec: PipelineSpec, **options: Any
              ) -> dict[str, Any]:
    """Wall seconds, images/s and mean per-image seconds of one `run_predict`."""
    start = time.perf_counter()
    summary = run_predict(inputs, out, pipeline=spec, progress=False, **options)
    wall = time.perf_counter() - start
    per_image = [r.seconds for r in summary.records if r.status == "done"]
    return {"images": len(summary.records), "failed": len(summary.failures),
            "wall_s": wall, "images_per_s": len(summary.records) / wall,
            "mean_image_s": sum(per_image) / max(len(per_image), 1)}


def measure_local(inputs: list[str], out: Path, spec: PipelineSpec) -> dict[str, Any]:
    """The run without Dask, on one torch thread, models built beforehand."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _warm(spec, inputs[0])
        return timed_run(inputs, out, spec)
    finally:
        torch.set_num_threads(threads)


def measure_dask(inputs: list[str], out: Path, spec: PipelineSpec, workers: int
                 ) -> dict[str, Any]:
    """The run on a local cluster of ``workers`` processes, one thread each, models warm."""
    with dask_client(workers=workers, dashboard_address=":0") as client:
        client.gather([client.submit(_warm, spec, inputs[0], workers=[address], pure=False)
                       for address in client.nthreads()])
        row = timed_run(inputs, out, spec, client=client)
        row["loads_per_worker"] = sorted(client.run(pipeline_loads).values())
    row["workers"] = workers
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="simulated fields (default 200)")
    ap.add_argument("--workers", default="1,2", help="cluster sizes (default 1,2)")
    ap.add_argument("--inputs", type=Path, default=None, help="folder of FITS files to use")
    ap.add_argument("--segmentor", type=Path, default=None, help="SAM checkpoint (default: none)")
    ap.add_argument("--sam-size", type=int, default=1024, help="segmentor input size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sizes = [int(w) for w in args.workers.split(",")]
    spec = PipelineSpec(segmentor=args.segmentor, sam_size=args.sam_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.inputs is None:
            simulate_dataset(root / "sim", args.n, seed=args.seed, fits=True,
                             workers=os.cpu_count() or 1)
        inputs = expand_inputs([args.inputs or root / "sim" / "fits"])
        local = measure_local(inputs, root / "local", spec)
        print(f"local: {local['images_per_s']:.2f} images/s", flush=True)
        rows = {}
        for workers in sizes:
            rows[str(workers)] = measure_dask(inputs, root / f"dask{workers}", spec, workers)
            print(f"{workers} workers: {rows[str(workers)]['images_per_s']:.2f} images/s",
                  flush=True)
    one = rows.get("1", {}).get("images_per_s")
    result = {
        "xami_version": __version__, "date": datetime.now(timezone.utc).isoformat(),
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "load_average_after": os.getloadavg(),
        "inputs": f"{len(inputs)} FITS files, all formats, bundled detector",
        "segmentor": None if args.segmentor is None else {"path": str(args.segmentor),
                                                          "sam_size": args.sam_size},
        "local": local, "dask": rows,
        "scaling_efficiency": {w: r["images_per_s"] / (int(w) * one) for w, r in rows.items()}
        if one else None,
        "core_hours_per_1e5_images": {w: 1e5 * int(w) / r["images_per_s"] / 3600
                                      for w, r in rows.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"scaling efficiency {result['scaling_efficiency']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

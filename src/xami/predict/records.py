"""The files of a run: per-image records (the resume state), output names, the manifest."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xami.classes import CLASSES, ArtefactClass
from xami.errors import GroundTruthWarning, XamiError, clean_message
from xami.io.atomic import atomic_path, write_text_atomic

FORMATS: tuple[str, ...] = ("fits", "regions", "coco", "png")
"""Output formats of `run_predict` (``coco`` is the run's ``predictions.coco.json``)."""


_SUFFIX = {"fits": ".xami.fits", "regions": ".reg", "png": ".png"}


LOCAL_WORKER = "local"
"""The ``worker`` of images predicted without Dask."""


def _outputs(name: str, formats: Sequence[str]) -> dict[str, str]:
    """Per-image output file names (relative to the run folder) of the requested formats."""
    return {f: name + _SUFFIX[f] for f in formats if f in _SUFFIX}


def _read_record(path: Path) -> dict[str, Any] | None:
    """An earlier run's record, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Write ``records/NAME.json``: the last file of an image, which marks it finished."""
    write_text_atomic(out_dir / "records" / f"{record['name']}.json", json.dumps(record) + "\n")


def _failed(spec: str, name: str, reason: str) -> dict[str, Any]:
    """The record of an input that failed."""
    return {"input": spec, "name": name, "status": "failed", "reason": reason, "seconds": 0.0,
            "outputs": {}, "instances": [], "coco": [], "worker": None}


def _retry_hint(record: dict[str, Any]) -> dict[str, Any]:
    """The reason of an earlier run's failure, reused, with how to retry it."""
    if record.get("status") != "failed":
        return {}
    return {"reason": f"{record['reason']} (failed in an earlier run into this folder; "
                      f"--retry-failed retries it)"}


def coco_image_ids(records: Sequence[dict[str, Any]], gt_ids: dict[str, int] | None,
                   gt: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """COCO ``image_id`` of every record's ``name``: the ground truth's, by file name without
    extension, else an id of its own after the ground truth's largest (1..N without one).

    Inputs the ground truth lacks are named in a `xami.errors.GroundTruthWarning`.
    """
    if gt_ids is None:
        return {r["name"]: i for i, r in enumerate(records, start=1)}
    unmatched = [r["name"] for r in records if r["name"] not in gt_ids]
    first = max(gt_ids.values(), default=0) + 1
    ids = {**gt_ids, **{name: i for i, name in enumerate(unmatched, start=first)}}
    if unmatched:
        what = ("no input matches an image of the ground truth" if len(unmatched) == len(records)
                else f"{len(unmatched)} of {len(records)} inputs have no image in the ground truth")
        warnings.warn(f"{what} {gt} (by file name without extension): {', '.join(unmatched)}; "
                      f"their predictions have image ids {first} and up and are not evaluated",
                      GroundTruthWarning, stacklevel=3)
    return ids


def _reason(spec: str, err: Exception) -> str:
    """One line naming the input and the problem."""
    named = isinstance(err, XamiError) and getattr(err, "path", "") is not None
    return clean_message(str(err) if named else f"{spec}: {err}")


def write_manifest(records: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> Path:
    """Write the run manifest: one row per input, as Parquet (CSV when pyarrow is absent).

    Columns: ``input``, ``name``, ``status`` (``done`` or ``failed``), ``reason`` (of a
    failure), ``n_<class>`` (instances of each class, ``-`` as ``_``), ``seconds``, ``worker``
    (``local`` or a Dask worker's address), and ``fits``, ``regions``, ``png`` (output files
    relative to the run folder; empty when not written).

    Parameters
    ----------
    records : sequence of dict
        The run's records (`RunSummary.records`).
    out_dir : str or os.PathLike
        Run folder.

    Returns
    -------
    pathlib.Path
        ``out_dir/manifest.parquet`` or ``out_dir/manifest.csv``.
    """
    rows = [_manifest_row(record) for record in records]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        path = Path(out_dir) / "manifest.csv"
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(path, text.getvalue())
        return path
    types = {"seconds": pa.float64(), **{_count_column(c): pa.int64() for c in CLASSES}}
    schema = pa.schema([(key, types.get(key, pa.string())) for key in rows[0]])
    path = Path(out_dir) / "manifest.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    return path


def _count_column(cls: ArtefactClass) -> str:
    """Manifest column of a class's instance count."""
    return "n_" + cls.name.replace("-", "_")


def _manifest_row(record: dict[str, Any]) -> dict[str, Any]:
    """The manifest row of one record."""
    counts = Counter(i["class"] for i in record["instances"])
    return {"input": record["input"], "name": record["name"], "status": record["status"],
            "reason": record["reason"], **{_count_column(c): counts[c.name] for c in CLASSES},
            "seconds": record["seconds"], "worker": record.get("worker"),
            **{f: record["outputs"].get(f) for f in _SUFFIX}}

"""The run manifest: one row per input, as Parquet (CSV when pyarrow is absent)."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xami.classes import CLASSES, ArtefactClass
from xami.io.atomic import atomic_path, write_text_atomic
from xami.predict.image_result import OUTPUT_SUFFIXES, ImageResult


def write_manifest(records: Sequence[ImageResult], out_dir: str | os.PathLike[str]) -> Path:
    """Write the run manifest: one row per input, as Parquet (CSV when pyarrow is absent).

    Columns: ``input``, ``name``, ``status`` (``done`` or ``failed``), ``reason`` (of a
    failure), ``n_<class>`` (instances of each class, ``-`` as ``_``), ``seconds``, ``worker``
    (``local`` or a Dask worker's address), and ``fits``, ``regions``, ``png`` (output files
    relative to the run folder; empty when not written).

    Parameters
    ----------
    records : sequence of ImageResult
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


def _manifest_row(record: ImageResult) -> dict[str, Any]:
    """The manifest row of one record."""
    counts = Counter(i["class"] for i in record.instances)
    return {"input": record.input, "name": record.name, "status": record.status,
            "reason": record.reason, **{_count_column(c): counts[c.name] for c in CLASSES},
            "seconds": record.seconds, "worker": record.worker,
            **{f: record.outputs.get(f) for f in OUTPUT_SUFFIXES}}

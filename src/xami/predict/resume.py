"""When an earlier record may stand for an input: the same file content, the same settings.

A record keeps the SHA-256 of its input's bytes (``input_sha256``, with a PNG/JPEG frame's
sidecar) and of the settings that shaped its outputs (``settings_sha256``: the models' SHA-256,
the thresholds, backend, priors... as ``run.json`` states them, the formats and the mask grid).
A rerun reuses a record only when both are unchanged; otherwise it redoes the image and says why.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xami.io.atomic import file_sha256
from xami.io.frames import input_files
from xami.predict.config import PredictConfig
from xami.predict.image_result import FAILED, ContentKey, ImageResult, output_files

SETTINGS_CHANGED = "settings changed"
INPUT_CHANGED = "input changed"
OUTPUTS_MISSING = "outputs missing"
NO_KEY = "earlier record has no content key"
OVERWRITE = "overwrite asked"
RETRY = "failed before, retried"


def settings_sha256(prov: dict[str, Any], config: PredictConfig) -> str:
    """SHA-256 of what shapes an image's outputs: models (by content), settings, formats, grid."""
    models = {role: model and model["sha256"] for role, model in prov["models"].items()}
    shaping = {"models": models, "settings": prov["settings"],
               "formats": sorted(config.formats), "mask_grid": config.mask_grid}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def input_sha256(spec: str) -> str | None:
    """SHA-256 of the bytes of an input's files (None when one cannot be read)."""
    digest = hashlib.sha256()
    try:
        for path in input_files(spec):
            digest.update(file_sha256(path).encode())
    except OSError:
        return None
    return digest.hexdigest()


def redo_reason(record: ImageResult | None, spec: str, key: ContentKey, out_dir: Path,
                config: PredictConfig) -> str | None:
    """Why an earlier record cannot stand for this input in this run (None: it can; "" : none).

    Parameters
    ----------
    record : ImageResult or None
        The earlier record of the input's output name (None: there is none).
    spec : str
        The input.
    key : ContentKey
        What this run makes the input's outputs from.
    out_dir : pathlib.Path
        The run folder.
    config : PredictConfig
        Formats, overwrite and retry behaviour.

    Returns
    -------
    str or None
        None when the record stands; ``""`` when the input is new here; else the reason it is
        redone (``settings changed``, ``input changed``, ``outputs missing``...).
    """
    if record is None:
        return ""
    if config.overwrite:
        return OVERWRITE
    if record.key is None:
        return NO_KEY
    if record.key.settings_sha256 != key.settings_sha256:
        return SETTINGS_CHANGED
    if record.input != spec or record.key.input_sha256 != key.input_sha256:
        return INPUT_CHANGED
    if record.status == FAILED:
        return RETRY if config.retry_failed else None
    wanted = output_files(record.name, config.formats)
    if record.outputs != wanted or not all((out_dir / rel).is_file() for rel in wanted.values()):
        return OUTPUTS_MISSING
    return None


def redone_line(records: Sequence[ImageResult]) -> str:
    """``3 redone: settings changed, 1 redone: input changed`` (empty when none was redone)."""
    counts = Counter(r.redone for r in records if r.redone)
    return ", ".join(f"{n} redone: {why}" for why, n in counts.most_common())

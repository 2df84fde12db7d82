"""``xami weights fetch NAME``: the official MobileSAM and XAMI checkpoints, downloaded once.

Files go to ``$XAMI_CACHE_DIR/weights`` (default ``~/.cache/xami/weights``), are written
atomically (nothing half-downloaded is ever left under the final name) and are checked against
their SHA-256 when one is known. No SHA-256 of these releases could be recorded here (this
project's machines have no access to them); a fetch without a known one prints the file's
digest, to be recorded with ``--sha256`` on the next machine.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from xami.cache import cache_dir
from xami.errors import DownloadError, UsageError
from xami.io.atomic import atomic_path, file_sha256

_XAMI_HF = "https://huggingface.co/iulia-elisa/XAMI-model/resolve/main"


@dataclass(frozen=True)
class WeightsSource:
    """Where one checkpoint is published.

    Attributes
    ----------
    name : str
        Its name for ``xami weights fetch``.
    url : str
        Download address.
    sha256 : str or None
        SHA-256 of the file (64 hex digits); None where it is not known.
    what : str
        One line for ``xami weights list``.
    """

    name: str
    url: str
    sha256: str | None
    what: str


SOURCES = {s.name: s for s in (
    WeightsSource("mobile_sam", "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/"
                  "mobile_sam.pt", None, "official MobileSAM (vit_t), the paper's SAM start"),
    WeightsSource("xami-yolov8-sam", f"{_XAMI_HF}/yolov8_sam_weights/yolov8_sam.pth", None,
                  "XAMI MobileSAM fine-tuned on YOLOv8 boxes (path from the reference notes)"),
    WeightsSource("xami-yolov8-detector", f"{_XAMI_HF}/yolov8_detect_300e_best.pt", None,
                  "XAMI YOLOv8n-seg detector, 300 epochs (path from the reference notes)"),
    WeightsSource("xami-rtdetr-sam", f"{_XAMI_HF}/rtdetr_sam_weights/rtdetr_sam.pth", None,
                  "XAMI MobileSAM fine-tuned on RT-DETR boxes (path from the reference notes)"),
    WeightsSource("xami-rtdetr-detector", f"{_XAMI_HF}/rtdetr_detect_300e_best.pt", None,
                  "XAMI RT-DETR-L detector, 300 epochs (path from the reference notes)"),
)}
"""Known checkpoints by name. The XAMI paths follow the release names in the reference notes
(``{det}_sam_weights/{det}_sam.pth``, ``{det}_detect_300e_best.pt``); none could be checked from
here, so ``--url`` overrides any of them."""


def weights_folder() -> Path:
    """Where fetched weights live: ``$XAMI_CACHE_DIR/weights`` (default ``~/.cache/xami``)."""
    return cache_dir() / "weights"


def fetch_weights(name: str, *, url: str | None = None, sha256: str | None = None,
                  folder: str | os.PathLike[str] | None = None,
                  timeout: float = 60.0) -> tuple[Path, str]:
    """Download a known checkpoint once (atomically, checked against its SHA-256).

    Parameters
    ----------
    name : str
        A key of `SOURCES`, or any name for a file given by ``url``.
    url : str, optional
        Download from here instead (``https://``, ``file://``...).
    sha256 : str, optional
        Expected SHA-256 (64 hex digits), instead of the known one.
    folder : str or os.PathLike, optional
        Where to put the file (default: `weights_folder`).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        The file; one already there with the expected digest is not downloaded again.
    str
        Its SHA-256.

    Raises
    ------
    xami.errors.UsageError
        Unknown ``name`` without ``url``, or ``sha256`` is not 64 hex digits.
    xami.errors.DownloadError
        The server cannot be reached (offline) or answers with an error, or the download's
        SHA-256 is not the expected one (the download is deleted).

    Examples
    --------
    >>> path, digest = fetch_weights("mobile_sam")  # doctest: +SKIP
    """
    source = SOURCES.get(name)
    if source is None and url is None:
        raise UsageError(None, f"unknown weights {name!r}: choose among {', '.join(SOURCES)} "
                               "or give --url")
    url = url or source.url
    expected = (sha256 or (source.sha256 if source else None) or "").lower() or None
    if expected is not None and (len(expected) != 64 or set(expected) - set("0123456789abcdef")):
        raise UsageError(None, f"sha256 must be 64 hex digits, got {expected!r}")
    target = Path(folder or weights_folder()) / Path(urlparse(url).path).name
    if target.is_file():
        present = file_sha256(target)
        if expected in (None, present):
            return target, present
    with atomic_path(target) as tmp:
        digest = _download(url, tmp, timeout)
        if expected is not None and digest != expected:
            raise DownloadError(f"{url}: SHA-256 mismatch: expected {expected}, got {digest}; "
                                "the download was deleted")
    return target, digest


def _download(url: str, path: Path, timeout: float) -> str:
    """Copy ``url`` to ``path``; return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: the server answered {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: cannot be downloaded ({reason}); offline? fetch it on a "
                            "machine with network access and copy it into "
                            f"{path.parent}") from None
    return digest.hexdigest()


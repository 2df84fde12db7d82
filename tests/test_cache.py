"""xami's cache: exported files beside their checkpoint, or under $XAMI_CACHE_DIR when read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from xami.cache import export_folder, file_key
from xami.io.atomic import file_sha256

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def can_write(folder: Path) -> bool:
    """Whether a file can be created in ``folder``."""
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.fixture
def read_only(tmp_path) -> Iterator[Path]:
    """A folder no one can write to: chmod, or for root ``chattr +i`` (skips if impossible)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept")
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
    try:
        if can_write(folder):
            pytest.skip("cannot make a read-only folder here")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_cache_falls_back_to_xami_cache_dir(read_only, tmp_path, monkeypatch):
    monkeypatch.setenv("XAMI_CACHE_DIR", str(tmp_path / "cache"))
    assert export_folder(read_only / "kept.txt", ["kept.txt.x.onnx"]) == tmp_path / "cache" / "onnx"
    assert export_folder(read_only / "kept.txt", ["kept.txt"]) == read_only  # present: used there
    assert export_folder(tmp_path / "w.pt", ["w.pt.x.onnx"]) == tmp_path  # writable: beside


def test_file_key_is_the_sha256_prefix(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"weights")
    assert file_key(path) == file_sha256(path)[:16] == "9a129038d9a00aed"

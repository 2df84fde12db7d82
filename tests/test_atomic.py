"""Atomic writes: complete files only, usual permissions, nothing left on failure."""

from __future__ import annotations

import os

import pytest

from xami.io.atomic import atomic_path, write_text_atomic

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def test_write_creates_parents_and_content(tmp_path):
    target = tmp_path / "a" / "b.txt"
    write_text_atomic(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]

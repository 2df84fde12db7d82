"""Shared, seeded, tiny fixtures; every test builds its own data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (seed 0)."""
    return np.random.default_rng(0)


@pytest.fixture
def chromium(tmp_path) -> Callable[..., str]:
    """Headless Chromium with a throw-away profile (the test skips without it); returns stdout."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")

    def run(*args: str) -> str:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
               *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              check=True).stdout

    return run

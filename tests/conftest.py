"""Shared, seeded, tiny fixtures; every test builds its own data."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (seed 0)."""
    return np.random.default_rng(0)

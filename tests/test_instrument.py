"""Tests of xami.instrument: the coverage convention of OM images and XAMI frames."""

from __future__ import annotations

import numpy as np
import pytest

from xami.instrument import coverage_mask

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def test_coverage_mask() -> None:
    data = np.array([[0.0, np.nan, np.inf], [-2.0, 1e-9, 7.0]])
    assert coverage_mask(data).tolist() == [[False, False, False], [True, True, True]]
    assert coverage_mask(np.array([[0, 1], [255, 0]], np.uint8)).tolist() == [[False, True],
                                                                           [True, False]]

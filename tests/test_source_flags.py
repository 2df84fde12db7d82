"""``xami flag-sources``: sources off the mask grid, unusable positions, radius, output path."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from xami.cli import main
from xami.errors import InputError, UsageError
from xami.products import write_mask_fits
from xami.source_flags import NOT_COVERED, flag_sources
from xami.structures import Instances
from xami.wcs import MaskGrid

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


@pytest.fixture
def masks(tmp_path):
    """A 64x64 mask file (no WCS) with a read-out streak in FITS columns 11-12."""
    mask = np.zeros((1, 64, 64), bool)
    mask[0, :, 10:12] = True
    path = tmp_path / "m.xami.fits"
    write_mask_fits(path, Instances.from_masks(mask, [3], [0.9]), MaskGrid(1, None), cards={})
    return path


def test_sources_off_the_grid_are_not_covered(tmp_path, masks, capsys):
    # on the streak, far from it, left of the grid, above it, and without a position
    Table({"XPOS": [11.0, 40.0, -30.0, 20.0, np.nan],
           "YPOS": [30.0, 30.0, 30.0, 90.0, 5.0]}).write(tmp_path / "c.csv")
    table = flag_sources(tmp_path / "c.csv", masks, tmp_path / "o.csv", radius=2.0)
    assert table["XAMI_FLAG"].tolist() == [2, 0, NOT_COVERED, NOT_COVERED, NOT_COVERED]
    assert all(table["XAMI_FLAG"][2:] & 0b1111_1111_1111 == 0)  # no class bit set
    assert table["XAMI_CLASS"].tolist() == ["read-out-streak", "", "", "", ""]
    assert np.isnan(table["XAMI_OVERLAP"][2:]).all() and table["XAMI_OVERLAP"][1] == 0
    assert main(["flag-sources", str(tmp_path / "c.csv"), "--masks", str(masks), "--out",
                 str(tmp_path / "o2.csv"), "--radius", "2"]) == 0
    assert ("1 of 5 sources on artefacts, 3 not covered by the mask grid"
            in capsys.readouterr().out)


def test_text_positions_are_a_reason(tmp_path, masks, capsys):
    (tmp_path / "c.csv").write_text("XPOS,YPOS\n11,30\nleft,30\n")
    with pytest.raises(InputError, match=r"c\.csv: column XPOS holds values that are not "
                                         r"numbers \('left'\)"):
        flag_sources(tmp_path / "c.csv", masks, tmp_path / "o.csv")
    assert main(["flag-sources", str(tmp_path / "c.csv"), "--masks", str(masks), "--out",
                 str(tmp_path / "o.csv")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("radius", ["inf", "nan", "0", "-1"])
def test_radius_must_be_finite_and_positive(tmp_path, masks, capsys, radius):
    Table({"XPOS": [11.0], "YPOS": [30.0]}).write(tmp_path / "c.csv")
    with pytest.raises(UsageError, match="radius must be a positive finite number"):
        flag_sources(tmp_path / "c.csv", masks, tmp_path / "o.csv", radius=float(radius))
    assert main(["flag-sources", str(tmp_path / "c.csv"), "--masks", str(masks), "--out",
                 str(tmp_path / "o.csv"), "--radius", radius]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_out_cannot_be_the_mask_file_or_the_catalogue(tmp_path, masks, capsys):
    Table({"XPOS": [11.0], "YPOS": [30.0]}).write(tmp_path / "c.fits")
    before = masks.read_bytes(), (tmp_path / "c.fits").read_bytes()
    for out in (masks, tmp_path / "." / masks.name, tmp_path / "c.fits"):
        with pytest.raises(UsageError, match="would overwrite"):
            flag_sources(tmp_path / "c.fits", masks, out)
        assert main(["flag-sources", str(tmp_path / "c.fits"), "--masks", str(masks),
                     "--out", str(out)]) == 2
    assert (masks.read_bytes(), (tmp_path / "c.fits").read_bytes()) == before

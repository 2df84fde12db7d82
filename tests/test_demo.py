"""The README's main job runs end to end on two simulated fields."""

from __future__ import annotations

import json

from xami.cli import main


def test_demo_writes_every_output(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n", "2", "--seed", "3"]) == 0
    fits = sorted((tmp_path / "sim" / "fits").glob("*.fits"))
    frames = sorted((tmp_path / "preprocessed").glob("*.png"))
    assert len(fits) == 2 and [p.stem for p in frames] == [p.stem for p in fits]
    sidecar = json.loads(frames[0].with_suffix(".json").read_text())
    assert sidecar["rebin_factor"] == 4 and sidecar["wcs"] is not None
    assert (tmp_path / "stats" / "stats.json").is_file()
    assert len(list((tmp_path / "overlays").glob("*.png"))) == 2
    printed = capsys.readouterr().out
    assert "| Class | train | valid |" in printed and "bundled detector" in printed
    assert len(list((tmp_path / "detections").glob("*.png"))) == 2

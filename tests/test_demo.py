"""The README's main job runs end to end: simulate, predict with --gt, report."""

from __future__ import annotations

import json

from xami.cli import main


def test_demo_predicts_evaluates_and_reports(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n", "2", "--seed", "3"]) == 0
    fits = sorted((tmp_path / "sim" / "fits").glob("*.fits"))
    assert len(fits) == 2
    run = tmp_path / "run"
    for path in fits:
        name = path.name.removesuffix(".fits")
        for suffix in (".xami.fits", ".reg", ".png"):
            assert (run / f"{name}{suffix}").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["images"] == 2
    assert (run / "report.html").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "2 images (2 done, 0 failed)" in printed and "mask AP50" in printed
    assert f"report: {(run / 'report.html').resolve()}" in printed

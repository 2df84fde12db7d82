"""The README's main job runs end to end: simulate, predict with --gt, report."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from xami.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["demo", "--out", str(out), "--n", "2", "--seed", "3"])
    return out, code, printed.getvalue()


def test_demo_predicts_evaluates_and_reports(demo):
    out, code, printed = demo
    assert code == 0
    fits = sorted((out / "sim" / "fits").glob("*.fits"))
    assert len(fits) == 2
    run = out / "run"
    for path in fits:
        name = path.name.removesuffix(".fits")
        for suffix in (".xami.fits", ".reg", ".png"):
            assert (run / f"{name}{suffix}").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["images"] == 2
    assert (run / "report.html").stat().st_size > 10_000
    assert "2 images (2 done, 0 failed)" in printed and "mask AP50" in printed
    assert f"report: {(run / 'report.html').resolve()}" in printed


def test_demo_report_opens_in_headless_chromium(demo, chromium):
    out, _, _ = demo
    dom = chromium("--dump-dom", (out / "run" / "report.html").resolve().as_uri())  # 2 + 2 plots
    assert 'data-images-total="4"' in dom and 'data-images-decoded="4"' in dom
    assert "mask (segm)" in dom and "Mean mask IoU" in dom

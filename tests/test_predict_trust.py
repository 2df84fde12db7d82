"""``xami predict`` trusted as a hostile user would try it: resume keyed on content and settings,
its own products never inputs, bad inputs one reason each, output-side errors, concurrent runs."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from xami.cli import main
from xami.io import atomic
from xami.io.images import write_frame
from xami.pipeline import PipelineSpec
from xami.predict import PredictConfig, run_predict
from xami.sim import simulate_image


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Two small simulated frames (seeds 3 and 4)."""
    return [simulate_image(seed).frame for seed in (3, 4)]


def _records(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (out / "records").glob("*.json")}


def test_resume_redoes_images_whose_settings_or_content_changed(tmp_path, frames):
    folder, out = tmp_path / "in", tmp_path / "out"
    for i, frame in enumerate(frames):
        write_frame(folder / f"f{i}.png", frame)
    config = PredictConfig(formats=("fits",))

    def run(conf: float):  # priors off: their proposals carry fixed scores below any conf
        return run_predict([folder], out, pipeline=PipelineSpec(conf=conf, priors=None),
                           config=config, progress=False)

    first = run(0.2)
    assert "redone" not in first.line()
    before = _records(out)
    assert "redone" not in run(0.2).line() and _records(out) == before  # same: reused
    stricter = run(0.9)
    assert "2 redone: settings changed" in stricter.line()
    assert all(i["score"] >= 0.9 for r in stricter.records for i in r.instances)
    kept = _records(out)["f0.json"]
    write_frame(folder / "f1.png", np.roll(frames[1], 50, axis=0))
    changed = run(0.9)
    assert "1 redone: input changed" in changed.line() and "settings" not in changed.line()
    assert _records(out)["f0.json"] == kept
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["settings"]["conf"] == 0.9


def test_own_products_are_never_inputs(tmp_path, frames, capsys):
    folder = tmp_path / "in"
    write_frame(folder / "f.png", frames[0])
    run = folder / "run"  # --out inside the inputs, found again by a recursive glob
    for _ in range(2):
        assert main(["predict", str(folder / "**" / "*.png"), "--out", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["summary"]["images"] == 1
    same = tmp_path / "same"  # --out the input folder itself
    write_frame(same / "g.png", frames[1])
    for _ in range(2):
        assert main(["predict", str(same), "--out", str(same), "--formats", "fits,regions"]) == 0
    assert [r["input"] for r in json.loads((same / "run.json").read_text())["images"]] == [
        str(same / "g.png")]
    capsys.readouterr()
    assert main(["predict", str(same / "g.xami.fits"), "--out", str(tmp_path / "x")]) == 1
    assert "an xami product" in capsys.readouterr().err


def test_every_bad_input_gets_a_reason_and_the_rest_is_done(tmp_path, frames, capsys):
    folder = tmp_path / "in"
    write_frame(folder / "good.png", frames[0])
    (folder / "loop.fits").symlink_to(folder / "loop.fits")
    (folder / "x.fits").mkdir()
    (folder / "x.fits" / "inner.txt").write_text("not an image\n")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    code = main(["predict", str(folder), str(folder / "*.jpg"), str(tmp_path / "empty"),
                 "--out", str(out), "--formats", "fits"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 4 and all(line.startswith("failed: ") for line in err), err
    for what in ("loop.fits", "x.fits", "*.jpg", "empty"):
        assert sum(what in line for line in err) == 1, (what, err)
    assert (out / "good.xami.fits").is_file()
    summary = json.loads((out / "run.json").read_text())["summary"]
    assert (summary["done"], summary["failed"]) == (1, 4)


def test_output_folder_checked_up_front(tmp_path, frames, capsys):
    write_frame(tmp_path / "f.png", frames[0])
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        assert main(["predict", str(tmp_path / "f.png"), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "output folder" in err[0] and "Traceback" not in err[0]


def test_a_write_failure_is_the_outputs_fault_not_the_inputs(tmp_path, frames, monkeypatch,
                                                             capsys):
    write_frame(tmp_path / "in" / "f.png", frames[0])
    out = tmp_path / "out"
    replace = os.replace

    def disk_full(src, dst):
        if str(dst).endswith(".reg"):
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    assert main(["predict", str(tmp_path / "in"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "f.reg" in err and "output" in err
    monkeypatch.undo()
    assert main(["predict", str(tmp_path / "in"), "--out", str(out)]) == 0  # no --retry-failed
    assert (out / "f.reg").is_file()


def test_cleanup_leaves_other_runs_temporary_files(tmp_path, frames):
    write_frame(tmp_path / "in" / "f.png", frames[0])
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    others = [out / ".g.xami.fits.b7e1c0.tmp", out / "records" / ".g.json.b7e1c0.tmp"]
    for other in others:
        other.write_bytes(b"another run, still writing")
    run_predict([tmp_path / "in"], out, pipeline=PipelineSpec(), progress=False,
                config=PredictConfig(formats=("fits",)))
    assert all(other.is_file() for other in others)
    assert not [p for p in out.rglob(".*") if p not in others]  # its own are gone


def test_a_folder_of_every_bad_input_and_good_ones(tmp_path, frames, capsys):
    """Issue 12's acceptance: one line per bad input, every good one done, nothing outside."""
    from astropy.io import fits

    folder = tmp_path / "in"
    write_frame(folder / "good.png", frames[0])
    write_frame(folder / "my field Ω.png", frames[1])
    (folder / "truncated.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    (folder / "text.fits").write_text("not a FITS file\n")
    fits.PrimaryHDU(np.full((64, 64), np.nan, np.float32)).writeto(folder / "nan.fits")
    fits.PrimaryHDU(np.zeros((513, 700), np.float32)).writeto(folder / "odd.fits")
    write_frame(folder / "tiny.png", frames[0][:10, :10])
    (folder / "loop.fits").symlink_to(folder / "loop.fits")
    (folder / "x.fits").mkdir()
    out = tmp_path / "out"
    outside = sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(out))
    code = main(["predict", str(folder), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    bad = ("truncated.fits", "text.fits", "nan.fits", "odd.fits", "tiny.png", "loop.fits",
           "x.fits")
    assert len(err) == len(bad) and all(line.startswith("failed: ") for line in err), err
    assert not any("Traceback" in line for line in err)
    for name in bad:
        assert sum(name in line for line in err) == 1, (name, err)
    for name in ("good", "my field Ω"):
        assert (out / f"{name}.xami.fits").is_file() and (out / f"{name}.reg").is_file()
    summary = json.loads((out / "run.json").read_text())["summary"]
    assert (summary["done"], summary["failed"]) == (2, len(bad))
    assert sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(out)) == outside

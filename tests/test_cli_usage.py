"""Usage errors exit 2 with one line; reasons carry no foreign library's noise."""

from __future__ import annotations

import re

import pytest

from xami.cli import main
from xami.errors import FitsError, InputError, UsageError, clean_message
from xami.pipeline import PipelineSpec
from xami.predict import PredictConfig

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


@pytest.mark.parametrize(("argv", "match"), [
    (["predict", "x.png", "--out", "{out}", "--formats", "foo"], "formats must be among"),
    (["predict", "x.png", "--out", "{out}", "--conf", "5"], r"conf must be in \[0, 1\]"),
    (["predict", "x.png", "--out", "{out}", "--threads", "0"], "--threads must be >= 1"),
    (["report", "{out}", "--max-images", "-1"], "--max-images: must be >= 0"),
    (["report", "{out}", "--max-images", "many"], "not an integer"),
    (["predict", "x.png"], "required: --out"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, match):
    argv = [a.replace("{out}", str(tmp_path / "out")) for a in argv]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own checks
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"xami {argv[0]}: error: ")
    assert re.search(match, err)
    assert not (tmp_path / "out").exists()


def test_usage_errors_are_input_errors_for_library_callers():
    with pytest.raises(UsageError, match="formats must be among"):
        PredictConfig(formats=("foo",))
    with pytest.raises(InputError, match=r"conf must be in \[0, 1\]"):
        PipelineSpec(conf=5)


@pytest.mark.parametrize(("text", "expected"), [
    ("ERROR 3 in wcsp2s() at line 2125 of file cextern/wcslib/C/wcs.c:\nOne or more of the "
     "pixel coordinates were invalid.", "One or more of the pixel coordinates were invalid."),
    ("not a readable FITS file (No SIMPLE card found, this file does not appear to be a valid "
     "FITS file. If this is really a FITS file, try with ignore_missing_simple=True)",
     "not a readable FITS file (No SIMPLE card found, this file does not appear to be a valid "
     "FITS file.)"),
    ("Weights only load failed. This file can still be loaded, to do so you have two options, "
     "\x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m. \n\t(1) "
     "Re-running `torch.load` with `weights_only` set to `False` will likely succeed.\n\t"
     "WeightsUnpickler error: Unsupported global: GLOBAL os.system was not an allowed global "
     "by default. Please use `torch.serialization.add_safe_globals([os.system])` or the "
     "`torch.serialization.safe_globals([os.system])` context manager to allowlist this global.",
     "Weights only load failed. WeightsUnpickler error: Unsupported global: GLOBAL os.system "
     "was not an allowed global by default."),
])
def test_reasons_drop_foreign_noise(text, expected):
    assert clean_message(text) == expected
    err = FitsError("a.fits", text)
    assert str(err) == f"a.fits: {expected}" and err.problem == expected
    assert "weights_only=False" not in str(err) and ".c:" not in str(err)

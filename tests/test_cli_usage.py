"""Usage errors exit 2 with one line; reasons carry no foreign library's noise."""

from __future__ import annotations

import re

import pytest

from xami.cli import build_parser, main
from xami.cli.predict import pipeline_spec
from xami.errors import FitsError, InputError, UsageError, clean_message
from xami.pipeline import PipelineSpec
from xami.postprocess import FaintRuleConfig
from xami.predict import PredictConfig
from xami.priors import PriorConfig, StreakPrior

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


@pytest.mark.parametrize(("argv", "match"), [
    (["predict", "x.png", "--out", "{out}", "--formats", "foo"], "formats must be among"),
    (["predict", "x.png", "--out", "{out}", "--conf", "5"], r"conf must be in \[0, 1\]"),
    (["predict", "x.png", "--out", "{out}", "--threads", "0"], "--threads must be >= 1"),
    (["report", "{out}", "--max-images", "-1"], "--max-images: must be >= 0"),
    (["report", "{out}", "--max-images", "many"], "not an integer"),
    (["predict", "x.png"], "required: --out"),
    (["predict", "x.png", "--out", "{out}", "--backend", "tpu"], "backend must be one of"),
    (["predict", "x.png", "--out", "{out}", "--mask-grid", "wcs"], "mask grid must be one of"),
    (["predict", "x.png", "--out", "{out}", "--streak-extent", "both"],
     "--streak-extent: extent must be one of"),
    (["predict", "x.png", "--out", "{out}", "--config", "{cfg}"],
     r"c\.yaml: unknown key\(s\) \['predict\.priors\.smoke_ring\.boots'\]"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, match):
    (tmp_path / "c.yaml").write_text("predict:\n  priors:\n    smoke_ring: {boots: 2}\n")
    argv = [a.replace("{out}", str(tmp_path / "out")).replace("{cfg}", str(tmp_path / "c.yaml"))
            for a in argv]
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


def test_options_not_given_keep_the_library_defaults():
    """Unset flags are None: the command passes on only what was given (as SAM's amg.py)."""
    args = build_parser().parse_args(["predict", "x.png", "--out", "o"])
    assert pipeline_spec(args) == PipelineSpec()
    assert (args.formats, args.mask_grid) == (None, None)
    for argv in (["simulate", "--out", "o"], ["dataset", "split", "d", "--out", "o"],
                 ["dataset", "show", "d", "--out", "o"], ["report", "r"], ["demo"],
                 ["flag-sources", "c.csv", "--masks", "m", "--out", "o"],
                 ["preprocess", "a.fits", "--out", "o"], ["evaluate", "--gt", "g", "--pred",
                                                          "p", "--out", "o"]):
        given = {k: v for k, v in vars(build_parser().parse_args(argv)).items()
                 if k in ("seed", "valid_fraction", "k", "fold", "test_fraction", "n",
                          "max_images", "radius", "size", "conf")}
        assert set(given.values()) <= {None, 200}, (argv, given)  # 200: simulate's own --n


def test_predict_flags_override_the_config_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("predict:\n  conf: 0.2\n  faint_rule: {threshold: 0.6}\n"
                    "  priors: {streak: {extent: column, boost: 2.0}, central_ring: null}\n")
    parse = build_parser().parse_args
    spec = pipeline_spec(parse(["predict", "x.png", "--out", "o", "--config", str(path)]))
    assert spec == PipelineSpec(conf=0.2, faint_rule=FaintRuleConfig(threshold=0.6),
                                priors=PriorConfig(central_ring=None,
                                                   streak=StreakPrior(extent="column", boost=2.0)))
    spec = pipeline_spec(parse(["predict", "x.png", "--out", "o", "--config", str(path),
                                "--conf", "0.3", "--streak-extent", "visible",
                                "--no-smoke-ring-prior"]))
    assert spec.conf == 0.3 and spec.faint_rule.threshold == 0.6
    assert spec.priors == PriorConfig(central_ring=None, smoke_ring=None,
                                      streak=StreakPrior(extent="visible", boost=2.0))
    assert pipeline_spec(parse(["predict", "x.png", "--out", "o", "--config", str(path),
                                "--no-priors"])).priors is None


def test_usage_errors_are_input_errors_for_library_callers():
    with pytest.raises(UsageError, match="formats must be among"):
        PredictConfig(formats=("foo",))
    with pytest.raises(InputError, match=r"conf must be in \[0, 1\]"):
        PipelineSpec(conf=5)
    with pytest.raises(UsageError, match=r"backend must be one of \('torch', 'onnx'\), got 'tpu'"):
        PipelineSpec(backend="tpu")


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

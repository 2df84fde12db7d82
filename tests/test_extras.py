"""The light install: the predict path imports no extra; a missing extra is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xami.errors import MissingExtraError, UsageError
from xami.extras import EXTRAS, import_extra
from xami.io.images import write_frame
from xami.threads import set_threads, thread_count

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

HEAVY = ("torch", "torchvision", "ultralytics", "onnx", "dask", "distributed", "cv2")
PREDICT_PATH = ("xami", "xami.cli", "xami.pipeline", "xami.predict", "xami.products",
                "xami.postprocess", "xami.priors", "xami.io.fits", "xami.report.html",
                "xami.eval.metrics", "xami.source_flags", "xami.models.onnx",
                "xami.models.detector", "xami.models.build", "xami.models.yolo_onnx")


def run_python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (nothing imported by this test process leaks in)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)


def run_cli_without_extras(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``xami ARGS`` in an interpreter where every optional package fails to import."""
    code = (f"import sys\nfor name in {HEAVY!r}:\n    sys.modules[name] = None\n"
            "from xami.cli import main\nsys.exit(main(sys.argv[1:]))")
    return run_python(code, *args, cwd=cwd)


def test_predict_path_imports_no_optional_package(tmp_path):
    code = (f"import importlib, sys\nfor name in {PREDICT_PATH!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    done = run_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_parser_imports_no_heavy_package(tmp_path):
    """``xami --help`` stays fast: building the parser imports no model, FITS or plot library."""
    heavy = (*HEAVY, "onnxruntime", "astropy", "scipy", "matplotlib", "PIL", "yaml", "pandas")
    code = ("import sys\nfrom xami.cli import build_parser\nbuild_parser()\n"
            f"print(sorted(set({heavy!r}) & set(sys.modules)))")
    done = run_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["train", "--help"],
                                  ["--version"]])
def test_help_needs_no_extra(tmp_path, argv):
    done = run_cli_without_extras(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(("usage: xami", "xami 0.")) and done.stderr == ""


@pytest.mark.parametrize(("argv", "extra"), [
    (["predict", "f.png", "--out", "run", "--dask"], "dask"),
    (["predict", "f.png", "--out", "run", "--backend", "torch"], "train"),
    (["train", "segmentor", "--data", "."], "train"),
])
def test_a_missing_extra_is_one_line_and_exit_2(tmp_path, argv, extra):
    write_frame(tmp_path / "f.png", np.full((64, 64), 20, np.uint8))
    done = run_cli_without_extras(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"xami {argv[0]}: error: ")
    assert done.stderr.rstrip().endswith(f'which is not installed: pip install "xami[{extra}]"')


def test_import_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError, match=r'^Dask runs needs distributed, which is not '
                                                r'installed: pip install "xami\[dask\]"$'):
        import_extra("distributed", "Dask runs")
    assert set(EXTRAS.values()) == {"train", "dask"}


def test_threads_are_validated_and_kept(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in the light install
    monkeypatch.setattr("xami.threads._threads", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count() == 3
    set_threads(2)
    assert thread_count() == 2
    with pytest.raises(UsageError, match="threads must be an integer >= 1, got 0"):
        set_threads(0)

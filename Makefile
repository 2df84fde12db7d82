# Two entry points (see README): `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv with everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean weights-onnx

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m xami demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

# the bundled detector's ONNX export, shipped in the package (xami.models.onnx.write_bundled_onnx)
weights-onnx: $(STAMP)
	$(BIN)/python -c "from xami.models.onnx import write_bundled_onnx; print(write_bundled_onnx())"

clean:
	rm -rf $(VENV) demo_out

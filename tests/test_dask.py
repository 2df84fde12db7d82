"""Dask runs of ``xami predict``: a local run's outputs, one model load per worker, worker loss."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from xami.cli import main
from xami.errors import CheckpointError, InputError
from xami.io.fits import output_stem, write_fits
from xami.io.images import write_frame
from xami.pipeline import PipelineSpec, cached_pipeline, pipeline_loads
from xami.predict import ImageResult, PredictConfig, dask_client, provenance, run_predict
from xami.predict.cluster import dask_results
from xami.predict.resume import RETRY, settings_sha256
from xami.products import read_mask_fits
from xami.sim.dataset import simulate_index

SPEC = PipelineSpec()
VOLATILE = ("seconds", "worker")  # what differs between two runs' records


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Two 2048 FITS fields with WCS, three PNG frames and an unreadable file (seed 3)."""
    folder = tmp_path_factory.mktemp("dask") / "in"
    for i in (0, 1):
        sim = simulate_index(3, i, binning=1)
        write_fits(folder / f"{sim.stem}.fits", sim.hdus())
    for i in (2, 3, 4):
        sim = simulate_index(3, i)
        write_frame(folder / f"{sim.stem}.png", sim.frame)
    (folder / "broken.fits").write_text("not a FITS file\n")
    return folder


@pytest.fixture(scope="module")
def client():
    """A local cluster of 2 worker processes, 1 thread each (closed after the module)."""
    with dask_client(workers=2, dashboard_address=":0") as client:
        yield client


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    """The same inputs predicted in this process, on all its threads (each worker has one).

    The default engine, ONNX Runtime with numpy post-processing, gives the same bits whatever
    the thread count (torch's float sums do not: its scores differ in the 7th digit).
    """
    return run_predict([inputs], tmp_path_factory.mktemp("local"), pipeline=SPEC,
                       progress=False)


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _stable(record: dict | ImageResult) -> dict:
    record = record.to_json() if isinstance(record, ImageResult) else record
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _manifest(root: Path) -> list[dict]:
    return pq.read_table(root / "manifest.parquet").to_pylist()


def _assert_complete(root: Path, inputs: Path) -> None:
    """Each input is in the manifest once; the readable ones with all their outputs."""
    rows = _manifest(root)
    assert sorted(r["name"] for r in rows) == sorted(p.name.split(".")[0]
                                                     for p in inputs.iterdir())
    for row in rows:
        record = json.loads((root / "records" / f"{row['name']}.json").read_text())
        assert row["status"] == record["status"] == ("failed" if row["name"] == "broken"
                                                     else "done")
        for rel in record["outputs"].values():
            assert (root / rel).is_file()
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_dask_run_writes_what_a_local_run_writes(client, inputs, local_run, tmp_path):
    summary = run_predict([inputs], tmp_path, pipeline=SPEC, client=client, progress=False,
                          in_flight=2)
    local_root = local_run.run_json.parent
    local, remote = _files(local_root), _files(tmp_path)
    assert list(local) == list(remote)
    for rel in local:
        if rel.startswith("records/"):
            assert _stable(json.loads(local[rel].read_text())) == _stable(
                json.loads(remote[rel].read_text()))
        elif rel not in ("run.json", "manifest.parquet"):  # .reg text too, in every process
            assert local[rel].read_bytes() == remote[rel].read_bytes(), rel
    for rel in (r for r in local if r.endswith(".xami.fits")):
        a, b = read_mask_fits(local[rel]), read_mask_fits(remote[rel])
        np.testing.assert_array_equal(a.bitmask, b.bitmask)
        np.testing.assert_array_equal(a.ids, b.ids)
        assert a.table.pformat() == b.table.pformat()
    assert [_stable(r) for r in summary.records] == [_stable(r) for r in local_run.records]
    assert [r.reason is not None for r in summary.records] == [
        r.status == "failed" for r in summary.records]
    _assert_complete(tmp_path, inputs)
    rows = _manifest(tmp_path)
    assert [r["worker"] for r in rows] == [r.worker for r in summary.records]
    assert {r["worker"] for r in rows} <= set(client.nthreads())
    for row, record in zip(rows, summary.records, strict=True):
        classes = [i["class"].replace("-", "_") for i in record.instances]
        assert {k: v for k, v in row.items() if k.startswith("n_") and v} == {
            f"n_{c}": classes.count(c) for c in set(classes)}
        assert (row["fits"], row["png"]) == (record.outputs.get("fits"),
                                             record.outputs.get("png"))
    loads = client.run(pipeline_loads)
    # glibc's own malloc trim threshold, not Dask's 64 KiB (which slows torch down 1.4x)
    assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    used = {r["worker"] for r in rows}
    assert {w: loads[w] for w in used} == dict.fromkeys(used, 1)  # once per worker, not image
    before = {rel: p.read_bytes() for rel, p in _files(tmp_path / "records").items()}
    run_predict([inputs], tmp_path, pipeline=SPEC, client=client, progress=False)
    assert {rel: p.read_bytes() for rel, p in _files(tmp_path / "records").items()} == before
    assert client.run(pipeline_loads) == loads


def test_a_killed_worker_loses_no_output(client, inputs, tmp_path):
    victim = client.run(os.getpid)[min(client.nthreads())]
    killed = []

    def kill_after_the_first_record() -> None:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "records").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(victim, signal.SIGKILL)
        killed.append(time.monotonic())

    killer = threading.Thread(target=kill_after_the_first_record, daemon=True)
    killer.start()
    run_predict([inputs], tmp_path, pipeline=SPEC, client=client, progress=False, in_flight=2)
    finished = time.monotonic()
    killer.join()
    assert killed and killed[0] < finished
    assert victim not in client.run(os.getpid).values()
    _assert_complete(tmp_path, inputs)


def _crash(spec: str, name: str, *, worker: str) -> ImageResult:
    """A per-image function that kills the worker running it."""
    os._exit(1)


def _allowed_failures(n: int, dask_scheduler) -> int:
    """Set the worker deaths a task may cause before it fails; return the old number."""
    old, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, n
    return old


def test_an_image_that_kills_its_workers_fails_until_retried(client, inputs, tmp_path):
    """Its record has a content key as other failures: reported again, redone on retry."""
    spec = str(sorted(inputs.glob("*.png"))[0])
    settings = settings_sha256(provenance(SPEC), PredictConfig())
    allowed = client.run_on_scheduler(_allowed_failures, 0)
    try:
        ((_, died),) = dask_results(client, _crash, [(0, spec, output_stem(spec))], tmp_path,
                                    in_flight=None, settings=settings)
    finally:
        client.run_on_scheduler(_allowed_failures, allowed)
    assert died.status == "failed" and "died" in died.reason and died.key is not None
    (again,) = run_predict([spec], tmp_path, pipeline=SPEC, progress=False).records
    assert again.status == "failed" and again.reason.endswith("--retry-failed retries it)")
    (retried,) = run_predict([spec], tmp_path, pipeline=SPEC, progress=False,
                             config=PredictConfig(retry_failed=True)).records
    assert (retried.status, retried.redone) == ("done", RETRY)


def test_cli_on_a_running_scheduler(client, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", str(inputs), "--out", str(out), "--formats", "fits",
                 "--dask", client.scheduler.address])
    assert code == 1  # broken.fits failed, the others are done
    assert "5 done, 1 failed" in capsys.readouterr().out
    assert len(list(out.glob("*.xami.fits"))) == 5 and (out / "manifest.parquet").is_file()
    with pytest.raises(SystemExit):
        main(["predict", "--dask", str(inputs), "--out", str(out)])
    assert "put --dask after the inputs" in capsys.readouterr().err
    assert main(["predict", str(inputs), "--out", str(out), "--workers", "2"]) == 2


def test_models_that_cannot_load_stop_the_run(client, inputs, tmp_path):
    spec = PipelineSpec(detector=tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="detector checkpoint not found"):
        run_predict([inputs], tmp_path / "out", pipeline=spec, client=client, progress=False)
    assert not list((tmp_path / "out" / "records").iterdir())


def test_usage_errors(client, inputs, tmp_path):
    with pytest.raises(InputError, match="PipelineSpec"):
        run_predict([inputs], tmp_path, pipeline=cached_pipeline(SPEC), client=client)
    with pytest.raises(InputError, match="in_flight must be a positive integer, got 0"):
        run_predict([inputs], tmp_path, pipeline=SPEC, client=client, in_flight=0)
    with (pytest.raises(InputError, match="workers must be a positive integer"),
          dask_client("tcp://127.0.0.1:1", workers=2)):
        pass
    with pytest.raises(InputError, match=r"conf must be in \[0, 1\], got 2"):
        PipelineSpec(conf=2)


def test_resumed_run_and_csv_manifest_without_pyarrow(local_run, inputs, tmp_path,
                                                      monkeypatch):
    root = shutil.copytree(local_run.run_json.parent, tmp_path / "run")
    (root / "manifest.parquet").unlink()
    records = {rel: p.read_bytes() for rel, p in _files(root / "records").items()}
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    summary = run_predict([inputs], root, pipeline=SPEC, progress=False)
    assert summary.manifest == root / "manifest.csv"
    assert {rel: p.read_bytes() for rel, p in _files(root / "records").items()} == records
    lines = summary.manifest.read_text().splitlines()
    assert lines[0].split(",")[:4] == ["input", "name", "status", "reason"]
    assert len(lines) == 1 + len(summary.records)
    assert all(line.split(",")[-4] == "local" for line in lines[1:])

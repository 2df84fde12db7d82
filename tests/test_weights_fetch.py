"""``xami weights fetch``: downloads from a URL (here file://), SHA-256 checked, atomic, offline."""

from __future__ import annotations

import hashlib

import pytest

from xami.cli import main
from xami.models.fetch import SOURCES, fetch_weights, weights_folder

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

PAYLOAD = b"not really a checkpoint, but bytes with a known digest\n" * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A file served at a file:// URL, and $XAMI_CACHE_DIR in tmp_path."""
    monkeypatch.setenv("XAMI_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "mobile_sam.pt").write_bytes(PAYLOAD)
    return (tmp_path / "server" / "mobile_sam.pt").as_uri()


def test_fetch_checks_the_digest_and_keeps_the_file(published, capsys):
    assert main(["weights", "fetch", "mobile_sam", "--url", published, "--sha256", DIGEST]) == 0
    target = weights_folder() / "mobile_sam.pt"
    assert target.read_bytes() == PAYLOAD
    assert capsys.readouterr().out == f"xami weights: {target} (SHA-256 {DIGEST}, checked)\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mobile_sam.pt"]
    (target.parent.parent.parent / "server" / "mobile_sam.pt").unlink()  # the server is gone:
    assert fetch_weights("mobile_sam", url=published, sha256=DIGEST) == (target, DIGEST)  # kept


def test_fetch_without_a_known_digest_says_so(published, capsys):
    assert SOURCES["mobile_sam"].sha256 is None
    assert main(["weights", "fetch", "mobile_sam", "--url", published]) == 0
    assert capsys.readouterr().out.endswith(f"(SHA-256 {DIGEST}, not checked: none known, "
                                            "--sha256 checks it)\n")


def test_a_digest_mismatch_deletes_the_download(published, capsys):
    wrong = "0" * 64
    assert main(["weights", "fetch", "mobile_sam", "--url", published, "--sha256", wrong]) == 1
    err = capsys.readouterr().err
    assert err == (f"xami weights: error: {published}: SHA-256 mismatch: expected {wrong}, got "
                   f"{DIGEST}; the download was deleted\n")
    assert list(weights_folder().iterdir()) == []  # neither the file nor a temporary one


def test_offline_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XAMI_CACHE_DIR", str(tmp_path / "cache"))
    url = "http://127.0.0.1:9/mobile_sam.pt"  # the discard port: nothing listens
    assert main(["weights", "fetch", "mobile_sam", "--url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xami weights: error: {url}: cannot be downloaded (")
    assert "offline? fetch it on a machine with network access" in err
    assert len(err.splitlines()) == 1
    assert list(weights_folder().iterdir()) == []


@pytest.mark.parametrize(("argv", "match"), [
    (["weights", "fetch", "sam9000"], "unknown weights 'sam9000': choose among mobile_sam, "),
    (["weights", "fetch", "mobile_sam", "--sha256", "abc"], "sha256 must be 64 hex digits"),
])
def test_usage_errors(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.setenv("XAMI_CACHE_DIR", str(tmp_path / "cache"))
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_list_names_every_source(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert all(s.name in out and s.url in out for s in SOURCES.values())
    assert out.count("SHA-256: not known") == len(SOURCES)

"""pianogenie.download against a local HTTP server on 127.0.0.1: cache, resume, verification."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
from helpers import build_midi, write_maestro, zip_folder

from pianogenie import download as dl
from pianogenie.cli import main
from pianogenie.notes_file import load_notes
from pianogenie.util import UserError


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.payload at any path; honours `Range: bytes=N-` unless told not to."""

    def do_GET(self):
        srv = self.server
        srv.ranges.append(self.headers.get("Range"))
        body, status, start = srv.payload, 200, 0
        rng = self.headers.get("Range")
        if rng and srv.honor_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:]
        if srv.drop_after is not None:  # the connection breaks midway
            chunk, srv.drop_after = chunk[: srv.drop_after], None
        self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.payload, srv.ranges, srv.honor_range, srv.drop_after = b"", [], True, None
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/maestro-v3.0.0-midi.zip"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def maestro_zip(tmp_path) -> bytes:
    """A small zip in the official layout: maestro-v3.0.0/ with metadata and two performances."""
    files = {
        "2018/a.midi": ("train", build_midi([(i * 0.25, 0.2, 40 + i, 70) for i in range(30)])),
        "2018/b.midi": ("validation", build_midi([(i * 0.5, 0.4, 60 - i, 90) for i in range(20)])),
    }
    root = write_maestro(tmp_path / "src", files, formats=("json", "csv"))
    return zip_folder(root, tmp_path / "src.zip", "maestro-v3.0.0").read_bytes()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_download_verifies_and_caches(server, maestro_zip, tmp_path):
    server.payload = maestro_zip
    dest = tmp_path / "cache" / "m.zip"
    got = dl.download(server.url, dest, sha256=sha(maestro_zip), size=len(maestro_zip), progress=False)
    assert got == dest and dest.read_bytes() == maestro_zip
    assert not dest.with_name("m.zip.part").exists()
    dl.download(server.url, dest, sha256=sha(maestro_zip), size=len(maestro_zip), progress=False)
    assert len(server.ranges) == 1  # the second call used the cache


def test_download_resumes_with_range_request(server, maestro_zip, tmp_path):
    server.payload, server.drop_after = maestro_zip, 1000
    dest = tmp_path / "m.zip"
    with pytest.raises(UserError, match="run again to resume"):
        dl.download(server.url, dest, sha256=sha(maestro_zip), size=len(maestro_zip), progress=False)
    part = tmp_path / "m.zip.part"
    assert part.stat().st_size == 1000 and not dest.exists()

    dl.download(server.url, dest, sha256=sha(maestro_zip), size=len(maestro_zip), progress=False)
    assert server.ranges == [None, "bytes=1000-"]
    assert dest.read_bytes() == maestro_zip and not part.exists()


def test_download_restarts_when_server_ignores_range(server, maestro_zip, tmp_path):
    server.payload, server.honor_range = maestro_zip, False
    (tmp_path / "m.zip.part").write_bytes(maestro_zip[:500])
    dl.download(server.url, tmp_path / "m.zip", sha256=sha(maestro_zip), progress=False)
    assert (tmp_path / "m.zip").read_bytes() == maestro_zip


def test_checksum_mismatch_is_clear_error_and_leaves_no_file(server, maestro_zip, tmp_path):
    server.payload = maestro_zip
    dest = tmp_path / "cache" / "m.zip"
    with pytest.raises(UserError, match="failed verification: SHA-256") as e:
        dl.download(server.url, dest, sha256="0" * 64, size=len(maestro_zip), progress=False)
    assert server.url in str(e.value)
    assert list(dest.parent.iterdir()) == []  # neither the final file nor a partial one


def test_size_mismatch_and_corrupt_zip_without_checksum(server, maestro_zip, tmp_path):
    server.payload = maestro_zip[:-100]  # truncated on the server
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="size"):
        dl.download(server.url, cache / "a.zip", sha256=sha(maestro_zip), size=len(maestro_zip), progress=False)
    with pytest.raises(UserError, match="not a valid zip"):
        dl.download(server.url, cache / "b.zip", progress=False)
    assert list(cache.iterdir()) == []


def test_cached_file_that_no_longer_verifies_is_fetched_again(server, maestro_zip, tmp_path):
    server.payload = maestro_zip
    dest = tmp_path / "m.zip"
    dest.write_bytes(b"stale")
    dl.download(server.url, dest, sha256=sha(maestro_zip), progress=False)
    assert dest.read_bytes() == maestro_zip


def test_unreachable_server_is_clear_error(tmp_path):
    with pytest.raises(UserError, match="could not download") as e:
        dl.download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", progress=False, timeout=5)
    assert ".part" not in str(e.value) and "nothing arrived" in str(e.value)  # no file it never wrote
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(dl.CACHE_ENV, raising=False)
    assert dl.cache_dir() == Path.home() / ".cache" / "pianogenie"
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "env"))
    assert dl.cache_dir() == tmp_path / "env"
    assert dl.cache_dir(tmp_path / "flag") == tmp_path / "flag"


def test_prepare_without_source_downloads_then_prepares(server, maestro_zip, tmp_path, monkeypatch, capsys):
    server.payload = maestro_zip
    monkeypatch.setattr(dl, "MAESTRO_V3_MIDI_URL", server.url)
    monkeypatch.setattr(dl, "MAESTRO_V3_MIDI_SHA256", sha(maestro_zip))
    monkeypatch.setattr(dl, "MAESTRO_V3_MIDI_SIZE", len(maestro_zip))
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "env-cache"))
    out = tmp_path / "notes.json.gz"
    assert main(["prepare", "-o", str(out), "--cache-dir", str(tmp_path / "flag-cache"), "--workers", "1"]) == 0
    assert (tmp_path / "flag-cache" / "maestro-v3.0.0-midi.zip").read_bytes() == maestro_zip
    assert not (tmp_path / "env-cache").exists()
    notes = load_notes(out)
    assert [len(notes["train"][0]), len(notes["validation"][0])] == [30, 20]
    report = json.loads((tmp_path / "notes.report.json").read_text())
    assert report["source"]["kind"] == "zip"
    # a second run finds the zip in the cache and does not download again
    assert main(["prepare", "-o", str(out), "--cache-dir", str(tmp_path / "flag-cache"), "--workers", "1"]) == 0
    assert len(server.ranges) == 1


def test_cache_folder_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "cache").write_text("a file")
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    assert main(["prepare", "-o", str(tmp_path / "o.json.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie prepare: error: cannot create the cache folder") and len(err.splitlines()) == 1

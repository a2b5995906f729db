"""`pianogenie serve`: serves the site of `pianogenie build-site` (app, model, samples), nothing else;
refuses a bad model at start; survives idle, slow, misdirected and vanishing clients."""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pianogenie import export_check, serve, site
from pianogenie.util import UserError

needs_node_modules = pytest.mark.skipif(
    not (site.SAMPLES_PACKAGE / "audio").is_dir(),
    reason=f"{site.SAMPLES_PACKAGE} absent: run `npm ci --prefix pianogenie/web`",
)


def make_model_dir(root: Path) -> Path:
    model = root / "model"
    model.mkdir()
    # the smallest decoder that plays (1 unit, 1 layer: 284 float32 values), as an export lays it out
    specs = export_check.decoder_specs(1, 1, 88)
    manifest = [
        {
            "paths": ["group1-shard1of1.bin"],
            "weights": [{"name": n, "shape": s, "dtype": "float32"} for n, s in specs.items()],
        }
    ]
    (model / "weights_manifest.json").write_text(json.dumps(manifest))
    (model / "cfg.json").write_text('{"num_buttons": 8}')
    (model / "group1-shard1of1.bin").write_bytes(b"\x00" * SHARD_BYTES)
    return model


SHARD_BYTES = 4 * 284


@pytest.fixture
def server(tmp_path):
    (tmp_path / "secret.json").write_text('{"secret": "SECRET"}')
    model = make_model_dir(tmp_path)
    os.symlink(tmp_path / "secret.json", model / "link.json")  # a symlink leading out of the root
    srv = serve.make_server(model, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv, model
    srv.shutdown()
    srv.server_close()


def get(srv, path: str, method: str = "GET", host: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)  # path sent as is
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


@needs_node_modules
def test_serves_the_app_the_model_and_vendor_files(server):
    srv, model = server
    web = site.WEB_DIR
    cases = {
        "/": (web / "index.html", "text/html"),
        "/index.html?v=1": (web / "index.html", "text/html"),
        "/style.css": (web / "style.css", "text/css"),
        "/src/app.js": (web / "src" / "app.js", "text/javascript"),
        "/src/decoder.js": (web / "src" / "decoder.js", "text/javascript"),
        "/models/model/cfg.json": (model / "cfg.json", "application/json"),
        "/models/model/group1-shard1of1.bin": (model / "group1-shard1of1.bin", "application/octet-stream"),
        "/src/pwa.js": (web / "src" / "pwa.js", "text/javascript"),
        "/vendor/piano/D%234v10.mp3": (site.SAMPLES_PACKAGE / "audio/D#4v10.mp3", "audio/mpeg"),
        "/vendor/piano-v4/C4v4.mp3": (site.layer_package(4) / "audio/C4v4.mp3", "audio/mpeg"),
        "/vendor/piano-v15/A0v15.mp3": (site.layer_package(15) / "audio/A0v15.mp3", "audio/mpeg"),
    }
    index = site.build(model).files["index.html"]  # web/index.html with the model's preload hints
    for url, (file, ctype) in cases.items():
        status, headers, body = get(srv, url)
        assert status == 200, url
        assert headers["Content-Type"].startswith(ctype), url
        assert body == (index if file.name == "index.html" else file.read_bytes()), url
    status, headers, body = get(srv, "/models/model/cfg.json", "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len((model / "cfg.json").read_bytes()))
    for url, ctype in {
        "/sw.js": "text/javascript",
        "/manifest.webmanifest": "application/manifest+json",
        "/icons/icon-192.png": "image/png",
        "/LICENSES.txt": "text/plain",
    }.items():
        status, headers, body = get(srv, url)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and body, url
    # One code path: what serve answers is byte for byte the site build-site writes.
    built = site.build(model)
    for rel, data in built.files.items():
        assert get(srv, "/" + rel.replace("#", "%23"))[2] == data, rel


TRAVERSALS = [
    "/../secret.json",
    "/models/model/../secret.json",
    "/models/model/%2e%2e/secret.json",
    "/models/model/%2E%2E%2Fsecret.json",
    "/models/model/..%2fsecret.json",
    "/models/model/..%5csecret.json",
    "/models/model/%2fetc%2fpasswd",
    "/models/model//etc/passwd",
    "//etc/passwd",
    "/models/model/link.json",  # symlink to a file outside the model folder
    "/models/model/./cfg.json",
    "/models/model/%2e/cfg.json",
    "/models/model/.hidden.json",
    "/models/model/cfg.json%00.bin",
    "/models/model/%ff.json",
    "/src/../package.json",
    "/src/%2e%2e/package.json",
    "/src/%2e%2e%2f%2e%2e%2fserve.py",
    "/vendor/tfjs/tf.es2017.min.js",  # in node_modules, but not part of the site
    "/vendor/piano/../../index.js",
    "/vendor/piano/README.md",
    "/vendor/piano-v4/C4v10.mp3",
    "/package.json",
    "/node_modules/@tensorflow/tfjs/package.json",
    "/test/browser.test.js",
    "/src/",
    "/models/model/",
    "/model",
    "/etc/passwd",
    "http://127.0.0.1/../secret.json",
]


@needs_node_modules
@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_its_own_files(server, path):
    srv, _ = server
    status, _, body = get(srv, path)
    assert status in (400, 404), (path, status)
    assert b"SECRET" not in body and b"root:" not in body


@needs_node_modules
def test_other_methods_refused(server):
    srv, _ = server
    status, _, _ = get(srv, "/models/model/cfg.json", "POST")
    assert status == 501


def test_missing_node_modules_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(site, "SAMPLES_PACKAGE", tmp_path / "node_modules" / "samples")
    with pytest.raises(UserError, match=r"npm ci --prefix pianogenie/web"):
        serve.make_server(make_model_dir(tmp_path), port=0)


def test_model_dir_checks(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        serve.check_model_dir(tmp_path / "nope")
    model = make_model_dir(tmp_path)
    (model / "group1-shard1of1.bin").unlink()
    with pytest.raises(UserError, match=r"shard.*missing: group1-shard1of1\.bin"):
        serve.check_model_dir(model)
    (model / "weights_manifest.json").unlink()
    with pytest.raises(UserError, match=r"no weights_manifest\.json"):
        serve.check_model_dir(model)


def test_no_shipped_model_says_to_pass_model(tmp_path, monkeypatch, capsys):
    from pianogenie import constants
    from pianogenie.cli import main

    monkeypatch.setattr(constants, "SHIPPED_GENIES", {"classical": tmp_path / "pretrained"})

    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "no shipped model" in err and "--model DIR" in err


@needs_node_modules
def test_cli_prints_the_address_and_serves(tmp_path):
    model = make_model_dir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pianogenie", "serve", "--model", str(model), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Piano Genie: http://127.0.0.1:"), line
        host_port = line.split("http://")[1].split("/")[0]
        conn = http.client.HTTPConnection(host_port, timeout=10)
        conn.request("GET", "/models/model/cfg.json")
        assert conn.getresponse().read() == b'{"num_buttons": 8}'
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- a bad model is refused at start ------------------------------------------------------------


def test_truncated_or_padded_shard_refused(tmp_path):
    model = make_model_dir(tmp_path)
    (model / "group1-shard1of1.bin").write_bytes(b"\x00" * 5)
    with pytest.raises(UserError, match=rf"hold 5 bytes, the manifest describes {SHARD_BYTES} \(truncated"):
        serve.check_model_dir(model)
    (model / "group1-shard1of1.bin").write_bytes(b"\x00" * (SHARD_BYTES + 4))
    with pytest.raises(UserError, match=f"hold {SHARD_BYTES + 4} bytes"):
        serve.check_model_dir(model)


@pytest.mark.parametrize(
    "shard", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", ".hidden.bin", "a\\b.bin", "", 7, "link.bin"]
)
def test_manifest_paths_outside_the_folder_refused(tmp_path, shard):
    model = make_model_dir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 8)
    os.symlink(tmp_path / "secret.bin", model / "link.bin")  # a plain name whose file lies outside
    manifest = json.loads((model / "weights_manifest.json").read_text())
    manifest[0]["paths"] = [shard]
    (model / "weights_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="outside the folder"):
        serve.check_model_dir(model)
    with pytest.raises(UserError, match="outside the folder"):
        serve.make_server(model, port=0)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "dec.input.weight", "shape": [2], "dtype": "float16"},
        {"name": "dec.input.weight", "shape": [-2], "dtype": "float32"},
        {"name": "dec.input.weight", "dtype": "float32"},
    ],
)
def test_bad_weight_entries_refused(tmp_path, entry):
    model = make_model_dir(tmp_path)
    (model / "weights_manifest.json").write_text(json.dumps([{"paths": ["group1-shard1of1.bin"], "weights": [entry]}]))
    with pytest.raises(UserError, match="weight entry is not valid"):
        serve.check_model_dir(model)


# --- hostile clients -------------------------------------------------------------------------------


@needs_node_modules
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1:1",
        "localhost.evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "",
        "[::1]:{port}",
    ],
)
def test_foreign_host_names_refused(server, host):
    srv, _ = server
    port = srv.server_address[1]
    status, _, body = get(srv, "/models/model/cfg.json", host=host.format(port=port))
    assert status == 421 and b"num_buttons" not in body, host


@needs_node_modules
def test_loopback_host_names_answered(server):
    srv, _ = server
    port = srv.server_address[1]
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", "127.0.0.1", "localhost"]:
        assert get(srv, "/models/model/cfg.json", host=host)[0] == 200, host


def _worker_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-") and "process_request" in t.name)


@pytest.mark.slow
@needs_node_modules
def test_idle_and_half_sent_connections_are_closed(server, monkeypatch):
    srv, _ = server
    monkeypatch.setattr(serve, "REQUEST_DEADLINE_S", 1.5)
    addr = srv.server_address[:2]
    idle = [socket.create_connection(addr, timeout=10) for _ in range(20)]  # connect, send nothing
    slow = [socket.create_connection(addr, timeout=10) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /models/model/cfg.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
    t0 = time.monotonic()
    time.sleep(0.3)
    assert _worker_threads() >= 40, "each connection holds a worker thread (so the count below means something)"
    for s in slow:
        s.sendall(b"X-Drip: 1\r\n")  # still sending, slowly: the deadline holds anyway
    for s in idle + slow:
        assert s.recv(1024) == b"", "the server closes the connection without answering"
        s.close()
    assert time.monotonic() - t0 < 4
    deadline = time.monotonic() + 5
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _worker_threads() == 0, "no thread is left holding a connection"
    assert get(srv, "/models/model/cfg.json")[0] == 200  # and it still serves


@pytest.mark.slow
@needs_node_modules
def test_client_disconnecting_mid_download_prints_no_traceback(tmp_path):
    model = make_model_dir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pianogenie", "serve", "--model", str(model), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /vendor/piano/A0v10.mp3 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.0 200")
            if i % 2:  # abort with a reset (as a closed tab does), else a plain close
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/models/model/cfg.json")
        assert conn.getresponse().status == 200
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.slow
def test_serve_a_checkpoint_exports_it_first(tmp_path):
    import dataclasses

    import torch

    from pianogenie.config import Config
    from pianogenie.model import Autoencoder

    torch.manual_seed(0)
    cfg = Config(model_rnn_dim=16)
    ckpt = tmp_path / "best.pt"
    torch.save({"model": Autoencoder(cfg).state_dict(), "cfg": dataclasses.asdict(cfg)}, ckpt)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pianogenie", "serve", "--model", str(ckpt), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Piano Genie: http://127.0.0.1:"), line
        conn = http.client.HTTPConnection(line.split("http://")[1].split("/")[0], timeout=10)
        conn.request("GET", "/models/model/weights_manifest.json")
        shapes = {w["name"]: w["shape"] for w in json.loads(conn.getresponse().read())[0]["weights"]}
        assert shapes["dec.input.weight"] == [16, 91]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]

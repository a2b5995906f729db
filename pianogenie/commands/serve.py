"""`pianogenie serve`: the app and a model on 127.0.0.1 (pianogenie.serve). Its --help imports no torch."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pianogenie import site
from pianogenie.commands import MODEL_HELP
from pianogenie.util import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        description="Serve the Piano Genie web app and an exported model on 127.0.0.1 (the same site "
        "`pianogenie build-site` writes), then open the printed address in a browser. Play with keys 1-8 "
        "(or A S D F J K L ;), the mouse, touch, or a MIDI controller. Everything is served locally "
        "(works offline).",
    )
    p.add_argument(
        "--model",
        metavar="RUN_OR_EXPORT",
        action="append",
        help=MODEL_HELP,
    )
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port; default 8000)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pianogenie.serve import make_server

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} must be in 0..65535")
    with tempfile.TemporaryDirectory(prefix="pianogenie-serve-") as work:  # the site is read into memory
        models = site.resolve_models(args.model, Path(work))
        server = make_server(models, args.port, args.verbose)
    host, port = server.server_address[:2]
    print(
        f"Piano Genie: http://{host}:{port}/  (models: {', '.join(args.model or site.shipped_model_dirs())}; Ctrl-C to stop)",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0

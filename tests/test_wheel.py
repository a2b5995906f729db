"""The sdist and wheel carry every runtime asset: built here (sdist, then the wheel from the unpacked
sdist, as `python -m build` does), installed into a fresh virtual environment with nothing else,
and run with no Node/npm on PATH: `serve` answers every file of the site and `build-site` writes
the very same site as this checkout does."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pianogenie import site

REPO = Path(__file__).resolve().parents[1]
MAX_WHEEL_BYTES = (
    28_000_000  # today ~26.7 MB: the samples (5.6 MB + 10.9 MB of velocity layers), two genies' model.pt and exports
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (site.SAMPLES_PACKAGE / "audio").is_dir(),
        reason=f"{site.SAMPLES_PACKAGE} absent: run `npm ci --prefix pianogenie/web`",
    ),
]


def _source_copy(dest: Path) -> Path:
    """The files a clean checkout holds after `npm ci`, minus the rest of node_modules and caches."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in ("__pycache__", "test-artifacts") or n.endswith(".egg-info")}
        if Path(folder).name == "node_modules":
            skip |= {n for n in names if n != "@audio-samples"}
        return skip

    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "pianogenie", dest / "pianogenie", ignore=ignore)
    return dest


def _build(backend_call: str, cwd: Path, out: Path) -> Path:
    code = f"import sys; from setuptools import build_meta as b; print(b.{backend_call}(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    sdist = _build("build_sdist", src, tmp / "dist")
    with tarfile.open(sdist) as t:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12 / 3.11.4
        t.extractall(tmp / "unpacked", **safe)
    wheel = _build("build_wheel", next((tmp / "unpacked").iterdir()), tmp / "dist")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    # without PYTHONPATH: a checkout on it would make pip think the package is installed already
    pip_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=120,
        env=pip_env,
    )
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp), "LANG": "C.UTF-8"}  # no node, npm or repo on PATH
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    return {"tmp": tmp, "sdist": sdist, "wheel": wheel, "venv": venv, "env": env}


def test_the_wheel_is_lean_and_holds_the_site(installed):
    wheel, sdist = installed["wheel"], installed["sdist"]
    size = wheel.stat().st_size
    print(f"\nwheel {wheel.name}: {size / 1e6:.2f} MB; sdist {sdist.name}: {sdist.stat().st_size / 1e6:.2f} MB")
    assert size < MAX_WHEEL_BYTES
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not any("/test/" in n or n.endswith(("package-lock.json", ".map")) for n in names)
    for rel, path in {**site.app_files(), **site.sample_files()}.items():
        assert path.relative_to(REPO).as_posix() in names, rel


def test_serve_from_the_wheel_answers_every_file_of_the_site(installed):
    env, venv = installed["env"], installed["venv"]
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pianogenie; print(pianogenie.__file__)"],
        env=env,
        cwd=installed["tmp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where).is_relative_to(venv), where
    expected = site.build(site.default_model_dirs()).files  # this checkout's site
    proc = subprocess.Popen(
        [str(venv / "bin" / "pianogenie"), "serve", "--port", "0"],
        env=env,
        cwd=installed["tmp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line + proc.stderr.read()
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)

        def get(rel: str) -> bytes:
            conn.request("GET", "/" + rel.replace("#", "%23"))
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, rel
            return body

        index = get("")
        referenced = re.findall(rb'(?:src|href)="([^":]+)"', index)
        assert referenced and all(ref.decode() in expected for ref in referenced), referenced
        sw = get("sw.js").decode()
        named = set(re.findall(r'^"([^"]+)",?$', sw, re.M))  # precached (the app, the model, the first samples)
        named |= set(re.findall(r'^"([^"]+)": "[0-9a-f]+",?$', sw, re.M))  # every sample, by content hash
        assert len(named) == len(expected) - 2  # all but sw.js and the build marker
        for rel, data in expected.items():
            assert get(rel) == data, f"{rel} differs from this checkout's"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_build_site_from_the_wheel_writes_this_checkouts_site(installed):
    env, venv, out = installed["env"], installed["venv"], installed["tmp"] / "www"
    r = subprocess.run(
        [str(venv / "bin" / "pianogenie"), "build-site", str(out)],
        env=env,
        cwd=installed["tmp"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == site.build(site.default_model_dirs()).files

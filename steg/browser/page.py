"""The browser page (``web/``): build its files, serve it, drive it in headless Chromium.

The page (``web/index.html``, ``web/app.js``) hides and reveals with the exported
ONNX graphs (:mod:`steg.browser.onnx`) in onnxruntime-web's WebAssembly backend, with no
server-side work. Two generated folders are not committed (``.gitignore``):

* ``web/vendor/``: onnxruntime-web's wasm build (``ort.wasm.min.js``,
  ``ort-wasm-simd-threaded.mjs`` and ``.wasm``, 14 MB) from the npm registry,
  version :data:`ORT_WEB_VERSION`, installed into a temporary folder by ``npm``;
* ``web/models/``: every shipped model exported as ``NAME.hide.onnx`` and
  ``NAME.reveal.onnx``, listed in ``models.json`` with what the page needs to pad
  and tile like :class:`steg.inference.model.StegModel`.

Commands (``make web`` runs the first; ``steg web`` builds what is missing, then serves)::

    python -m steg.browser build [--force]
    python -m steg.browser serve [--host 127.0.0.1] [--port 8000]
    python -m steg.browser bench [--runs 3] [--json FILE]     # timings in headless Chromium
    python -m steg.browser screenshot docs/web.png            # the README's screenshot

Driving the page in headless Chromium (the test, the benchmark, the screenshot)
lives in :mod:`steg.browser.chromium`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = [
    "WEB_DIR",
    "ORT_WEB_VERSION",
    "WebError",
    "missing",
    "build",
    "make_server",
    "running_server",
    "serve",
]

#: The page's folder (in a source checkout: next to the steg package).
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
#: onnxruntime-web release vendored into web/vendor.
ORT_WEB_VERSION = "1.30.0"
#: Files of the npm package's dist/ folder that the wasm backend needs.
VENDOR_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: Content types the page needs beyond the standard library's table.
CONTENT_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                 ".onnx": "application/octet-stream", ".json": "application/json"}


class WebError(RuntimeError):
    """The page cannot be built, served or driven (a one-line message saying what to do)."""


# --------------------------------------------------------------------------- #
# Building web/vendor and web/models
# --------------------------------------------------------------------------- #


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _models_up_to_date(web_dir: Path) -> bool:
    from steg.inference.files import resolve_model_path, shipped_models

    manifest = web_dir / "models" / "models.json"
    if not manifest.is_file():
        return False
    try:
        entries = {m["name"]: m for m in json.loads(manifest.read_text())["models"]}
    except (ValueError, KeyError, TypeError):
        return False
    names = shipped_models()
    return sorted(entries) == names and all(
        entries[n].get("source_sha256") == _sha256(resolve_model_path(n))
        and (web_dir / "models" / entries[n]["hide"]).is_file()
        and (web_dir / "models" / entries[n]["reveal"]).is_file()
        for n in names
    )


def missing(web_dir: Path = WEB_DIR) -> list[str]:
    """What the page lacks: 'vendor' (onnxruntime-web) and/or 'models' (missing or older than the shipped models)."""
    out = []
    version = web_dir / "vendor" / "VERSION"
    if not all((web_dir / "vendor" / f).is_file() for f in VENDOR_FILES) or not version.is_file() \
            or version.read_text().strip() != ORT_WEB_VERSION:
        out.append("vendor")
    if not _models_up_to_date(web_dir):
        out.append("models")
    return out


def _vendor(web_dir: Path) -> None:
    """npm-install onnxruntime-web into a temporary folder; copy the wasm backend's files to web/vendor."""
    from steg.io import write_bytes, write_text

    npm = shutil.which("npm")
    if npm is None:
        raise WebError("building web/vendor needs npm (Node.js); install it, e.g. apt-get install npm")
    with tempfile.TemporaryDirectory(prefix="steg-npm-") as tmp:
        cmd = [npm, "install", "--prefix", tmp, "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
               f"onnxruntime-web@{ORT_WEB_VERSION}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise WebError(f"npm install onnxruntime-web@{ORT_WEB_VERSION} failed: {last}")
        dist = Path(tmp) / "node_modules" / "onnxruntime-web" / "dist"
        for name in VENDOR_FILES:
            if not (dist / name).is_file():
                raise WebError(f"onnxruntime-web@{ORT_WEB_VERSION} has no dist/{name}")
            write_bytes(web_dir / "vendor" / name, (dist / name).read_bytes())
    write_text(web_dir / "vendor" / "VERSION", ORT_WEB_VERSION + "\n")


def _export_models(web_dir: Path) -> None:
    """Export every shipped model to web/models/NAME.{hide,reveal}.onnx and write models.json."""
    from steg.inference.model import load_model
    from steg.inference.files import resolve_model_path, shipped_models
    from steg.io import write_text
    from steg.browser.onnx import OPSET, export_onnx

    entries = []
    for name in shipped_models():
        model = load_model(name)
        paths = export_onnx(model, web_dir / "models" / f"{name}.onnx", force=True)
        entries.append({
            "name": name,
            "arch": model.net.arch_config.get("name", ""),
            "description": model.describe().replace(str(model.source), Path(model.source).name),
            "hide": paths["hide"].name,
            "reveal": paths["reveal"].name,
            "channels": model.channels,
            "size_multiple": model.size_multiple,
            "tile": model.tile or 0,
            "margin": model.margin,
            "source_sha256": _sha256(resolve_model_path(name)),
        })
    if not entries:
        raise WebError("no shipped model to export (steg/pretrained/*.safetensors)")
    entries.sort(key=lambda e: (e["name"] != "default", e["name"]))  # the default model first
    manifest = {"format": "steg-web-models", "format_version": 1, "opset": OPSET, "models": entries}
    write_text(web_dir / "models" / "models.json", json.dumps(manifest, indent=2) + "\n")


def build(web_dir: Path = WEB_DIR, force: bool = False, quiet: bool = False) -> list[str]:
    """Build what the page lacks (or everything with ``force``); returns the parts built."""
    if not (web_dir / "index.html").is_file():
        raise WebError(f"{web_dir / 'index.html'} not found: the page comes with a source checkout of steg "
                       "(git clone, pip install -e .), not with a wheel")
    todo = ["vendor", "models"] if force else missing(web_dir)
    for part in todo:
        if not quiet:
            what = f"onnxruntime-web {ORT_WEB_VERSION} from npm" if part == "vendor" else "the shipped models to ONNX"
            print(f"building {web_dir / part}: {what}", file=sys.stderr)
        (_vendor if part == "vendor" else _export_models)(web_dir)
    return todo


# --------------------------------------------------------------------------- #
# Serving
# --------------------------------------------------------------------------- #


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(web_dir: Path = WEB_DIR, host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``web_dir`` (port 0: a free port; see ``server.server_address``)."""
    handler = functools.partial(_Handler, directory=str(web_dir))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise WebError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    server.verbose = verbose  # type: ignore[attr-defined]
    # Closing does not wait for request threads: a client that keeps its connection open (HTTP/1.1
    # keep-alive, a socket not yet collected) would otherwise hold Ctrl-C's exit (a CI run waited > 20 s).
    server.block_on_close = False  # type: ignore[attr-defined]
    return server


def _url(server: http.server.HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


@contextlib.contextmanager
def running_server(web_dir: Path = WEB_DIR, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``web_dir`` from a background thread; yields the page's URL."""
    server = make_server(web_dir, host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _url(server)
    finally:
        server.shutdown()
        server.server_close()


def serve(web_dir: Path = WEB_DIR, host: str = "127.0.0.1", port: int = 8000, verbose: bool = True) -> None:
    """Build what is missing, then serve the page until Ctrl-C."""
    build(web_dir)
    server = make_server(web_dir, host, port, verbose)
    print(f"serving {web_dir} at {_url(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #

"""Driving the browser page (``web/``, :mod:`steg.browser.page`) in the system's headless Chromium.

The browser is Debian's ``chromium`` (:data:`CHROMIUM`; ``make browser`` installs it and
Playwright's Python package), launched by Playwright with the system executable:
never ``playwright install``, which downloads its own build (and fails without a network).
Headless flags: no sandbox (root in containers), nothing that reaches the network.

Used by ``tests/test_web.py``, ``python -m steg.browser bench`` (load and hide + reveal
times, JSON) and ``python -m steg.browser screenshot`` (the README's picture).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path
from typing import Any, Iterator

from steg.browser.page import ORT_WEB_VERSION, WEB_DIR, WebError, build, running_server

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "launch_chromium", "open_page", "hide_and_reveal", "bench", "screenshot"]

#: The system Chromium (Debian package ``chromium``).
CHROMIUM = "/usr/bin/chromium"
#: Headless flags: no sandbox (root in containers), nothing that reaches the network.
CHROMIUM_ARGS = ("--no-sandbox", "--headless=new", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")

@contextlib.contextmanager
def launch_chromium(executable: str = CHROMIUM) -> Iterator[Any]:
    """Playwright's Chromium driver on the system browser; yields the Browser.

    Raises:
        WebError: Playwright or the browser is missing (``make browser`` installs both).
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise WebError("the browser test needs Playwright's Python package: run 'make browser'") from exc
    if not Path(executable).is_file():
        raise WebError(f"no Chromium at {executable}: run 'make browser' (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str, timeout_s: float = 30.0) -> Any:
    """A new page at ``url``, waited on until the models are loaded; raises WebError with the page's error."""
    page = browser.new_page(accept_downloads=True, viewport={"width": 1000, "height": 900})
    page.goto(url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=timeout_s * 1000)
    if page.evaluate("document.body.dataset.state") != "ready":
        raise WebError(f"the page did not get ready: {page.inner_text('#error')}")
    return page


def _wait_idle(page: Any, timeout_s: float) -> None:
    page.wait_for_function("document.body.dataset.busy === 'false'", timeout=timeout_s * 1000)


def _pick(page: Any, selector: str, path: Path, timeout_s: float) -> None:
    page.set_input_files(selector, str(path))
    _wait_idle(page, timeout_s)


def hide_and_reveal(page: Any, cover: Path, secret: Path, out_dir: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Hide ``secret`` in ``cover`` on the page, download the stego PNG, open it for reveal, download the secret.

    Returns {'stego': path, 'revealed': path, 'hide_ms', 'reveal_ms', 'psnr_text'}; raises WebError
    with the page's one-line error if a step fails.
    """
    def check() -> None:
        if page.is_visible("#error"):
            raise WebError(f"the page says: {page.inner_text('#error')}")

    def fetch(link: str, name: str) -> Path:
        with page.expect_download() as info:
            page.click(link)
        path = out_dir / name
        info.value.save_as(str(path))
        return path

    out_dir.mkdir(parents=True, exist_ok=True)
    page.evaluate("delete window.stegTimings.hide_ms; delete window.stegTimings.reveal_ms")
    _pick(page, "#cover", cover, timeout_s)
    _pick(page, "#secret", secret, timeout_s)
    check()
    page.click("#hide-button")
    _wait_idle(page, timeout_s)
    check()
    stego = fetch("#stego-download", "stego.png")
    _pick(page, "#stego", stego, timeout_s)
    check()
    page.click("#reveal-button")
    _wait_idle(page, timeout_s)
    check()
    timings = page.evaluate("window.stegTimings")
    return {"stego": stego, "revealed": fetch("#revealed-download", "revealed.png"),
            "hide_ms": timings["hide_ms"], "reveal_ms": timings["reveal_ms"],
            "psnr_text": page.inner_text("#psnr")}


def _held_out_pair(folder: Path, size: int) -> tuple[Path, Path]:
    """Two held-out photos (coffee, rocket), centre-cropped to ``size`` x ``size``, as PNG files in ``folder``."""
    from PIL import Image, ImageOps

    from steg.data import sample_photo_paths
    from steg.io import load_image

    out = []
    for i, path in enumerate(sample_photo_paths("val")[:2]):
        out.append(folder / f"{Path(path).stem}.png")
        ImageOps.fit(load_image(path), (size, size), Image.BICUBIC).save(out[-1])
    return out[0], out[1]


def screenshot(out: Path, size: int = 256, web_dir: Path = WEB_DIR) -> Path:
    """A PNG screenshot of the page after hiding and revealing a held-out pair (for the README)."""
    from PIL import Image

    from steg.io import save_image

    build(web_dir, quiet=True)
    with tempfile.TemporaryDirectory(prefix="steg-web-shot-") as tmp:
        cover, secret = _held_out_pair(Path(tmp), size)
        with running_server(web_dir) as url, launch_chromium() as browser:
            page = open_page(browser, url)
            page.set_viewport_size({"width": 900, "height": 700})
            hide_and_reveal(page, cover, secret, Path(tmp) / "out")
            page.screenshot(path=str(Path(tmp) / "shot.png"), full_page=True)
        img = Image.open(Path(tmp) / "shot.png").convert("RGB")
        img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.LANCZOS)
        return save_image(img.quantize(colors=192).convert("RGB"), out, optimize=True)


def bench(runs: int = 3, size: int = 256, web_dir: Path = WEB_DIR) -> dict[str, Any]:
    """Page load-to-ready time and hide + reveal time of a ``size`` x ``size`` held-out pair in headless Chromium.

    Each run loads the page afresh in a new browser context (ready_ms: navigation
    start to models loaded), then hides and reveals (each: button to PNG ready).
    Returns medians and every run's figures (milliseconds).
    """
    build(web_dir, quiet=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="steg-web-bench-") as tmp:
        pair = _held_out_pair(Path(tmp), size)
        with running_server(web_dir) as url, launch_chromium() as browser:
            for i in range(runs):
                page = open_page(browser, url)
                ready = page.evaluate("window.stegTimings.ready_ms")
                result = hide_and_reveal(page, pair[0], pair[1], Path(tmp) / f"run{i}")
                rows.append({"ready_ms": ready, "hide_ms": result["hide_ms"], "reveal_ms": result["reveal_ms"],
                             "hide_reveal_ms": result["hide_ms"] + result["reveal_ms"]})
                page.close()
            version = browser.version
    return {
        "browser": f"Chromium {version} (headless, {CHROMIUM})",
        "onnxruntime_web": ORT_WEB_VERSION,
        "size": size,
        "runs": rows,
        **{f"median_{k}": round(statistics.median(r[k] for r in rows), 1) for k in rows[0]},
    }

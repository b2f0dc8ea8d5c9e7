"""The web page (web/, steg.browser.page) in a real headless Chromium: hide, reveal, parity with Python, errors.

Needs the system Chromium and Playwright's Python package (`make browser`); without
them these tests fail with a message saying so (they do not skip). The page's
generated files (web/vendor from npm, web/models exported here) are built when missing.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

import steg
from steg.browser import chromium as chromium
from steg.browser import page as web
from steg.data import sample_photo_paths
from steg.inference.files import shipped_models
from steg.io import load_image

# Headless Chromium and npm: part of `make test-full` (which runs `make browser` first), not the fast suite.
pytestmark = pytest.mark.slow


def _arr(path_or_img) -> np.ndarray:
    img = path_or_img if isinstance(path_or_img, Image.Image) else Image.open(path_or_img)
    return np.asarray(img.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def url():
    try:
        web.build(quiet=True)
    except web.WebError as exc:
        pytest.fail(f"cannot build web/: {exc}", pytrace=False)
    with web.running_server() as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium.launch_chromium() as b:
            yield b
    except web.WebError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def page(browser, url):
    p = chromium.open_page(browser, url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Held-out photos as PNG: a 256x256 pair, and a 403x297 pair (padded to 408x304 and tiled by the model)."""
    folder = tmp_path_factory.mktemp("photos")
    coffee, _, chelsea, _ = (load_image(p) for p in sample_photo_paths("val"))
    out = {}
    for name, img in (("cover256", coffee), ("secret256", chelsea)):
        out[name] = folder / f"{name}.png"
        ImageOps.fit(img, (256, 256), Image.BICUBIC).save(out[name])
    for name, img in (("cover403", coffee), ("secret403", chelsea)):
        out[name] = folder / f"{name}.png"
        img.crop((20, 1, 423, 298)).save(out[name])
    return out


def test_server_content_types(url):
    for path, kind in (("vendor/ort-wasm-simd-threaded.wasm", "application/wasm"),
                       ("vendor/ort-wasm-simd-threaded.mjs", "text/javascript"),
                       ("index.html", "text/html")):
        with urllib.request.urlopen(url + path) as response:
            assert response.headers["Content-Type"].startswith(kind)
    with urllib.request.urlopen(url + "models/models.json") as response:
        names = [m["name"] for m in json.load(response)["models"]]
    assert names[0] == "default" and sorted(names) == shipped_models()


@pytest.mark.parametrize("size", ["256", "403"])
def test_page_hides_and_reveals_like_python(page, photos, tmp_path, size):
    cover, secret = photos[f"cover{size}"], photos[f"secret{size}"]
    result = chromium.hide_and_reveal(page, cover, secret, tmp_path)

    model = steg.load_model()
    want_stego = model.hide(load_image(cover), load_image(secret))
    stego = Image.open(result["stego"])
    assert stego.format == "PNG" and stego.size == want_stego.size
    assert not stego.text  # nothing marks a stego PNG (no steg-model chunk)
    # the 8-bit stego image is the Python side's, pixel for pixel (padding and tiling included)
    np.testing.assert_array_equal(_arr(stego), _arr(want_stego))
    want_revealed = model.reveal(stego)
    diff = np.abs(_arr(result["revealed"]) - _arr(want_revealed))
    assert diff.max() <= 1, f"revealed differs by up to {diff.max()} levels"
    # the secret is really there
    assert np.abs(_arr(result["revealed"]) - _arr(load_image(secret))).mean() < 8
    mse = np.mean((_arr(stego).astype(float) - _arr(load_image(cover))) ** 2)
    assert f"PSNR {10 * np.log10(255**2 / mse):.2f} dB" in result["psnr_text"]


def test_drag_and_drop_and_keyboard(page, photos, tmp_path):
    """Files dropped on the drop zones are picked; Tab reaches the controls in order; Enter presses a button."""
    def drop(zone_for: str, path: Path) -> None:
        data = base64.b64encode(path.read_bytes()).decode()
        page.evaluate(
            """([sel, name, data]) => {
                const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, {type: 'image/png'}));
                document.querySelector(sel).closest('.drop')
                    .dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
            }""",
            [zone_for, path.name, data],
        )
        page.wait_for_function("document.body.dataset.busy === 'false'")

    drop("#cover", photos["cover256"])
    drop("#secret", photos["secret256"])
    page.focus("#model")
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["cover", "secret", "hide-button"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#stego-result:not([hidden])")
    page.wait_for_function("document.body.dataset.busy === 'false'")
    assert page.is_hidden("#error")
    assert "PSNR" in page.inner_text("#psnr")
    for control, label in (("model", "Model"), ("cover", "Cover image"), ("secret", "Secret image"),
                           ("stego", "Stego image")):
        assert page.eval_on_selector(f"#{control}", "e => e.labels[0].innerText").startswith(label)


def _error_after_picking(page, selector: str, path: Path) -> str:
    page.set_input_files(selector, str(path))
    page.wait_for_selector("#error:not([hidden])")
    box = page.locator("#error").bounding_box()
    text = page.inner_text("#error")
    assert "\n" not in text and box["height"] < 60  # one line
    return text


def test_errors_are_one_line_on_the_page(page, photos, tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("this is not an image\n")
    assert _error_after_picking(page, "#cover", text_file) == \
        "notes.png: not an image (expected a PNG, JPEG, WebP, GIF or BMP file)"

    big = tmp_path / "big.png"
    Image.new("RGB", (4097, 4097), (90, 120, 30)).save(big)
    assert _error_after_picking(page, "#secret", big).startswith("big.png: 4097x4097 is too large")

    jpeg = tmp_path / "photo.jpg"
    Image.open(photos["cover256"]).save(jpeg, quality=95)
    assert "photo.jpg: not a PNG; a stego image is a lossless PNG" in _error_after_picking(page, "#stego", jpeg)

    other = tmp_path / "other.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("steg-model", "other")
    Image.open(photos["cover256"]).save(other, pnginfo=info)
    assert "other.png: a stego image of model other, not of default" in _error_after_picking(page, "#stego", other)

    # nothing to hide yet: the cover pick failed
    page.click("#hide-button")
    page.wait_for_function("document.body.dataset.busy === 'false'")
    assert page.inner_text("#error") == "choose a cover image and a secret image first"
    assert page.is_hidden("#stego-result")


def test_screenshot_and_timings(page, photos, tmp_path):
    chromium.hide_and_reveal(page, photos["cover256"], photos["secret256"], tmp_path)
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    img = Image.open(shot)
    assert img.width >= 800 and img.height >= 600
    timings = page.evaluate("window.stegTimings")
    # loose bounds (shared CI machines); `python -m steg.browser bench` measures against the targets
    assert 0 < timings["ready_ms"] < 20_000
    assert 0 < timings["hide_ms"] + timings["reveal_ms"] < 20_000


def test_steg_web_serves_and_stops_on_ctrl_c(url):
    """`steg web --port 0` prints its address, serves the page, and Ctrl-C (SIGINT) stops it cleanly."""
    import os
    import re
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "steg", "web", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1)) as response:
            assert b'id="cover" type="file"' in response.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill() if proc.poll() is None else None
    busy = subprocess.run([sys.executable, "-m", "steg", "web", "--port", url.rsplit(":", 1)[1].strip("/")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert busy.returncode == 2 and busy.stderr.startswith("steg: error: cannot serve on 127.0.0.1:")
    assert len(busy.stderr.strip().splitlines()) == 1

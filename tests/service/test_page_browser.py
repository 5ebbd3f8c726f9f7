"""The web page in a real browser against the real service and the trained default model.

Debian's chromium (``scripts/install-browser.sh`` installs it) is driven by Playwright. Digits
are drawn with mouse moves and touch, MNIST test PNGs are uploaded by picker and dropped, and
screenshots land in ``artifacts/screenshots/`` for a person to look at. When a drawn digit is
misread, the failure shows the 28x28 image the model saw, as text.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from testkit.nondigits import nondigit_uploads
from testkit.numbers import generate
from testkit.servers import ROOT, serve

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTLED = """() => {
  const r = document.getElementById('result');
  return r.dataset.version === document.getElementById('pad').dataset.version
    && (r.dataset.state === 'done' || r.dataset.state === 'error');
}"""

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def service_url(default_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("page-service")
    with serve(folder, model_path=str(default_model_path), device="cpu") as server:
        yield server.url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser.sh (the test setup "
            "does it), or apt-get install chromium chromium-driver"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS
        )
        yield launched
        launched.close()


def open_page(browser, url: str, **context_options) -> tuple[Page, list[str]]:
    """A fresh page on ``url``; the returned list collects script errors and CSP violations."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    page.goto(url + "/")
    page.wait_for_selector("#bars li")
    return page, problems


@pytest.fixture
def desktop(browser, service_url):
    page, problems = open_page(browser, service_url, viewport={"width": 1100, "height": 820})
    yield page
    page.context.close()
    assert problems == []


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def settle(page: Page) -> dict:
    """Wait for the answer to the current input; return what the page shows."""
    page.wait_for_function(SETTLED, timeout=30_000)
    seen = page.get_attribute("#seen", "src") or ""
    return {
        "state": page.get_attribute("#result", "data-state"),
        "digit": page.get_attribute("#result", "data-digit"),
        "status": page.inner_text("#status"),
        "error": page.inner_text("#error") if page.is_visible("#error") else "",
        "seen": seen.removeprefix("data:image/png;base64,"),
        "bars": page.locator("#bars li .value").all_inner_texts(),
    }


def ascii_art(b64_png: str) -> str:
    """The 28x28 model input as text, for failure messages."""
    if not b64_png:
        return "(no input image)"
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64_png))).convert("L"))
    return "\n".join("".join(" .:-=+*#%@"[min(9, v // 26)] for v in row) for row in pixels)


def stroke(page: Page, points: list[tuple[float, float]]) -> None:
    """Press, move through ``points`` (fractions of the pad), release."""
    box = page.locator("#pad").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(*point), steps=3)
    page.mouse.up()


def loop(cx: float, cy: float, rx: float, ry: float, n: int = 36) -> list[tuple[float, float]]:
    return [
        (cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


DRAWINGS = {
    1: [[(0.52, 0.18), (0.5, 0.5), (0.48, 0.82)]],
    0: [loop(0.5, 0.5, 0.2, 0.3)],
    7: [[(0.28, 0.22), (0.72, 0.22)], [(0.72, 0.22), (0.58, 0.5), (0.45, 0.82)]],
}


def test_drawn_digits_are_recognized_clearing_between(desktop):
    misread = []
    for digit, strokes in DRAWINGS.items():
        for points in strokes:
            stroke(desktop, points)
        shown = settle(desktop)
        shot(desktop, f"desktop-drawn-{digit}")
        if shown["state"] != "done" or shown["digit"] != str(digit):
            misread.append(
                f"drew {digit}, page shows {shown['status']!r} {shown['error']!r}; "
                f"bars {shown['bars']}; the model saw:\n{ascii_art(shown['seen'])}"
            )
        desktop.click("#clear")
        assert desktop.get_attribute("#result", "data-state") == "idle"
        assert desktop.is_disabled("#undo") and desktop.is_disabled("#clear")
    assert not misread, "\n\n".join(misread)


def test_answer_shows_digit_confidence_bars_and_model_input(desktop):
    stroke(desktop, DRAWINGS[1][0])
    shown = settle(desktop)
    assert shown["state"] == "done", shown
    assert desktop.inner_text("#digit") == shown["digit"]
    assert desktop.inner_text("#confidence").endswith("% sure")
    assert len(shown["bars"]) == 10 and all(v.endswith("%") for v in shown["bars"])
    top = desktop.locator("#bars li.top")
    assert top.get_attribute("data-digit") == shown["digit"]
    assert float(top.locator(".fill").evaluate("e => parseFloat(e.style.width)")) > 50
    size = desktop.eval_on_selector("#seen", "e => [e.naturalWidth, e.naturalHeight]")
    assert size == [28, 28]
    assert desktop.eval_on_selector("#seen", "e => getComputedStyle(e).imageRendering") == (
        "pixelated"
    )
    assert desktop.get_attribute("#status", "aria-live") == "polite"


def test_undo_removes_the_last_stroke(desktop):
    stroke(desktop, DRAWINGS[1][0])
    assert settle(desktop)["digit"] == "1"
    stroke(desktop, loop(0.5, 0.5, 0.25, 0.3))
    settle(desktop)
    desktop.click("#undo")
    shown = settle(desktop)
    assert shown["digit"] == "1", ascii_art(shown["seen"])
    desktop.keyboard.press("Control+z")
    assert desktop.get_attribute("#result", "data-state") == "idle"
    assert desktop.is_disabled("#undo")


def test_upload_mnist_png_by_picker(desktop, mnist_png_samples):
    for index in (0, 1, 2):
        png, label = mnist_png_samples[index]
        desktop.set_input_files(
            "#file", files=[{"name": f"mnist-{index}.png", "mimeType": "image/png", "buffer": png}]
        )
        shown = settle(desktop)
        assert (shown["state"], shown["digit"]) == ("done", str(label)), shown
        assert (
            desktop.inner_text("#source")
            == f"Showing your file: mnist-{index}.png. Drawing adds to it."
        )
    # The upload is shown on the pad (MNIST's black background) and Clear removes it.
    desktop.wait_for_function(
        "() => document.getElementById('pad').getContext('2d').getImageData(3, 3, 1, 1).data[0] < 8"
    )
    shot(desktop, "desktop-upload")
    desktop.click("#clear")
    assert desktop.get_attribute("#result", "data-state") == "idle"
    assert not desktop.is_visible("#source")


def test_dropped_file_is_predicted(desktop, mnist_png_samples):
    png, label = mnist_png_samples[3]
    desktop.evaluate(
        """([b64, name]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], name, { type: 'image/png' }));
          const zone = document.getElementById('dropzone');
          zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true }));
          zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true }));
        }""",
        [base64.b64encode(png).decode(), "dropped.png"],
    )
    shown = settle(desktop)
    assert (shown["state"], shown["digit"]) == ("done", str(label)), shown


def test_a_picture_that_is_not_a_digit_is_called_so(desktop, service_url):
    sample = next(s for s in nondigit_uploads(40) if s.kind == "word")
    direct = httpx.post(f"{service_url}/predict", files={"file": ("word.png", sample.data)})
    assert direct.status_code == 200 and direct.json()["is_digit"] is False, direct.json()
    desktop.set_input_files(
        "#file", files=[{"name": "word.png", "mimeType": "image/png", "buffer": sample.data}]
    )
    shown = settle(desktop)
    shot(desktop, "desktop-not-a-digit")
    assert (shown["state"], shown["digit"]) == ("done", "none"), shown
    assert "does not look like a digit" in shown["status"]
    assert desktop.inner_text("#digit") == "?"


def test_non_image_upload_shows_the_service_reason(desktop, service_url):
    junk = b"these are words, not pixels\n"
    desktop.set_input_files(
        "#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": junk}]
    )
    shown = settle(desktop)
    shot(desktop, "desktop-error")
    direct = httpx.post(f"{service_url}/predict", files={"file": ("notes.txt", junk)})
    assert direct.status_code == 415
    assert shown["state"] == "error"
    detail = direct.json()["detail"].rstrip(".")
    assert shown["error"] == f"{detail[0].upper()}{detail[1:]}."
    assert not desktop.is_visible("#answer")


def test_keyboard_reaches_upload_docs_and_buttons(desktop):
    stroke(desktop, DRAWINGS[1][0])
    settle(desktop)
    reached = []
    for _ in range(8):
        desktop.keyboard.press("Tab")
        reached.append(
            desktop.evaluate(
                "() => document.activeElement.id || document.activeElement.getAttribute('href')"
            )
        )
    assert {"undo", "clear", "file", "docs"} <= set(reached), reached
    outline = desktop.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_phone_width_layout_and_touch_drawing(browser, service_url):
    page, problems = open_page(
        browser,
        service_url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
        box = page.locator("#pad").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 240
        cdp = page.context.new_cdp_session(page)
        x = box["x"] + 0.5 * box["width"]
        for step in range(8):
            y = box["y"] + box["height"] * (0.2 + 0.6 * step / 7)
            kind = "touchStart" if step == 0 else "touchMove"
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        shown = settle(page)
        shot(page, "phone-drawn-1")
        assert (shown["state"], shown["digit"]) == ("done", "1"), ascii_art(shown["seen"])
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    finally:
        page.context.close()
    assert problems == []


def test_unreachable_service_is_reported_in_plain_words(browser, default_model_path, tmp_path):
    with serve(tmp_path, model_path=str(default_model_path), device="cpu") as server:
        page, problems = open_page(browser, server.url, viewport={"width": 1100, "height": 820})
    try:
        stroke(page, DRAWINGS[1][0])
        shown = settle(page)
        shot(page, "desktop-unreachable")
        assert shown["state"] == "error"
        assert shown["error"] == (
            "Could not reach the service. Check that it is running, then try again."
        )
    finally:
        page.context.close()
    assert problems == []


def test_with_api_keys_the_page_asks_for_one_and_keeps_it(
    browser, default_model_path, mnist_png_samples, tmp_path
):
    png, label = mnist_png_samples[5]
    files = [{"name": "digit.png", "mimeType": "image/png", "buffer": png}]
    settings = {"model_path": str(default_model_path), "api_keys": "page-key"}
    with serve(tmp_path, **settings) as server:
        page, problems = open_page(browser, server.url, viewport={"width": 1100, "height": 820})
        try:
            page.set_input_files("#file", files=files)
            shown = settle(page)
            assert shown["state"] == "error" and "API key" in shown["error"]
            assert page.is_visible("#key-form")
            page.fill("#key", "wrong-key")
            page.click("#key-submit")
            page.wait_for_function("() => !document.getElementById('key-form').hidden")
            assert "not accepted" in page.inner_text("#key-message")
            shot(page, "desktop-api-key")
            page.fill("#key", "page-key")
            page.click("#key-submit")
            shown = settle(page)
            assert (shown["state"], shown["digit"]) == ("done", str(label)), shown
            assert not page.is_visible("#key-form")
            page.wait_for_function("() => /model Digit/.test(document.body.innerText)")
            page.reload()  # the key stays for the browser session
            page.wait_for_selector("#bars li")
            page.set_input_files("#file", files=files)
            shown = settle(page)
            assert (shown["state"], shown["digit"]) == ("done", str(label)), shown
        finally:
            page.context.close()
    assert [p for p in problems if "401" not in p] == []


def test_number_mode_reads_a_number_and_boxes_each_digit(desktop, service_url, mnist_test):
    images, labels = (t.numpy() for t in mnist_test)
    samples = generate("apart", images, labels, 20)
    sample = next(
        s
        for s in samples
        if 3 <= len(s.number) <= 5
        and httpx.post(f"{service_url}/read", files={"file": ("n.png", s.data)}).json()["number"]
        == s.number
    )
    desktop.set_input_files(
        "#file", files=[{"name": "number.png", "mimeType": "image/png", "buffer": sample.data}]
    )
    shown = settle(desktop)
    assert shown["state"] == "done" and "a whole number" in shown["status"], shown
    desktop.check('input[name="mode"][value="number"]')
    shown = settle(desktop)
    shot(desktop, "desktop-number-upload")
    assert (shown["state"], shown["digit"]) == ("done", sample.number), shown
    assert shown["status"].startswith(f"It reads {sample.number}")
    assert desktop.locator("#number-digits li").count() == len(sample.number)
    pad = desktop.locator("#pad").bounding_box()
    boxes = [box.bounding_box() for box in desktop.locator("#boxes .box").all()]
    assert len(boxes) == len(sample.number)
    lefts = [box["x"] for box in boxes]
    assert lefts == sorted(lefts)
    for box in boxes:
        assert pad["x"] <= box["x"] and box["x"] + box["width"] <= pad["x"] + pad["width"] + 1
        assert pad["y"] <= box["y"] and box["y"] + box["height"] <= pad["y"] + pad["height"] + 1
    desktop.click("#clear")
    assert desktop.locator("#boxes .box").count() == 0
    for points in ([(0.3, 0.3), (0.29, 0.5), (0.28, 0.7)], loop(0.62, 0.5, 0.12, 0.2)):
        stroke(desktop, points)
    shown = settle(desktop)
    shot(desktop, "desktop-number-drawn")
    assert (shown["state"], shown["digit"]) == ("done", "10"), shown
    assert desktop.locator("#boxes .box").count() == 2

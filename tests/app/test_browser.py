"""A real browser drives the app: upload, ask, run, scrub the layer slider, screenshot.

Headless Debian Chromium (`apt-get install chromium`) through the PyPI playwright package; never
`playwright install`. Skipped where no browser exists, unless CI is set (then it fails).
Screenshots go to a temporary folder, or to LASER_SCREENSHOTS when set: `python
scripts/screenshots.py` sets it to assets/screenshots to refresh the README's pictures on purpose.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest
from PIL import Image

from ui import page as ui_page
from ui.compare import COMPARE_METHODS, METHOD_NAMES
from ui.handlers import load_examples

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("LASER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLES = ASSETS / "examples"
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: LASER_SCREENSHOTS if set, else a temporary folder."""
    chosen = os.environ.get("LASER_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(
    app_module: ModuleType, tmp_path_factory: pytest.TempPathFactory, scene: Any
) -> Iterator[str]:
    """The app, served in-process, with the project's examples (or one of its own if none)."""
    patch = pytest.MonkeyPatch()
    if not load_examples(ui_page.EXAMPLES_DIR):
        examples = tmp_path_factory.mktemp("examples")
        scene(400, 300).save(examples / "boxes.png")
        rows = [{"image": "boxes.png", "question": "What colour is the big box?", "answer": "blue"}]
        (examples / "examples.json").write_text(json.dumps(rows))
        patch.setattr(ui_page, "EXAMPLES_DIR", examples)
    demo = app_module.build_demo()
    demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **app_module.launch_options()
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
        patch.undo()


@pytest.fixture(scope="module")
def showcase(
    handlers: ModuleType, scene: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str | None, Path, str]:
    """(model label to pick, image, question) for the screenshots: the embedded model on one of
    its examples when both exist, else the session's tiny random model on a generated scene."""
    from laser_core import EMBEDDED_MODEL

    examples = handlers.load_examples(EXAMPLES)
    if (EMBEDDED_MODEL / "config.json").is_file() and examples:
        from ui import models

        label = dict((v, k) for k, v in models.model_choices())[models.EMBEDDED]
        image, question, *_ = next((row for row in examples if "pattern" in row[1]), examples[0])
        return label, Path(image), question
    image = tmp_path_factory.mktemp("showcase") / "scene.png"
    scene(800, 600).save(image)
    return None, image, "what colour is the square"


def _src(page: Any, elem_id: str) -> str:
    return page.locator(f"#{elem_id} img").first.get_attribute("src") or ""


def _fill_inputs(page: Any, showcase: tuple[str | None, Path, str]) -> None:
    label, image, question = showcase
    page.locator("input[type=file]").first.set_input_files(str(image))
    page.get_by_label("Question").fill(question)
    if label is not None:
        page.get_by_label("Model").click()
        page.get_by_role("option", name=label).click()


def _fill_and_keep(field: Any, text: str) -> None:
    """Fill a field of a panel that has just opened; Gradio may mount the panel's components a
    moment after their inputs appear and reset them to their value then, so fill until it stays."""
    for _ in range(10):
        field.fill(text)
        field.page.wait_for_timeout(300)
        if field.input_value() == text:
            return
    raise AssertionError(f"the field kept being reset; it holds {field.input_value()!r}")


def _wait_for_new_src(page: Any, elem_id: str, old: str) -> None:
    page.wait_for_function(
        "([id, old]) => { const img = document.querySelector(`#${id} img`);"
        " return img && img.getAttribute('src') !== old; }",
        arg=[elem_id, old],
        timeout=TIMEOUT_MS,
    )


def test_upload_ask_run_and_scrub(
    browser: Any, url: str, showcase: tuple[str | None, Path, str], screenshots: Path
) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname or ""))
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Run LASER").wait_for(timeout=TIMEOUT_MS)

    _fill_inputs(page, showcase)
    page.get_by_text("Settings: every LaserConfig field").click()  # mounts every control
    page.get_by_label("force_layer").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Run LASER").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('.laser-answer-main');"
        " return a && a.textContent.trim() !== '…'; }",
        timeout=TIMEOUT_MS,
    )
    page.locator("#map-raw").scroll_into_view_if_needed()  # images load lazily
    page.locator("#map-raw img").first.wait_for(timeout=TIMEOUT_MS)
    answer = page.locator(".laser-answer").first.inner_text()
    assert "forced" not in answer, "a blank optional setting must stay None"
    before = {name: _src(page, name) for name in ("map-raw", "map-relative", "map-contrastive")}
    assert all(before.values())

    slider = page.locator("#layer-slider input[type=range]")
    chosen = slider.input_value()  # l*
    start = time.perf_counter()
    slider.fill("2" if chosen != "2" else "1")
    _wait_for_new_src(page, "map-raw", before["map-raw"])
    print(f"\nslider to new heat map in the browser: {(time.perf_counter() - start) * 1000:.0f} ms")
    page.wait_for_timeout(500)  # let all three panels settle
    after = {name: _src(page, name) for name in before}
    assert all(after[name] != before[name] for name in before), "every heat map was redrawn"
    slider.fill(chosen)  # back to l* for the screenshot
    _wait_for_new_src(page, "map-raw", after["map-raw"])
    page.get_by_text("Settings: every LaserConfig field").click()  # closed again
    page.wait_for_timeout(800)

    page.screenshot(path=str(screenshots / "app-explain.png"), full_page=True)
    with Image.open(screenshots / "app-explain.png") as shot:
        assert shot.width >= 1600
    assert hosts <= {"127.0.0.1", "localhost"}, f"requests left the machine: {hosts}"
    page.close()


def test_compare_tab(
    browser: Any,
    url: str,
    showcase: tuple[str | None, Path, str],
    tmp_path: Path,
    screenshots: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Run LASER").wait_for(timeout=TIMEOUT_MS)
    _fill_inputs(page, showcase)
    methods = [METHOD_NAMES[m] for m in COMPARE_METHODS]
    page.get_by_role("tab", name="Compare methods").click()
    page.get_by_role("button", name="Compare methods").click()
    try:
        page.get_by_text(f"Compared {len(methods)} methods").wait_for(timeout=TIMEOUT_MS)
    except Exception:
        page.screenshot(path=str(tmp_path / "failed-compare.png"), full_page=True)
        raise
    table = page.locator("#compare-table")
    table.wait_for(timeout=TIMEOUT_MS)
    text = table.inner_text()
    assert all(name in text for name in methods), text
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshots / "app-compare.png"), full_page=True)
    page.close()


def test_an_example_fills_the_inputs(browser: Any, url: str, app_module: ModuleType) -> None:
    _, text, expected, caption = load_examples(ui_page.EXAMPLES_DIR)[0]
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url, wait_until="load")
    page.get_by_text(text).first.click(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('textarea')].some(t => t.value === text)",
        arg=text,
        timeout=TIMEOUT_MS,
    )
    assert page.get_by_label("Question").input_value() == text
    assert page.get_by_label("Expected answer (from the example)").input_value() == expected
    assert page.get_by_label("What this example shows").input_value() == caption
    page.get_by_role("button", name="Run LASER").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('.laser-answer-main');"
        " return a && a.textContent.trim() !== '…'; }",
        timeout=TIMEOUT_MS,
    )
    page.get_by_text("Done in").wait_for(timeout=TIMEOUT_MS)  # the example image was read
    page.close()


def test_clvs_tab(
    browser: Any, url: str, showcase: tuple[str | None, Path, str], screenshots: Path
) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Run LASER").wait_for(timeout=TIMEOUT_MS)
    _fill_inputs(page, showcase)
    page.get_by_role("tab", name="CLVS").click()
    page.get_by_role("button", name="Run CLVS").click()
    page.get_by_text("CLVS done").wait_for(timeout=TIMEOUT_MS)
    assert "CLVS ANSWER" in page.locator(".laser-answer").nth(1).inner_text().upper()
    page.wait_for_timeout(800)
    page.screenshot(path=str(screenshots / "app-clvs.png"), full_page=True)
    page.close()


def test_typed_html_is_shown_as_text(
    browser: Any, url: str, showcase: tuple[str | None, Path, str]
) -> None:
    """HTML and Markdown typed into a setting come back, in the status line and the pop-up, as
    the text typed: nothing is fetched, no link or form appears."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Run LASER").wait_for(timeout=TIMEOUT_MS)
    _fill_inputs(page, showcase)
    page.get_by_text("Settings: every LaserConfig field").click()
    attack = (
        '<img src="/probe-img.png"> [a link](/probe-link) www.probe.example '
        '<form action="/probe-form"><button>go</button></form>'
    )
    _fill_and_keep(page.get_by_label("force_layer"), attack)
    page.get_by_role("button", name="Run LASER").click()
    status = page.locator("#run-status")
    page.get_by_text("force_layer must be").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert not [u for u in requested if "probe" in u], requested
    for tag in ("img", "a", "form", "button"):
        assert status.locator(tag).count() == 0, status.inner_html()
    assert '<img src="/probe-img.png">' in status.inner_text()
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=TIMEOUT_MS)
    assert toast.locator("img").count() == 0 and "<img" in toast.inner_text()
    page.close()

"""Real-browser tests: Playwright (sync API) drives Debian's chromium against the served dashboard.

The app runs in-process over two tiny random pipelines (``app_url`` in conftest). Chromium is
``/usr/bin/chromium`` (``apt-get install chromium``), never a ``playwright install`` download.
Selectors lean on our elem_ids (``#generate-gallery img``) and on ARIA roles and visible text
for Gradio's own widgets (tabs, checkboxes, table rows, toasts), not on Svelte class names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
RUN_TIMEOUT_MS = 120_000   # a generation on a slow shared CPU (first load included)
UI_TIMEOUT_MS = 30_000     # anything else: page load, toasts, tab switches

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: the browser tests need Debian's "
                                                     "chromium (apt-get install chromium; scripts/setup.sh --test)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # expect() has its own 5 s default, apart from the context's: a page load on a busy shared CPU
    # (CI runs this after minutes of training tests) can take longer than that.
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, app_url):
    """A fresh browser context (its own Gradio session) on the dashboard, loaded."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url, wait_until="domcontentloaded")
    expect(page.locator("#generate-button")).to_be_visible()
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def generate(page, prompt: str):
    """Type ``prompt`` on the Generate tab, click Generate, wait for the first image; return it."""
    from playwright.sync_api import expect

    page.locator("#generate-prompt textarea").fill(prompt)
    page.locator("#generate-button").click()
    image = page.locator("#generate-gallery img").first
    expect(image).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#generate-timing")).to_contain_text("steps/s", timeout=RUN_TIMEOUT_MS)
    return image


def image_loaded(image) -> bool:
    return image.evaluate("img => img.complete && img.naturalWidth > 0")


def error_toasts(page):
    # Gradio renders gr.Error as an ARIA live region (role=status) holding our message.
    return page.get_by_role("status").filter(has_text=re.compile("error", re.I))


def test_generate_shows_image_and_timing(page, artifacts_dir):
    from playwright.sync_api import expect

    image = generate(page, "a small red circle on a blue background")
    expect(page.locator("#generate-gallery img")).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image_loaded(image)
    timing = page.locator("#generate-timing").inner_text()
    assert re.search(r"\d+(\.\d+)? steps/s", timing), timing
    assert "TINY-A" in timing, timing  # the default model ran (shown by its display name)
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "generate.png"), full_page=True)


def test_empty_prompt_shows_error_then_server_keeps_serving(page, artifacts_dir):
    from playwright.sync_api import expect

    page.locator("#generate-prompt textarea").fill("   ")
    page.locator("#generate-button").click()
    toast = page.get_by_role("status").filter(has_text="prompt is empty")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("describe the image you want")
    expect(page.locator("#generate-gallery img")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "generate-error.png"))
    toast.get_by_role("button", name="Close", exact=True).click()
    expect(toast).to_have_count(0)

    image = generate(page, "a blue square")
    assert image.is_visible()
    expect(error_toasts(page)).to_have_count(0)


def test_compare_two_models(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    models = page.locator("#compare-models")
    expect(models).to_be_visible()
    for label in ("TINY-A", "TINY-B"):
        box = models.get_by_role("checkbox", name=label, exact=True)
        box.check()
        expect(box).to_be_checked()
    page.locator("#compare-prompt textarea").fill("a green triangle")
    page.locator("#compare-button").click()

    images = page.locator("#compare-gallery img")
    expect(images).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    for image in images.all():
        expect(image).to_be_visible()
    # Data rows only: the header row holds columnheaders, not gridcells.
    table = page.locator("#compare-table")
    rows = table.get_by_role("row").filter(has=page.get_by_role("gridcell"))
    expect(rows).to_have_count(2)
    cells = [[c.strip() for c in row.get_by_role("gridcell").all_inner_texts()] for row in rows.all()]
    assert sorted(r[0] for r in cells) == ["tiny-a", "tiny-b"], cells
    for row in cells:
        assert row[1].startswith("cpu/"), f"'runs on' should name the placement: {row}"
        assert re.fullmatch(r"\d+(\.\d+)? (steps|images)/s", row[3]) and float(row[3].split()[0]) > 0, \
            f"speed not positive: {row}"
        assert row[-1] == "", f"model reported an error: {row}"
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "compare.png"), full_page=True)

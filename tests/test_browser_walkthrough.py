"""The stakeholder's first minute, in a real browser: every tab does its main job with its defaults.

Against ``python app.py`` in its own process with the real catalog (the embedded models, the
bundled examples), Chromium at 1440×1000, as a new user would click: an example, then the tab's
one primary button. What a person sees is asserted — result images on screen at ≥ 256 px and fully
visible, no toast on the happy path, tables with rows, plots drawn — and one screenshot per tab is
saved (``test-artifacts/walkthrough-<tab>.png``; the README's screenshots are copies of these).
"""

from __future__ import annotations

import re

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, pytestmark  # noqa: F401

RUN_TIMEOUT_MS = 300_000   # the first call of a tab loads its models on a slow shared CPU
VIEWPORT = {"width": 1440, "height": 1000}
MIN_SIDE = 256


@pytest.fixture(scope="module")
def page(served_app):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(served_app.url, wait_until="domcontentloaded")
        expect(page.locator("#generate-button")).to_be_visible()
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def toasts(page):
    # A toast has a Close button; progress text and screen-reader announcements share the status role.
    return page.get_by_role("status").filter(has=page.get_by_role("button", name="Close", exact=True))


def assert_no_toast(page, where: str) -> None:
    texts = [t for t in toasts(page).all_inner_texts() if t.strip()]
    assert not texts, f"{where}: a toast on the happy path: {texts}"


def assert_images_readable(page, selector: str, count: int | None = None) -> None:
    """Every result image is loaded, at least MIN_SIDE px on screen, and not clipped by its container."""
    from playwright.sync_api import expect

    images = page.locator(selector)
    expect(images.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    if count is not None:
        expect(images).to_have_count(count, timeout=RUN_TIMEOUT_MS)
    for image in images.all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        box = image.bounding_box()
        assert box and min(box["width"], box["height"]) >= MIN_SIDE - 2, f"{selector}: shown at {box}"
        # No ancestor may hide part of the results: neither clip the image nor scroll it in a box.
        clipped = image.evaluate("""img => {
            const r = img.getBoundingClientRect();
            for (let e = img.parentElement; e && e !== document.body && e !== document.documentElement;
                 e = e.parentElement) {
                const s = getComputedStyle(e);
                if (!/(auto|scroll|hidden)/.test(s.overflow + s.overflowY + s.overflowX)) continue;
                if (e.scrollHeight > e.clientHeight + 2 && /(auto|scroll)/.test(s.overflowY)) return "scrolls: " + e.className;
                const p = e.getBoundingClientRect();
                if (r.top < p.top - 1 || r.bottom > p.bottom + 1 || r.left < p.left - 1 || r.right > p.right + 1)
                    return "clips: " + e.className;
            }
            return null; }""")
        assert clipped is None, f"{selector}: a result image is hidden in part ({clipped})"


def table_rows(page, selector: str) -> list[list[str]]:
    """The data rows of a result table, after checking that none hides behind a scroll."""
    from playwright.sync_api import expect

    rows = page.locator(selector).get_by_role("row").filter(has=page.get_by_role("gridcell"))
    expect(rows.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    scrolling = page.locator(selector).evaluate("""el => [...el.querySelectorAll("*")].some(e =>
        /(auto|scroll)/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 2)""")
    assert not scrolling, f"{selector}: rows hidden in a scrolling box"
    return [[c.strip() for c in row.get_by_role("gridcell").all_inner_texts()] for row in rows.all()]


def click_example(page, elem_id: str, index: int = 0) -> None:
    """Click example ``index`` of a gr.Examples (a table row for several inputs, a thumbnail for one)."""
    rows = page.locator(f"#{elem_id} tbody tr")
    (rows if rows.count() else page.locator(f"#{elem_id} button")).nth(index).click()
    page.wait_for_timeout(800)  # the example's files reach the inputs


def shoot(page, artifacts_dir, tab: str) -> None:
    page.wait_for_timeout(600)  # let the last images paint
    page.screenshot(path=str(artifacts_dir / f"walkthrough-{tab}.png"), full_page=True)


def test_generate(page, artifacts_dir):
    from playwright.sync_api import expect

    expect(page.locator("#generate-model-note")).to_contain_text("circles, squares, triangles and stars")
    page.locator("#generate-examples").get_by_text("a large red star on a white background").click()
    expect(page.locator("#generate-prompt textarea")).to_have_value("a large red star on a white background")
    expect(page.locator("#generate-note")).to_have_text("")
    page.locator("#generate-button").click()
    assert_images_readable(page, "#generate-gallery img", count=1)
    # The 64 px result is enlarged crisply on screen (the file stays 64 px).
    image = page.locator("#generate-gallery img").first
    assert image.evaluate("img => [img.naturalWidth, getComputedStyle(img).imageRendering]") == [64, "pixelated"]
    expect(page.locator("#generate-timing")).to_contain_text("steps/s")
    assert_no_toast(page, "Generate")
    shoot(page, artifacts_dir, "generate")
    # Outside the vocabulary: an inline note, not an error.
    page.locator("#generate-prompt textarea").fill("a lighthouse at dusk, oil painting")
    expect(page.locator("#generate-note")).to_contain_text("outside what the embedded models learnt")
    assert_no_toast(page, "Generate, out-of-domain prompt")


def test_generate_emoji(page, artifacts_dir):
    from playwright.sync_api import expect

    # The emoji world's example sets its model; four seeds of one prompt: four layouts, the same emoji.
    page.locator("#generate-examples").get_by_text("a cat to the left of a rocket on a blue background").click()
    expect(page.locator("#generate-model input")).to_have_value(re.compile("genimg emoji"))
    expect(page.locator("#generate-model-note")).to_contain_text("OpenMoji")
    page.locator("#generate-prompt textarea").fill("a grinning face to the left of a cat on a yellow background")
    page.get_by_text("Settings (filled with the model's defaults)").click()
    page.locator("#generate-batch input").fill("4")
    page.locator("#generate-seed input").fill("1")
    page.locator("#generate-button").click()
    assert_images_readable(page, "#generate-gallery img", count=4)
    # Four results read as one row at 1440 px (not three and a straggler).
    tops = {round(box["y"]) for box in (im.bounding_box() for im in page.locator("#generate-gallery img").all())}
    assert len(tops) == 1, f"the four results sit on {len(tops)} rows"
    image = page.locator("#generate-gallery img").first
    assert image.evaluate("img => img.naturalWidth") == 128
    expect(page.locator("#generate-timing")).to_contain_text("genimg emoji")
    expect(page.locator("#generate-timing")).to_contain_text(re.compile(r"one pass, [\d.]+ images/s"))
    assert_no_toast(page, "Generate, emoji")
    page.get_by_text("Settings (filled with the model's defaults)").click()  # closed again for the screenshot
    shoot(page, artifacts_dir, "generate-emoji")


def test_compare(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-examples").get_by_text("three green triangles on a black background").click()
    page.locator("#compare-button").click()
    rows = table_rows(page, "#compare-table")
    assert_images_readable(page, "#compare-gallery img", count=len(rows))
    assert len(rows) == 4, rows  # the four embedded models, preselected
    for row in rows:
        assert re.fullmatch(r"\d+(\.\d+)? (steps|images)/s", row[3]), row
        assert row[-1] == "", row
    one_step = [r for r in rows if "gan" in r[0] or "vae" in r[0]]
    assert one_step and all(r[3].endswith("images/s") for r in one_step), rows
    expect(page.locator("#compare-models")).to_contain_text("weights missing")
    assert_no_toast(page, "Compare")
    shoot(page, artifacts_dir, "compare")


def test_style(page, artifacts_dir):
    page.get_by_role("tab", name="Style").click()
    click_example(page, "style-examples")
    page.locator("#style-button").click()
    rows = table_rows(page, "#style-table")
    assert len(rows) == 4, rows  # the content itself + the three default methods
    assert_images_readable(page, "#style-gallery img", count=3)
    assert_no_toast(page, "Style")
    shoot(page, artifacts_dir, "style")


def test_restore(page, artifacts_dir):
    page.get_by_role("tab", name="Restore").click()
    click_example(page, "restore-examples")
    page.locator("#restore-button").click()
    rows = table_rows(page, "#restore-table")
    assert rows[0][0] == "(degraded input)" and len(rows) >= 3, rows
    assert_images_readable(page, "#restore-gallery img")
    assert "BRISQUE" not in page.locator("#restore-table").inner_text()  # no all-empty column
    assert_no_toast(page, "Restore")
    shoot(page, artifacts_dir, "restore")


def test_metrics(page, artifacts_dir):
    page.get_by_role("tab", name="Metrics").click()
    click_example(page, "metrics-examples", 1)
    page.locator("#metrics-button").click()
    rows = table_rows(page, "#metrics-table")
    by_name = {r[0]: r[1] for r in rows}
    assert by_name.get("PSNR") and not by_name["PSNR"].startswith("–"), rows
    assert by_name.get("Entropy") and re.match(r"\d", by_name["Entropy"]), rows
    assert_no_toast(page, "Metrics")
    shoot(page, artifacts_dir, "metrics")


def test_evaluate(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-button").click()
    rows = table_rows(page, "#evaluate-table")
    assert len(rows) == 4, rows  # the embedded models, each at its own settings
    for plot in ("#evaluate-scatter", "#evaluate-bars"):
        expect(page.locator(f"{plot} canvas, {plot} svg.marks").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    assert_images_readable(page, "#evaluate-gallery img")
    assert "unavailable" not in " ".join(" ".join(r) for r in rows), rows  # said once, above the table
    assert_no_toast(page, "Evaluate")
    shoot(page, artifacts_dir, "evaluate")

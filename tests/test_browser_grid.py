"""The Grid and PNG Info tabs in a real browser, against ``python app.py`` with the real catalog.

Grid: the defaults are the issue's done-when (steps 4, 8, 20 x genimg-diffusion / genimg-fewstep);
one click gives a labelled grid image and a table of six timed cells. PNG Info: a real A1111 file,
one of ours, and a plain image, as a visitor drops them; "Send to Generate" fills the Generate tab.
Screenshots: test-artifacts/grid-tab.png, test-artifacts/info-tab.png, test-artifacts/info-sent.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, pytestmark  # noqa: F401
from tests.test_browser_walkthrough import RUN_TIMEOUT_MS, assert_images_readable, assert_no_toast, table_rows

ROOT = Path(__file__).resolve().parent.parent
A1111_PNG = ROOT / "tests/data/pnginfo/automatic1111_cropped.png"  # written by A1111 (see its README)


@pytest.fixture(scope="module")
def page(served_app):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(served_app.url, wait_until="domcontentloaded")
        expect(page.locator("#generate-button")).to_be_visible()
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def test_grid_tab_runs_steps_by_models(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Grid").click()
    expect(page.locator("#grid-x-values input, #grid-x-values textarea")).to_have_value("4,8,20")
    page.locator("#grid-button").click()
    rows = table_rows(page, "#grid-table")
    assert [r[:2] for r in rows] == [[f"steps {s}", m] for m in ("genimg-diffusion", "genimg-fewstep")
                                     for s in (4, 8, 20)], rows
    headers = page.locator("#grid-table thead th").all_inner_texts()
    assert [h.strip() for h in headers[:4]] == ["Steps", "Model", "sampler", "warm s"], headers
    for row in rows:
        assert row[-1] == "", row
        assert row[2] == {"genimg-diffusion": "DPM++ 2M", "genimg-fewstep": "LCM"}[row[1]], row
        assert row[4].endswith("steps/s") and row[9] in ("reused", "encoded"), row
    # Every column fits the page (no sideways scroll hiding the memory and error columns).
    assert page.locator("#grid-table").evaluate("""el => [...el.querySelectorAll("*")].every(e =>
        !/(auto|scroll)/.test(getComputedStyle(e).overflowX) || e.scrollWidth <= e.clientWidth + 2)""")
    assert_images_readable(page, "#grid-images img", count=1)
    image = page.locator("#grid-images img").first
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural[0] > 3 * 192 and natural[1] > 2 * 192, natural  # 3 columns x 2 rows of enlarged tiles
    assert_no_toast(page, "Grid")
    page.wait_for_timeout(600)
    page.screenshot(path=str(artifacts_dir / "grid-tab.png"), full_page=True)


def upload(page, path: Path) -> None:
    page.locator("#info-image input[type=file]").set_input_files(str(path))


def test_png_info_reads_a1111_and_sends_to_generate(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="PNG Info").click()
    upload(page, A1111_PNG)
    expect(page.locator("#info-summary")).to_contain_text("Written by AUTOMATIC1111")
    rows = dict((r[0], r[1]) for r in table_rows(page, "#info-table"))
    assert rows["Prompt"] == "photo of a duck" and rows["Model hash"] == "c0d1994c73" and rows["Sampler"] == "UniPC"
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts_dir / "info-tab.png"), full_page=True)
    page.locator("#info-send").click()
    expect(page.locator("#generate-prompt textarea")).to_have_value("photo of a duck")
    expect(page.locator("#generate-negative textarea")).to_have_value("monochrome")
    page.get_by_text("Settings (filled with the model's defaults)").click()
    expect(page.locator("#generate-steps input")).to_have_value("15")
    expect(page.locator("#generate-seed input")).to_have_value("235284042")
    expect(page.locator("#generate-scheduler input")).to_have_value("unipc")
    # Its model is not in our catalog: Generate keeps its own, and the PNG Info tab said so.
    expect(page.locator("#generate-model input")).to_have_value("genimg diffusion (embedded, 64 px)")
    page.get_by_role("tab", name="PNG Info").click()
    expect(page.locator("#info-summary")).to_contain_text("is not in this catalog")


def test_png_info_round_trips_ours_and_refuses_plain(page, artifacts_dir, tmp_path):
    from playwright.sync_api import expect

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "genimg", "generate", "--model", "genimg-fewstep", "--prompt",
                           "a blue square", "--steps", "3", "--seed", "9", "--out", str(tmp_path), "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    ours = next(tmp_path.glob("*.png"))
    page.get_by_role("tab", name="PNG Info").click()
    upload(page, ours)
    expect(page.locator("#info-summary")).to_contain_text("Written by genimg")
    page.locator("#info-send").click()
    # The model changes to the one that made the image, and its settings survive that change.
    expect(page.locator("#generate-model input")).to_have_value("genimg few-step (embedded, 64 px, LCM-distilled)")
    expect(page.locator("#generate-prompt textarea")).to_have_value("a blue square")
    page.wait_for_timeout(1000)  # the model's change event has run
    expect(page.locator("#generate-steps input")).to_have_value("3")
    expect(page.locator("#generate-seed input")).to_have_value("9")
    page.locator("#generate-button").click()
    expect(page.locator("#generate-timing")).to_contain_text("steps/s", timeout=RUN_TIMEOUT_MS)
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts_dir / "info-sent.png"), full_page=True)
    assert_no_toast(page, "Generate after Send to Generate")
    plain = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), "white").save(plain)
    page.get_by_role("tab", name="PNG Info").click()
    upload(page, plain)
    expect(page.locator("#info-summary")).to_contain_text("no generation parameters found")
    expect(page.locator("#info-send")).to_be_disabled()

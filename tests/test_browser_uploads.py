"""Hostile uploads in a real browser: every refused class and one accepted file into every file input
of every tab, then the tab's button -- against ``python app.py`` in its own process.

What a visitor must see: a refused file gets our sentence as a toast at upload and the input is
cleared; pressing the button afterwards gives a plain error, never Gradio's raw text; the accepted
file is processed. The server answers after every file, and its peak RSS stays bounded.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.hostile_files import REFUSED, write_matrix
from tests.test_browser import RUN_TIMEOUT_MS, UI_TIMEOUT_MS, browser, pytestmark  # noqa: F401 (fixtures)
from tests.test_hostile_uploads import LEAKS, REFUSAL_WORDS, RSS_CEILING

ACCEPTED_FILE = "rgba"
# (tab, elem_id of the input, elem_id of the button, what shows the result on success, the other input it needs)
IMAGE_INPUTS = [
    ("Restore", "restore-image", "restore-button", "#restore-gallery img", None),
    ("Style", "style-content", "style-button", "#style-gallery img", "style-style"),
    ("Style", "style-style", "style-button", "#style-gallery img", "style-content"),
    ("Metrics", "metrics-image", "metrics-button", "#metrics-table [role=gridcell]", None),
    ("Metrics", "metrics-reference", "metrics-button", "#metrics-table [role=gridcell]", "metrics-image"),
]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return write_matrix(tmp_path_factory.mktemp("hostile-browser"))


@pytest.fixture()
def page(browser, served_app):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.goto(served_app.url, wait_until="domcontentloaded")
    expect(page.locator("#generate-button")).to_be_visible()
    yield page
    context.close()


def toasts(page):
    return page.get_by_role("status").filter(has_text=re.compile(r"\w"))


def close_toasts(page):
    """Close every toast and wait until none is left (so the next step reads only its own)."""
    from playwright.sync_api import expect

    for button in page.get_by_role("status").get_by_role("button", name="Close", exact=True).all():
        try:
            button.click(timeout=2000)
        except Exception:  # it went away on its own
            pass
    expect(toasts(page)).to_have_count(0)


def no_leaks(page, where: str) -> list[str]:
    texts = [t for t in toasts(page).all_inner_texts() if t.strip()]
    for text in texts:
        assert not LEAKS.search(text), f"{where}: a toast shows internals: {text!r}"
    return texts


def test_refused_files_get_our_words_at_upload_and_accepted_ones_run(page, served_app, matrix, artifacts_dir):
    from playwright.sync_api import expect

    seen: dict[str, list[str]] = {}
    for tab, elem, button, result, partner in IMAGE_INPUTS:
        page.goto(served_app.url, wait_until="domcontentloaded")  # every other input empty: each Run must refuse
        page.get_by_role("tab", name=tab).click()
        file_input = page.locator(f"#{elem} input[type=file]")
        for case in REFUSED:
            path, _ = matrix[case]
            close_toasts(page)
            file_input.set_input_files(str(path))
            toast = toasts(page).filter(has_text=REFUSAL_WORDS[case])
            expect(toast.first).to_be_visible()
            expect(page.locator(f"#{elem} img")).to_have_count(0)  # cleared: it never looks accepted
            seen[f"{elem} <- {case} (upload)"] = no_leaks(page, f"{case} into {elem}")
            close_toasts(page)
            page.locator(f"#{button}").click()
            # The input is empty now: the run answers "no ... given" (or the other input's state), in plain words.
            expect(toasts(page).filter(has_text="Error").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
            seen[f"{elem} <- {case} (run)"] = no_leaks(page, f"{case} into {elem}, then {button}")
            assert served_app.alive(), f"server died after {case} into {elem}"
        close_toasts(page)
        for accepted in filter(None, (partner, elem)):
            page.locator(f"#{accepted} input[type=file]").set_input_files(str(matrix[ACCEPTED_FILE][0]))
            expect(page.locator(f"#{accepted} img").first).to_be_visible()
        page.locator(f"#{button}").click()
        expect(page.locator(result).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
        seen[f"{elem} <- {ACCEPTED_FILE} (run)"] = no_leaks(page, f"accepted file into {elem}")
        assert not any("Not accepted" in t or "Error" in t for t in seen[f"{elem} <- {ACCEPTED_FILE} (run)"]), \
            (elem, seen[f"{elem} <- {ACCEPTED_FILE} (run)"])
        page.screenshot(path=str(artifacts_dir / f"uploads-{elem}.png"), full_page=True)
    _record(artifacts_dir, served_app, seen)


def test_mask_editor_and_prompts_file(page, served_app, matrix, artifacts_dir):
    """The mask editor decodes in the browser: refused files never reach the server's decoders; a text
    upload that is not text is refused in our words."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Restore").click()
    page.locator("#restore-image input[type=file]").set_input_files(str(matrix[ACCEPTED_FILE][0]))
    page.get_by_role("button", name="Mask and prompt (inpainting)").click()
    editor = page.locator("#restore-mask")
    seen: dict[str, list[str]] = {}
    for case in (*REFUSED, ACCEPTED_FILE):
        close_toasts(page)
        editor.locator("input[type=file]").set_input_files(str(matrix[case][0]))
        page.wait_for_timeout(500)
        page.locator("#restore-button").click()
        expect(page.locator("#restore-gallery img").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
        seen[f"restore-mask <- {case} (run)"] = no_leaks(page, f"{case} into the mask editor")
        assert served_app.alive(), f"server died after {case} into the mask editor"

    page.get_by_role("tab", name="Evaluate").click()
    prompts = page.locator("#evaluate-prompts-file input[type=file]")
    binary = artifacts_dir / "binary-prompts.txt"
    binary.write_bytes(matrix["bomb"][0].read_bytes())
    close_toasts(page)
    prompts.set_input_files(str(binary))
    expect(toasts(page).filter(has_text="is a binary file, not text").first).to_be_visible()
    seen["evaluate-prompts-file <- binary"] = no_leaks(page, "binary prompts file")
    good = artifacts_dir / "prompts.txt"
    good.write_text("a red circle on a white background\n")
    close_toasts(page)
    prompts.set_input_files(str(good))
    page.wait_for_timeout(1500)
    assert not [t for t in no_leaks(page, "good prompts file") if "Not accepted" in t or "Warning" in t]
    page.screenshot(path=str(artifacts_dir / "uploads-evaluate.png"), full_page=True)
    _record(artifacts_dir, served_app, seen)


def _record(artifacts_dir, served_app, seen):
    path = artifacts_dir / "hostile-uploads-browser.json"
    previous = json.loads(path.read_text()) if path.exists() else {"toasts": {}}
    previous["toasts"].update(seen)
    previous["peak_server_rss_mb"] = round(served_app.peak_rss / 2**20)
    path.write_text(json.dumps(previous, indent=1))
    assert 0 < served_app.peak_rss < RSS_CEILING, f"server peak RSS {served_app.peak_rss / 2**30:.1f} GB"

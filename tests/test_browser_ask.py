"""Real-browser test of visual question answering: the Ask tab, and the Ask box under Generate's results."""

from __future__ import annotations

import re

import pytest

from tests.test_browser import (CHROMIUM_ARGS, RUN_TIMEOUT_MS, UI_TIMEOUT_MS, browser, error_toasts,  # noqa: F401
                                pytestmark)

ANSWERERS = ("genimg-scene-qa", "smolvlm-256m")


@pytest.fixture(scope="module")
def ask_app_url():
    """The dashboard over genimg's own diffusion model (it draws scenes) and two answerers, one without weights."""
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.ui.app import CSS, build_app
    from tests.conftest import free_port

    catalog = {k: v for k, v in load_catalog().items() if k in ("genimg-diffusion", *ANSWERERS)}
    demo = build_app(ModelPool(catalog))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture()
def ask_page(browser, ask_app_url):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(ask_app_url, wait_until="domcontentloaded")
    expect(page.locator("#generate-button")).to_be_visible()
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_ask_tab_answers_an_example_and_refuses_an_empty_question(ask_page, artifacts_dir):
    from playwright.sync_api import expect

    page = ask_page
    page.get_by_role("tab", name="Ask").click()
    page.locator("#ask-examples tbody tr").nth(1).click()  # four black stars, "how many stars are there?"
    expect(page.locator("#ask-question textarea")).to_have_value("how many stars are there?")
    page.locator("#ask-button").click()
    answer = page.locator("#ask-answer")
    expect(answer).to_contain_text("genimg-scene-qa", timeout=RUN_TIMEOUT_MS)
    expect(answer.locator("strong")).to_have_text("4")
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "ask-tab.png"), full_page=True)

    page.locator("#ask-question textarea").fill("")
    page.locator("#ask-button").click()
    expect(error_toasts(page).filter(has_text="no question given")).to_have_count(1)


def test_ask_box_under_generate_answers_about_the_generated_image(ask_page, artifacts_dir):
    from playwright.sync_api import expect

    page = ask_page
    page.locator("#generate-prompt textarea").fill("a large red circle on a blue background")
    page.locator("#generate-button").click()
    expect(page.locator("#generate-gallery img").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.locator("#generate-ask").get_by_text("Ask about an image").click()
    page.locator("#generate-ask-question textarea").fill("what colour is the background?")
    page.locator("#generate-ask-button").click()
    answer = page.locator("#generate-ask-answer")
    expect(answer).to_contain_text("genimg-scene-qa", timeout=RUN_TIMEOUT_MS)
    colour = answer.locator("strong").inner_text()
    assert re.fullmatch(r"red|green|blue|yellow|purple|orange|white|black", colour) or "plain background" in colour
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "ask-generate-box.png"), full_page=True)
    # The compare tab has the same box.
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#compare-ask")).to_be_visible()


def test_evaluate_shows_vqa_accuracy_per_question_type(ask_page, artifacts_dir, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path / "cache"))
    page = ask_page
    page.get_by_role("tab", name="Evaluate").click()
    models = page.locator("#evaluate-models")
    box = models.get_by_role("checkbox").first
    box.check()
    page.get_by_role("button", name="Settings and metrics").click()
    metrics = page.locator("#evaluate-metrics")
    for box in metrics.get_by_role("checkbox").all():
        box.uncheck()
    for label in ("Faithfulness (grammar)", "VQA accuracy (scene QA)"):
        metrics.get_by_role("checkbox", name=label, exact=True).check()
    page.locator("#evaluate-prompts textarea").fill("")
    page.locator("#evaluate-grammar input").fill("4")
    page.locator("#evaluate-seeds textarea").fill("0")
    page.locator("#evaluate-button").click()
    table = page.locator("#evaluate-table")
    expect(table.get_by_role("columnheader", name="VQA accuracy (scene QA)")).to_have_count(1,
                                                                                     timeout=RUN_TIMEOUT_MS)
    # Accuracy per question type: its own table under the summary, one row per model.
    by_type = page.locator("#evaluate-vqa-types")
    expect(by_type).to_contain_text("VQA accuracy by question type", timeout=RUN_TIMEOUT_MS)
    expect(by_type.get_by_role("columnheader", name="background")).to_have_count(1)
    expect(by_type).to_contain_text(re.compile(r"\d\.\d\d \(\d+\)"))
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "ask-evaluate-vqa.png"), full_page=True)

"""Real-browser test of genimg-emoji in the Generate tab: featured in the default model's examples (one
click sets prompt and model), its searchable vocabulary, and an image drawn by it. The emoji model here
is a tiny one trained for two steps by the real trainer and exported by the real export (plumbing: the
shipped weights are the same format)."""

from __future__ import annotations

import pytest

from tests.test_browser import (RUN_TIMEOUT_MS, UI_TIMEOUT_MS, browser, error_toasts,  # noqa: F401
                                pytestmark)

MODELS = ("genimg-diffusion", "genimg-emoji")


@pytest.fixture(scope="module")
def emoji_app_url(tmp_path_factory):
    """The dashboard over the default shapes model and a tiny genimg-emoji (its catalog entry, tiny weights)."""
    from dataclasses import replace

    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.training.emoji_glyphs import GlyphTrainer, export
    from genimg.training.loop import fit
    from genimg.ui.app import CSS, build_app
    from tests.conftest import free_port

    root = tmp_path_factory.mktemp("tiny-emoji")
    trainer = GlyphTrainer(steps=2, batch_size=4, config="tiny", eval_every=0, threads=1, log=lambda *_: None)
    folder = export(fit(trainer, root / "run").checkpoint, root / "emoji", log=lambda *_: None)
    catalog = {k: v for k, v in load_catalog().items() if k in MODELS}
    catalog["genimg-emoji"] = replace(catalog["genimg-emoji"], source=str(folder),
                                      defaults={**catalog["genimg-emoji"].defaults, "width": 64, "height": 64})
    pool = ModelPool(catalog)
    assert pool.availability("genimg-emoji")[0], pool.availability("genimg-emoji")[1]
    demo = build_app(pool)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture()
def page(browser, emoji_app_url):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(emoji_app_url, wait_until="domcontentloaded")
    expect(page.locator("#generate-button")).to_be_visible()
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_an_emoji_example_sets_prompt_and_model_and_the_vocabulary_is_searchable(page, artifacts_dir):
    from playwright.sync_api import expect

    model_input = page.locator("#generate-model input")
    expect(model_input).to_have_value("genimg diffusion (embedded, 64 px)")
    examples = page.locator("#generate-examples")
    expect(examples).to_contain_text("genimg emoji (embedded")  # featured, by name, beside the default's own examples
    examples.get_by_text("a cat to the left of a rocket on a blue background").click()
    expect(page.locator("#generate-prompt textarea")).to_have_value("a cat to the left of a rocket on a blue background")
    expect(model_input).to_have_value("genimg emoji (embedded, OpenMoji scenes, 128 px)")
    expect(page.locator("#generate-model-note")).to_contain_text("OpenMoji")

    page.locator("#generate-vocabulary").get_by_text("Vocabulary").click()
    expect(page.locator("#generate-vocabulary-count")).to_contain_text("all 387 words")
    page.locator("#generate-vocabulary-search textarea").fill("cat")
    expect(page.locator("#generate-vocabulary-count")).to_contain_text("3 of 387 words")
    table = page.locator("#generate-vocabulary-table")
    expect(table).to_contain_text("black cat")
    expect(table).not_to_contain_text("grinning face")

    page.locator("#generate-button").click()
    gallery = page.locator("#generate-gallery")
    expect(gallery.locator("img").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#generate-timing")).to_contain_text("genimg emoji", timeout=RUN_TIMEOUT_MS)
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "generate-emoji.png"), full_page=True)


def test_the_shapes_model_lists_its_own_words_and_an_outside_prompt_gets_a_note(page):
    from playwright.sync_api import expect

    page.locator("#generate-vocabulary").get_by_text("Vocabulary").click()
    expect(page.locator("#generate-vocabulary-table")).to_contain_text("triangle")
    page.locator("#generate-prompt textarea").fill("a cat on a white background")
    expect(page.locator("#generate-note")).to_contain_text("outside what the embedded models learnt")

"""The arena in a real browser: a blind battle, the vote and the reveal, the leaderboard, a shared permalink.

Against ``python app.py`` (the real catalog: the embedded models) with its own GENIMG_DATA_DIR, as a
visitor would click. Screenshots: test-artifacts/arena-*.png.
"""

from __future__ import annotations

import io
import re
import urllib.request

from PIL import Image

from genimg.models.catalog import load_catalog
from tests.test_browser import pytestmark  # noqa: F401
from tests.test_browser_walkthrough import (RUN_TIMEOUT_MS, assert_images_readable, assert_no_toast,  # noqa: F401
                                            page, table_rows)

# Every text-to-image model of the shipped catalog (a battle on a grammar prompt draws two of the shapes models).
MODEL_IDS = tuple(m for m, spec in load_catalog().items() if "text-to-image" in spec.tasks)


def served_png(page, selector: str) -> tuple[str, Image.Image]:
    """The URL of an image on the page and the PNG the server sends for it."""
    src = page.locator(selector).first.get_attribute("src")
    url = src if src.startswith("http") else page.url.split("?")[0].rstrip("/") + src
    with urllib.request.urlopen(url, timeout=30) as response:
        data = response.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return url, image


def test_battle_vote_reveal_and_share(page, served_app, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-draw").click()
    expect(page.locator("#arena-prompt textarea")).not_to_have_value("")
    vote_a = page.locator("#arena-vote-a")
    expect(vote_a).to_be_disabled()
    page.locator("#arena-button").click()
    assert_images_readable(page, "#arena-a img, #arena-b img", count=2)
    expect(vote_a).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    battle_id = page.locator("#arena-battle-id textarea, #arena-battle-id input").first.input_value()
    assert re.fullmatch(r"[0-9a-f]{32}", battle_id)
    # Blind: nothing on the page or in the served files names a model before the vote.
    before = page.locator("#arena-a, #arena-b, #arena-reveal").all_inner_texts()
    assert not any(m in " ".join(before) for m in MODEL_IDS), before
    for selector in ("#arena-a img", "#arena-b img"):
        url, image = served_png(page, selector)
        assert not any(m in url for m in MODEL_IDS) and url.rsplit("/", 1)[-1] == "image.png", url
        assert not getattr(image, "text", {}), f"metadata in the served PNG: {image.text}"
    assert_no_toast(page, "arena battle")

    vote_a.click()
    reveal = page.locator("#arena-reveal")
    expect(reveal).to_contain_text("Your vote: A is better", timeout=RUN_TIMEOUT_MS)
    text = reveal.inner_text()
    assert re.search(r"A was .+ s,", text) and re.search(r"B was .+ s,", text), text
    assert sum(m in text for m in MODEL_IDS) == 2
    expect(vote_a).to_be_disabled()  # one vote per battle
    page.locator("#arena-share").click()
    link = page.locator("#arena-link a")
    expect(link).to_be_visible(timeout=RUN_TIMEOUT_MS)
    permalink = link.get_attribute("href")
    assert re.search(r"\?preview=[0-9a-f]{32}$", permalink), permalink
    page.locator("#arena-reveal").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "arena-battle.png"), full_page=True)

    # The permalink opens the stored result read-only in a fresh page (its own session).
    other = page.context.new_page()
    other.goto(permalink if permalink.startswith("http") else served_app.url + permalink.lstrip("/"))
    expect(other.locator("#preview-panel")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(other.locator("#preview-title")).to_contain_text("Arena battle")
    assert_images_readable(other, "#preview-gallery img", count=2)
    assert len(table_rows(other, "#preview-table")) == 2
    other.screenshot(path=str(artifacts_dir / "arena-preview.png"), full_page=False)
    other.goto(served_app.url + "?preview=" + "0" * 32)
    expect(other.locator("#preview-title")).to_contain_text("unknown preview", timeout=RUN_TIMEOUT_MS)
    other.close()

    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#leaderboard-summary")).to_contain_text("1 voted battle", timeout=RUN_TIMEOUT_MS)
    rows = table_rows(page, "#leaderboard-table")
    assert len(rows) == 2 and rows[0][0] in text and rows[0][5] == "1"  # the winner first, with its win
    expect(page.locator("#leaderboard-plot svg circle")).to_have_count(2)
    expect(page.locator("#leaderboard-files")).to_contain_text(re.compile(r"leaderboard\s*\.csv"))
    assert_no_toast(page, "leaderboard")
    page.screenshot(path=str(artifacts_dir / "arena-leaderboard.png"), full_page=True)


def test_a_second_vote_and_a_bad_battle_say_what_is_wrong(page):
    from playwright.sync_api import expect

    from tests.test_browser_walkthrough import toasts

    page.get_by_role("tab", name="Arena").click()
    battle = page.locator("#arena-battle-id textarea, #arena-battle-id input").first
    # The buttons are disabled after a vote; the API answers the same words (tests/test_arena.py).
    expect(page.locator("#arena-vote-b")).to_be_disabled()
    page.locator("#arena-prompt textarea").fill("")
    page.locator("#arena-button").click()
    expect(toasts(page).filter(has_text="prompt is empty")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    assert battle.input_value() == ""


def test_share_a_comparison_opens_read_only(page, served_app, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-prompt textarea").fill("a large red star on a white background")
    page.locator("#compare-button").click()
    assert_images_readable(page, "#compare-gallery img", count=4)
    page.locator("#compare-share").click()
    link = page.locator("#compare-link a")
    expect(link).to_be_visible(timeout=RUN_TIMEOUT_MS)
    other = page.context.new_page()
    other.goto(link.get_attribute("href"))
    expect(other.locator("#preview-title")).to_contain_text("Comparison", timeout=RUN_TIMEOUT_MS)
    expect(other.locator("#preview-title")).to_contain_text("a large red star on a white background")
    assert_images_readable(other, "#preview-gallery img", count=4)
    assert len(table_rows(other, "#preview-table")) == 4
    other.screenshot(path=str(artifacts_dir / "compare-preview.png"), full_page=False)
    other.close()


def test_rank_three_images(page, artifacts_dir):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-prompt textarea").fill("a small blue circle on the left on a yellow background")
    page.locator("#arena-k").get_by_label("3").check()
    page.locator("#arena-button").click()
    assert_images_readable(page, "#arena-a img, #arena-b img, #arena-c img", count=3)
    expect(page.locator("#arena-rank-button")).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#arena-vote-a")).to_be_hidden()
    page.locator("#arena-ranking textarea, #arena-ranking input").first.fill("C>A>B")
    page.locator("#arena-rank-button").click()
    reveal = page.locator("#arena-reveal")
    expect(reveal).to_contain_text("Your vote: C>A>B", timeout=RUN_TIMEOUT_MS)
    assert re.search(r"C was .+ s,", reveal.inner_text())
    page.screenshot(path=str(artifacts_dir / "arena-rank.png"), full_page=True)
    page.locator("#arena-k").get_by_label("2").check()  # leave the tab as the other tests expect it

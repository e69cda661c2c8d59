"""Real-browser test of the Evaluate tab: a small evaluation shows the grid, the table and a plot."""

from __future__ import annotations

import pytest

from tests.test_browser import RUN_TIMEOUT_MS, browser, error_toasts, page, pytestmark  # noqa: F401 (fixtures)


def test_evaluate_two_models_shows_table_and_plots(page, artifacts_dir, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path / "cache"))
    page.get_by_role("tab", name="Evaluate").click()
    models = page.locator("#evaluate-models")
    expect(models).to_be_visible()
    for label in ("TINY-A", "TINY-B"):
        box = models.get_by_role("checkbox", name=label, exact=True)
        box.check()
        expect(box).to_be_checked()
    # Cheap metrics only: the tiny pipelines draw noise.
    metrics = page.locator("#evaluate-metrics")
    page.get_by_role("button", name="Settings and metrics").click()
    for box in metrics.get_by_role("checkbox").all():
        box.uncheck()
    for label in ("Sharpness", "Entropy"):
        metrics.get_by_role("checkbox", name=label, exact=True).check()
    page.locator("#evaluate-prompts textarea").fill("a red circle on a blue background\na lighthouse")
    page.locator("#evaluate-grammar input").fill("0")  # only the two typed prompts (the default adds 4 grammar ones)
    page.locator("#evaluate-seeds textarea").fill("0,1")
    page.locator("#evaluate-button").click()

    images = page.locator("#evaluate-gallery img")
    expect(images).to_have_count(8, timeout=RUN_TIMEOUT_MS)  # 2 models x 2 prompts x 2 seeds
    table = page.locator("#evaluate-table")
    rows = table.get_by_role("row").filter(has=page.get_by_role("gridcell"))
    expect(rows).to_have_count(2)
    cells = [[c.strip() for c in row.get_by_role("gridcell").all_inner_texts()] for row in rows.all()]
    assert sorted(r[0] for r in cells) == ["tiny-a", "tiny-b"], cells
    assert all(r[1] == "4" for r in cells), cells          # images per model
    assert all("[" in r[4] and "]" in r[4] for r in cells), cells  # sharpness: mean [95% CI]
    # The native plots draw with Vega: a canvas or an SVG inside each plot's element.
    for plot in ("#evaluate-scatter", "#evaluate-bars"):
        expect(page.locator(f"{plot} canvas, {plot} svg.marks").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#evaluate-report a").first).to_be_visible()
    expect(error_toasts(page)).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "evaluate.png"), full_page=True)


__all__ = ["browser", "page", "pytestmark", "pytest"]

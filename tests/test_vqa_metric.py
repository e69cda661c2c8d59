"""Question-based faithfulness (metric "vqa") on scenes whose contents the test knows, through Evaluate's
scoring, its per-model summary, the table and the report."""

from __future__ import annotations

import pytest

from genimg.evaluation.report import report_fragment, summary_table, vqa_types_table
from genimg.evaluation.results import EvalRow, EvaluateResult
from genimg.evaluation.scoring import score_rows, summarize_model
from genimg.metrics.registry import METRICS, canonical
from tests.vqa_scenes import Drawn, draw

RELATION = "a red circle to the left of a blue square, on a white background"
COUNT = "three small yellow stars on a black background"
FREE = "a photo of two red apples on a white background"


def _scenes(faithful: bool):
    """(prompt, image) pairs: drawn as the prompt says, or with the circle green and one star missing."""
    circle = "red" if faithful else "green"
    stars = [Drawn("star", "yellow", x, 0.5, 0.2) for x in ((0.2, 0.5, 0.8) if faithful else (0.3, 0.7))]
    return [(RELATION, draw([Drawn("circle", circle, 0.27, 0.5, 0.28), Drawn("square", "blue", 0.73, 0.5, 0.28)],
                            "white", 64)),
            (COUNT, draw(stars, "black", 96))]


def _rows(model: str, faithful: bool):
    return [EvalRow(model=model, prompt_index=i, prompt=p, seed=0, image=image, latency_s=0.1, key=f"{model}-{i}")
            for i, (p, image) in enumerate(_scenes(faithful))]


def test_metric_is_registered_with_aliases():
    assert METRICS["vqa"].task == "text-image" and canonical("tifa") == "vqa"


def test_metric_on_known_scenes():
    metric = METRICS["vqa"]
    good = [metric.run(image, prompt) for prompt, image in _scenes(True)]
    assert [s.value for s in good] == [1.0, 1.0]
    bad = [metric.run(image, prompt) for prompt, image in _scenes(False)]
    # The relation scene: the questions about the red circle go wrong (it is green); "is the red circle to the
    # right of the blue square?" is still rightly "no".
    assert bad[0].details["types"]["colour"] == [1, 2] and bad[0].details["types"]["relation"] == [1, 2]
    assert bad[1].details["types"]["count"] == [0, 1] and bad[1].details["types"]["background"] == [1, 1]
    assert all(s.value < 1.0 for s in bad)


def test_metric_says_why_it_does_not_apply():
    metric = METRICS["vqa"]
    image = draw([Drawn("circle", "red", 0.5, 0.5, 0.3)], "white", 64)
    assert "no question could be generated" in metric.run(image, "a lighthouse at dusk").note
    # Questions about apples: the scene answerer knows only shapes, so it answers none of them.
    score = metric.run(image, FREE)
    assert score.value == pytest.approx(1.0)  # only the background question is answerable, and right
    assert score.details["types"] == {"background": [1, 1]}


def test_evaluate_summary_table_and_report_show_accuracy_per_type():
    keys = ["faithfulness", "vqa"]
    rows = {"faithful": _rows("faithful", True), "sloppy": _rows("sloppy", False)}
    summary = {}
    for model, model_rows in rows.items():
        score_rows(model_rows, keys, None)
        summary[model], _ = summarize_model(model_rows, keys, {RELATION: True, COUNT: True}, {}, None)
    types = summary["faithful"]["metrics"]["vqa"]["types"]
    assert set(types) == {"colour", "shape", "count", "background", "relation"}
    assert all(t["accuracy"] == 1.0 for t in types.values())
    sloppy = summary["sloppy"]["metrics"]["vqa"]["types"]
    assert sloppy["relation"]["accuracy"] == 0.5 and sloppy["background"]["accuracy"] == 1.0
    assert summary["sloppy"]["metrics"]["vqa"]["mean"] < summary["faithful"]["metrics"]["vqa"]["mean"] == 1.0

    result = EvaluateResult(rows=rows["faithful"] + rows["sloppy"], summary=summary, diversity=[], models={}, errors={},
                            metrics=keys, request={"models": list(rows), "prompts": [RELATION, COUNT], "seeds": [0]},
                            timings={})
    header, table = summary_table(result)
    column = header.index(METRICS["vqa"].label)
    assert table[0][column].startswith("1 ") and "relation" not in table[0][column]  # short rows: types apart
    types_header, types_rows = vqa_types_table(result.summary)
    relation = types_header.index("relation")
    assert [row[0] for row in types_rows] == ["faithful", "sloppy"]
    assert types_rows[0][relation] == "1.00 (2)" and types_rows[1][relation] == "0.50 (2)"
    assert "VQA accuracy by question type" in report_fragment(result) and "0.50 (2)" in report_fragment(result)
    assert all(r.as_dict()["answers"] for r in result.rows)


def test_the_interval_of_an_accuracy_stays_within_0_and_1():
    rows = _rows("few", True) * 2 + _rows("few", False)[1:]  # 1, 1, 1, 1, 0.75: the t-interval passes 1
    score_rows(rows, ["vqa"], None)
    stats = summarize_model(rows, ["vqa"], {RELATION: True, COUNT: True}, {}, None)[0]["metrics"]["vqa"]
    assert 0.0 <= stats["ci_low"] <= stats["mean"] <= stats["ci_high"] <= 1.0

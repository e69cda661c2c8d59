"""Visual question answering: the offline scene answerer on scenes the tests draw with plain PIL shapes
(not the grammar's renderer), its refusals outside its domain, question parsing and generation."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from genimg.errors import GenimgError
from genimg.examples import EXAMPLES_DIR
from genimg.vqa.generation import answers_match, questions_for_prompt, score_answers
from genimg.vqa.questions import parse_question
from genimg.vqa.scene_qa import CAN_ANSWER, SceneAnswerer
from tests.vqa_scenes import Drawn, draw, random_scene

SIZES = (48, 64, 96, 128)
REGIONS = {"left": (0.22, 0.5), "right": (0.78, 0.5), "top": (0.5, 0.22), "bottom": (0.5, 0.78), "centre": (0.5, 0.5)}
OFFSETS = {"left of": (-1, 0), "right of": (1, 0), "above": (0, -1), "below": (0, 1)}
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@pytest.fixture(scope="module")
def answerer():
    return SceneAnswerer()


def _questions(objects: list[Drawn], background: str) -> list[tuple[str, str, str]]:
    """(type, question, known answer) about a drawn scene of distinct objects."""
    qs = [("background", "what colour is the background?", background),
          ("background", "What color is the background?", background),
          ("count", "how many objects are there?", str(len(objects)))]
    shapes, colours = [o.shape for o in objects], [o.colour for o in objects]
    for o in objects:
        if shapes.count(o.shape) == 1:
            qs.append(("colour", f"what colour is the {o.shape}?", o.colour))
        if colours.count(o.colour) == 1:
            qs.append(("shape", f"what shape is the {o.colour} object?", o.shape))
        qs.append(("count", f"how many {o.shape}s are there?", str(shapes.count(o.shape))))
    return qs


def _place(rng, n=None):
    """A scene with one object in a named region (position) or two in a relation: (objects, bg, questions)."""
    objects, background = random_scene(rng, 2)
    a, b = objects
    if n == "position":
        region = list(REGIONS)[int(rng.integers(5))]
        x, y = REGIONS[region]
        one = Drawn(a.shape, a.colour, x + float(rng.uniform(-0.03, 0.03)), y + float(rng.uniform(-0.03, 0.03)),
                    float(rng.uniform(0.2, 0.3)))
        return [one], background, [("position", f"where is the {a.colour} {a.shape}?", region),
                                   ("position", f"is the {a.colour} {a.shape} {_phrase(region)}?", "yes")]
    relation = list(OFFSETS)[int(rng.integers(4))]
    dx, dy = OFFSETS[relation]
    d = 0.24
    a2 = Drawn(a.shape, a.colour, 0.5 + 0.2 * dx, 0.5 + 0.2 * dy, d)  # a <relation> b
    b2 = Drawn(b.shape, b.colour, 0.5 - 0.2 * dx, 0.5 - 0.2 * dy, d)
    ref_a, ref_b = f"the {a.colour} {a.shape}", f"the {b.colour} {b.shape}"
    words = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
    return [a2, b2], background, [("relation", f"is {ref_a} {words[relation]} {ref_b}?", "yes"),
                                  ("relation", f"is {ref_a} {words[OPPOSITE[relation]]} {ref_b}?", "no")]


def _phrase(region: str) -> str:
    return {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
            "centre": "in the centre"}[region]


def test_answers_per_question_type_on_drawn_scenes(answerer, artifacts_dir):
    rng = np.random.default_rng(2026)
    asked, right = Counter(), Counter()
    wrong = []
    for i in range(96):
        size = SIZES[i % len(SIZES)]
        if i % 4 == 2:
            objects, background, qs = _place(rng, "position")
        elif i % 4 == 3:
            objects, background, qs = _place(rng)
        else:
            objects, background = random_scene(rng, 1 + i % 3)
            qs = _questions(objects, background)
        image = draw(objects, background, size)
        for kind, question, truth in qs:
            reply = answerer.answer(image, question)
            ok = reply.answerable and reply.type == kind and answers_match(truth, reply.text)
            asked[kind] += 1
            right[kind] += ok
            if not ok:
                wrong.append((size, question, truth, reply.text))
    accuracy = {k: right[k] / asked[k] for k in asked}
    (artifacts_dir / "vqa-accuracy.json").write_text(json.dumps(
        {"accuracy": accuracy, "questions": dict(asked), "wrong": wrong}, indent=1))
    assert set(asked) == {"background", "colour", "shape", "count", "position", "relation"}
    assert all(acc >= 0.95 for acc in accuracy.values()), (accuracy, wrong)


@pytest.mark.parametrize("question", ["what colour is the circle?", "What color is the circle", "what is the colour "
                                      "of the circle?", "which colour is the small circle on the left?"])
def test_colour_spellings_and_forms(answerer, question):
    image = draw([Drawn("circle", "red", 0.25, 0.5, 0.2), Drawn("square", "blue", 0.75, 0.5, 0.3)], "white", 96)
    reply = answerer.answer(image, question)
    assert (reply.answerable, reply.type, reply.text) == (True, "colour", "red")


def test_absent_object_is_said_not_guessed(answerer):
    image = draw([Drawn("circle", "red", 0.5, 0.5, 0.3)], "white", 64)
    assert answerer.answer(image, "what colour is the star?").text == "there is no star"
    assert answerer.answer(image, "how many stars are there?").text == "0"
    assert answerer.answer(image, "are there two circles?").text == "no"


@pytest.mark.parametrize("question", ["what is the meaning of life?", "tell me a joke", "what colour is the cat?",
                                      "how many dogs are there?"])
def test_question_outside_the_domain_says_what_it_can_answer(answerer, question):
    image = draw([Drawn("circle", "red", 0.5, 0.5, 0.3)], "white", 64)
    reply = answerer.answer(image, question)
    assert not reply.answerable and CAN_ANSWER in reply.text


def test_image_outside_the_domain_says_what_it_can_answer(answerer):
    photo = Image.open(EXAMPLES_DIR / "chelsea.png")
    reply = answerer.answer(photo, "how many circles are there?")
    assert not reply.answerable and "plain background" in reply.text and CAN_ANSWER in reply.text
    tiny = draw([Drawn("circle", "red", 0.5, 0.5, 0.4)], "white", 16)
    reply = answerer.answer(tiny, "what colour is the circle?")
    assert not reply.answerable and "at least 32x32" in reply.text


@pytest.mark.parametrize("question, words", [("", "no question given"), ("   ", "no question given"),
                                             ("why? " * 200, "at most 300 characters"), (None, "must be text")])
def test_bad_questions_are_clear_errors(answerer, question, words):
    with pytest.raises(GenimgError, match=words):
        answerer.answer(np.zeros((64, 64, 3), np.uint8), question)


def test_a_non_image_is_a_clear_error(answerer):
    with pytest.raises(GenimgError, match="must be an RGB picture"):
        answerer.answer("scene.png", "what colour is the circle?")


def test_answers_come_from_pixels_not_png_metadata(tmp_path):
    """Our PNGs carry their prompt: a lying 'parameters' chunk must not change the answer."""
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.tasks.ask import ask

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a large blue square on a yellow background\nSteps: 20, Seed: 1")
    path = tmp_path / "scene.png"
    draw([Drawn("circle", "red", 0.5, 0.5, 0.35)], "white", 64).save(path, pnginfo=info)
    pool = ModelPool({k: v for k, v in load_catalog().items() if k == "genimg-scene-qa"})
    assert ask(pool, str(path), "what colour is the background?")["answer"] == "white"
    assert ask(pool, path.read_bytes(), "what shape is the object?")["answer"] == "circle"


def test_question_parsing():
    q = parse_question("Is the red circle to the left of the green square?")
    assert (q.type, q.relation, q.yes_no, q.objects[0].colour, q.objects[1].shape) == (
        "relation", "left of", True, "red", "square")
    assert parse_question("how many small blue stars are there?").objects[0].size == "small"
    assert parse_question("are there three triangles?").number == 3
    assert parse_question("where is the purple triangle?").type == "position"
    assert parse_question("what is the background color?").type == "background"
    assert parse_question("draw me a sheep") is None


def test_questions_generated_from_prompts():
    qs = questions_for_prompt("two small red circles on a blue background")
    assert {(q.type, q.expected) for q in qs} >= {("background", "blue"), ("count", "2"), ("colour", "red"),
                                                   ("shape", "circle")}
    rel = questions_for_prompt("a green square to the left of a purple star")
    assert [(q.expected) for q in rel if q.type == "relation"] == ["yes", "no"]
    assert [q.expected for q in questions_for_prompt("an orange triangle at the top") if q.type == "position"] == ["top"]
    free = questions_for_prompt("a photo of two red apples on a white background")
    assert {(q.type, q.text, q.expected) for q in free} == {
        ("background", "what colour is the background?", "white"),
        ("count", "how many red apples are there?", "2"), ("colour", "what colour are the apples?", "red")}
    assert questions_for_prompt("a cat") == []


@pytest.mark.parametrize("expected, given, ok", [("red", "The circle is red.", True), ("red", "red and blue", False),
                                                 ("2", "two", True), ("2", "There are 2 stars", True),
                                                 ("yes", "Yes, it is.", True), ("no", "yes", False),
                                                 ("centre", "in the center", True), ("left", "right", False)])
def test_answers_match(expected, given, ok):
    assert answers_match(expected, given) is ok


def test_score_answers_on_a_drawn_scene(answerer):
    """Faithful and unfaithful drawings of one prompt: every question right, then the colour ones wrong."""
    prompt = "a red circle to the left of a blue square, on a white background"
    faithful = draw([Drawn("circle", "red", 0.27, 0.5, 0.28), Drawn("square", "blue", 0.73, 0.5, 0.28)], "white", 64)
    wrong = draw([Drawn("circle", "green", 0.27, 0.5, 0.28), Drawn("square", "blue", 0.73, 0.5, 0.28)], "white", 64)
    questions = questions_for_prompt(prompt)
    good = score_answers(lambda q: answerer.answer(faithful, q), questions)
    assert good.accuracy == 1.0 and good.unanswered == 0
    bad = score_answers(lambda q: answerer.answer(wrong, q), questions)
    assert bad.types["colour"] == [1, 2] and bad.types["background"] == [1, 1] and bad.accuracy < 1.0

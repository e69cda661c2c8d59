"""Question-based faithfulness (TIFA / DSG style): questions generated from a prompt, answered, scored.

:func:`questions_for_prompt` turns a prompt into questions with known answers, each of one type
(colour, shape, count, position, background, relation): from the scene grammar's parse when the
prompt is a grammar caption, else from a small template parser (colour + noun phrases, counts,
"... background"). :func:`answers_match` compares a free-form answer with the expected one, and
:func:`score_answers` runs an answerer over the questions and gives the accuracy per type.
Questions an answerer says it cannot answer are left out (counted as unanswered), never scored wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.grammar import COLOUR_NAMES, POSITIONS, SHAPES
from genimg.scenes.prompts import parse_prompt
from genimg.vqa.questions import NUMBER_WORDS, QUESTION_TYPES, normalise, singular

_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
_RELATION_WORDS = {rel: phrases[0] for rel, phrases in grammar.RELATION_PHRASES.items()}


@dataclass(frozen=True)
class GeneratedQuestion:
    """A question generated from a prompt, its type and the answer an image faithful to the prompt gives."""

    text: str
    type: str
    expected: str


@dataclass
class QAScore:
    """An image's answers: accuracy over the answered questions (None when none could be answered),
    per type ``{type: [correct, answered]}``, and each question with its answer (``correct`` None
    when the answerer said it could not answer)."""

    accuracy: float | None
    types: dict[str, list[int]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    unanswered: int = 0


def _plural(shape: str) -> str:
    return shape + "s"


def _grammar_questions(prompt: str) -> list[GeneratedQuestion]:
    spec = parse_prompt(prompt)
    out: list[GeneratedQuestion] = []
    if spec.background is not None:
        out.append(GeneratedQuestion("what colour is the background?", "background", spec.background))
    shapes = [o.shape for o in spec.objects]
    colours = [o.colour for o in spec.objects]
    for o in spec.objects:
        out.append(GeneratedQuestion(f"how many {o.colour} {_plural(o.shape)} are there?", "count", str(o.count)))
        if shapes.count(o.shape) == 1:  # "the circle" names one kind of object only
            verb, noun = ("are", _plural(o.shape)) if o.count > 1 else ("is", o.shape)
            out.append(GeneratedQuestion(f"what colour {verb} the {noun}?", "colour", o.colour))
        if colours.count(o.colour) == 1:
            verb, noun = ("are", "objects") if o.count > 1 else ("is", "object")
            out.append(GeneratedQuestion(f"what shape {verb} the {o.colour} {noun}?", "shape", o.shape))
    if spec.position is not None:
        o = spec.objects[0]
        out.append(GeneratedQuestion(f"where is the {o.colour} {o.shape}?", "position", spec.position))
    if spec.relation is not None:
        a, b = spec.objects
        for rel, expected in ((spec.relation, "yes"), (_OPPOSITE[spec.relation], "no")):
            out.append(GeneratedQuestion(f"is the {a.colour} {a.shape} {_RELATION_WORDS[rel]} the {b.colour} {b.shape}?",
                                         "relation", expected))
    return out


_COUNT_WORDS = {k: v for k, v in NUMBER_WORDS.items() if k not in ("no", "zero")}
_FREE_OBJECT = re.compile(
    rf"\b(?:(?P<num>{'|'.join(sorted(_COUNT_WORDS, key=len, reverse=True))}|\d+)\s+)?"
    rf"(?:(?:small|little|large|big|tiny|huge)\s+)?(?P<colour>{'|'.join(COLOUR_NAMES)})\s+(?P<noun>[a-z]+)\b")
_FREE_BACKGROUND = re.compile(rf"\b(?P<colour>{'|'.join(COLOUR_NAMES)})\s+background\b")


def _free_questions(prompt: str) -> list[GeneratedQuestion]:
    """Questions from a free prompt: a template parser for '<number> <colour> <noun>' phrases and
    '<colour> background' (the kinds of facts every answerer can be asked about)."""
    text = normalise(prompt)
    out: list[GeneratedQuestion] = []
    if m := _FREE_BACKGROUND.search(text):
        out.append(GeneratedQuestion("what colour is the background?", "background", m["colour"]))
    objects = [m for m in _FREE_OBJECT.finditer(text) if m["noun"] != "background"]
    nouns = [singular(m["noun"]) for m in objects]
    for m, noun in zip(objects, nouns):
        num = m["num"]
        count = None if num is None else (int(num) if num.isdigit() else _COUNT_WORDS[num])
        if count == 1:
            article = "an" if m["colour"][0] in "aeiou" else "a"
            out.append(GeneratedQuestion(f"is there {article} {m['colour']} {noun}?", "count", "yes"))
        elif count is not None:
            out.append(GeneratedQuestion(f"how many {m['colour']} {m['noun']} are there?", "count", str(count)))
        if nouns.count(noun) == 1:
            verb, word = ("are", m["noun"]) if (count or 1) > 1 else ("is", noun)
            out.append(GeneratedQuestion(f"what colour {verb} the {word}?", "colour", m["colour"]))
    return out


def questions_for_prompt(prompt: str) -> list[GeneratedQuestion]:
    """Questions with known answers from ``prompt``: the grammar's parse for a grammar caption, else
    the template parser (possibly no questions at all). Raises GenimgError when ``prompt`` is not text."""
    if not isinstance(prompt, str):
        raise GenimgError(f"prompt must be text, got {type(prompt).__name__}")
    try:
        return _grammar_questions(prompt)
    except GenimgError:
        return _free_questions(prompt)


_WORD_NUMBERS = {k: str(v) for k, v in NUMBER_WORDS.items() if k not in ("a", "an")}
# The closed vocabulary an answer is checked in, by kind: an answer that names another word of the
# kind asked ("red and blue" for "red") is wrong; words of other kinds are context ("the circle is red").
_KINDS = {**{c: "colour" for c in COLOUR_NAMES}, **{s: "shape" for s in SHAPES}, **{p: "position" for p in POSITIONS},
          "yes": "yes/no", "no": "yes/no", **{str(n): "number" for n in range(11)}}


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", normalise(text))
    return [_WORD_NUMBERS.get(w, singular(w)) for w in words]


def answers_match(expected: str, given: str) -> bool:
    """True when the free-form answer ``given`` says ``expected``: every expected word is in it and
    no other word of the same kind (colours, shapes, positions, yes/no, numbers) is
    ('The circle is red.' matches 'red'; 'red and blue' does not)."""
    want, got = _tokens(expected), _tokens(given)
    if not want or any(w not in got for w in want):
        return False
    asked = {_KINDS[w] for w in want if w in _KINDS}
    return not any(w not in want and _KINDS.get(w) in asked for w in got)


def score_answers(answer: Callable[[str], Any], questions: list[GeneratedQuestion]) -> QAScore:
    """Ask every question through ``answer(question) -> Answer-like`` (``text``, ``answerable``) and score it.

    Returns a :class:`QAScore`; accuracy is None when no question was answered.
    """
    types: dict[str, list[int]] = {}
    rows = []
    unanswered = 0
    for q in questions:
        reply = answer(q.text)
        ok = answers_match(q.expected, reply.text) if reply.answerable else None
        rows.append({"question": q.text, "type": q.type, "expected": q.expected, "answer": reply.text, "correct": ok})
        if ok is None:
            unanswered += 1
            continue
        tally = types.setdefault(q.type, [0, 0])
        tally[0] += int(ok)
        tally[1] += 1
    answered = sum(n for _, n in types.values())
    accuracy = sum(c for c, _ in types.values()) / answered if answered else None
    ordered = {t: types[t] for t in QUESTION_TYPES if t in types}
    return QAScore(accuracy, ordered, rows, unanswered)

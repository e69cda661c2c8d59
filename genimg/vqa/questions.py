"""Questions about scene images, read: a question parsed into its type and the objects it names.

:func:`parse_question` turns a question in plain English ("what colour is the circle?", "how many
red squares are there?", "where is the blue star?", "what color is the background?", "is the red
circle to the left of the green square?") into a :class:`Query`, or None when it is none of the
forms the scene answerer understands. :func:`check_question` refuses empty and endless questions
(one place for that rule: the CLI, the API and every answerer use it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.grammar import COLOUR_NAMES, SHAPES

QUESTION_TYPES: tuple[str, ...] = ("colour", "shape", "count", "position", "background", "relation")
MAX_QUESTION_CHARS = 300

# Words for "any object": "how many shapes", "what colour is the object".
GENERIC_NOUNS = ("object", "shape", "thing", "item", "figure")
NUMBER_WORDS = {"zero": 0, "no": 0, "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5,
                "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_SIZE_OF_WORD = {w: size for size, words in grammar.SIZE_WORDS.items() for w in words}
_POSITION_OF_PHRASE = {p: pos for pos, phrases in grammar.POSITION_PHRASES.items() for p in phrases}
_RELATION_OF_PHRASE = {p: rel for rel, phrases in grammar.RELATION_PHRASES.items() for p in phrases}
# A few more spellings people type.
_POSITION_OF_PHRASE.update({"in the centre of the image": "centre", "in the center of the image": "centre",
                            "at the centre": "centre", "at the center": "centre"})
_RELATION_OF_PHRASE.update({"to the right side of": "right of", "to the left side of": "left of"})


@dataclass(frozen=True)
class ObjectRef:
    """The objects a question names: ``shape`` None for "object"/"shape"; ``noun`` as typed."""

    noun: str
    shape: str | None
    colour: str | None = None
    size: str | None = None
    position: str | None = None

    def known(self) -> bool:
        """True when the noun is one of the grammar's shapes or a generic word ("object")."""
        return self.shape is not None or self.noun in GENERIC_NOUNS

    def phrase(self) -> str:
        """The reference in words, e.g. 'small red circle on the left'."""
        words = [w for w in (self.size, self.colour, self.noun) if w]
        text = " ".join(words)
        return text + (f" {grammar.POSITION_PHRASES[self.position][0]}" if self.position else "")


@dataclass(frozen=True)
class Query:
    """A parsed question. ``type`` is one of QUESTION_TYPES; ``yes_no`` for questions answered yes/no.

    - colour / shape / position ("where is"): about ``objects[0]``;
    - count: how many ``objects[0]``; with ``number`` set it is "are there N ...?" (yes/no);
    - position with ``position`` set: "is the X on the left?" (yes/no);
    - relation: "is objects[0] <relation> objects[1]?" (yes/no);
    - background: the background's colour.
    """

    type: str
    objects: tuple[ObjectRef, ...] = ()
    yes_no: bool = False
    number: int | None = None
    position: str | None = None
    relation: str | None = None


def check_question(question: object) -> str:
    """The question, trimmed, with one space between words.

    Raises GenimgError when it is not text, is empty, or is longer than MAX_QUESTION_CHARS.
    """
    if not isinstance(question, str):
        raise GenimgError(f"the question must be text, got {type(question).__name__}")
    text = " ".join(question.split())
    if not text:
        raise GenimgError("no question given: type one, e.g. 'what colour is the circle?'")
    if len(text) > MAX_QUESTION_CHARS:
        raise GenimgError(f"the question is {len(text)} characters long; ask one question of at most "
                          f"{MAX_QUESTION_CHARS} characters")
    return text


def _alt(words) -> str:
    # Longest first so "on the left side" wins over "on the left".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_COLOUR = rf"(?P<colour{{t}}>{_alt(COLOUR_NAMES)})"
_SIZE = rf"(?P<size{{t}}>{_alt(_SIZE_OF_WORD)})"
_NOUN = r"(?P<noun{t}>[a-z][a-z\-]*)"
_POSITION = rf"(?P<pos{{t}}>{_alt(_POSITION_OF_PHRASE)})"
_DET = r"(?:(?:the|a|an|any|one)\s+)?"


def _object_re(t: str, with_position: bool = True) -> str:
    obj = (rf"(?:{_SIZE.format(t=t)}\s+)?(?:{_COLOUR.format(t=t)}\s+)?(?:{_SIZE.format(t=t + 'b')}\s+)?"
           rf"{_NOUN.format(t=t)}")
    if with_position:
        obj += rf"(?:,?\s+{_POSITION.format(t=t)})?"
    return obj


_COLOUR_WORD = r"(?:colou?r|hue)"
_THERE = r"(?:\s+(?:are\s+)?(?:there|visible|shown|in\s+(?:the|this)\s+(?:image|picture|scene)|do\s+you\s+see))*"
_FORMS: list[tuple[str, re.Pattern[str]]] = [
    ("background", re.compile(
        rf"^(?:what|which)\s+(?:{_COLOUR_WORD}\s+is\s+the\s+background|is\s+the\s+(?:background\s+{_COLOUR_WORD}|"
        rf"{_COLOUR_WORD}\s+of\s+the\s+background))$|^what\s+{_COLOUR_WORD}\s+background(?:\s+is\s+there)?$")),
    ("count", re.compile(rf"^how\s+many\s+{_object_re('0')}{_THERE}$")),
    ("count-yes-no", re.compile(
        rf"^(?:is|are)\s+there\s+(?P<num>{_alt(NUMBER_WORDS)}|\d+)\s+{_object_re('0')}(?:\s+in\s+the\s+(?:image|picture))?$")),
    ("relation", re.compile(
        rf"^(?:is|are)\s+{_DET}{_object_re('0', False)}\s+(?P<rel>{_alt(_RELATION_OF_PHRASE)})\s+{_DET}"
        rf"{_object_re('1', False)}$")),
    ("position-yes-no", re.compile(rf"^(?:is|are)\s+{_DET}{_object_re('0', False)},?\s+{_POSITION.format(t='q')}$")),
    ("where", re.compile(rf"^where\s+(?:is|are)\s+{_DET}{_object_re('0')}(?:\s+(?:located|placed))?$")),
    ("colour", re.compile(
        rf"^(?:what|which)\s+(?:{_COLOUR_WORD}\s+(?:is|are)|is\s+the\s+{_COLOUR_WORD}\s+of)\s+{_DET}{_object_re('0')}$")),
    ("shape", re.compile(
        rf"^(?:what|which)\s+(?:(?:kind\s+of\s+)?shape\s+(?:is|are)|is\s+the\s+shape\s+of)\s+{_DET}{_object_re('0')}$")),
]


def singular(word: str) -> str:
    """A shape or generic noun in the singular ("circles" -> "circle"); other words as typed."""
    known = (*SHAPES, *GENERIC_NOUNS)
    for cut in (0, 1, 2):
        if cut and not word.endswith("es"[-cut:]):
            continue
        if word[: len(word) - cut] in known:
            return word[: len(word) - cut]
    return word


def _ref(m: re.Match[str], t: str) -> ObjectRef:
    noun = singular(m[f"noun{t}"])
    shape = noun if noun in SHAPES else None
    size_word = m[f"size{t}"] or m[f"size{t}b"]
    position = m.groupdict().get(f"pos{t}")
    return ObjectRef(noun=noun, shape=shape, colour=m[f"colour{t}"],
                     size=_SIZE_OF_WORD[size_word] if size_word else None,
                     position=_POSITION_OF_PHRASE[position] if position else None)


def normalise(text: str) -> str:
    """Lower case, 'color' spelt 'colour', 'center' spelt 'centre', no final punctuation, single spaces."""
    text = " ".join(text.lower().replace("?", " ").replace("!", " ").split()).rstrip(".")
    text = re.sub(r"\bcolor(s?)\b", r"colour\1", text)
    return re.sub(r"\bcenter\b", "centre", text)


def parse_question(question: str) -> Query | None:
    """Parse a question about a scene image into a :class:`Query`, or None when it is none of the known forms.

    Takes the question as typed (case, 'color'/'colour', a final '?' do not matter). Raises GenimgError
    for an empty or endless question (:func:`check_question`).
    """
    text = normalise(check_question(question))
    for form, pattern in _FORMS:
        m = pattern.match(text)
        if m is None:
            continue
        if form == "background":
            return Query("background")
        if form == "count":
            return Query("count", (_ref(m, "0"),))
        if form == "count-yes-no":
            num = m["num"]
            return Query("count", (_ref(m, "0"),), yes_no=True,
                         number=int(num) if num.isdigit() else NUMBER_WORDS[num])
        if form == "relation":
            return Query("relation", (_ref(m, "0"), _ref(m, "1")), yes_no=True,
                         relation=_RELATION_OF_PHRASE[m["rel"]])
        if form == "position-yes-no":
            return Query("position", (_ref(m, "0"),), yes_no=True, position=_POSITION_OF_PHRASE[m["posq"]])
        if form == "where":
            return Query("position", (_ref(m, "0"),))
        return Query(form, (_ref(m, "0"),))
    return None

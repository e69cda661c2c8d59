"""Captions of the scene grammar, read back: a prompt parsed into what it asks for.

:func:`parse_prompt` turns a caption the grammar can produce into a :class:`PromptSpec`
(objects with colour, shape, optional size and count; background; position or relation)
and refuses anything else with a GenimgError, so an evaluation never silently scores a
prompt it does not understand. :func:`spec_for_scene` gives the spec a fully explicit
caption of a scene would parse to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.grammar import COLOUR_NAMES, SHAPES, Scene

@dataclass(frozen=True)
class ObjectSpec:
    """One kind of object a prompt asks for: ``count`` copies of a ``colour`` ``shape``."""

    shape: str
    colour: str
    size: str | None  # None when the prompt does not say
    count: int


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt asks for. For kind "relation": objects[0] <relation> objects[1]."""

    objects: tuple[ObjectSpec, ...]
    background: str | None
    kind: str  # "single" | "position" | "count" | "relation"
    position: str | None = None
    relation: str | None = None


def alternation(words) -> str:
    """A regex alternation of ``words``, escaped, longest first (so "on the left side" wins over "on the left")."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_SIZE_OF_WORD = {w: size for size, words in grammar.SIZE_WORDS.items() for w in words}
_COUNT_OF_WORD = {"a": 1, "an": 1, "one": 1, **{w: n for n, w in grammar.NUMBER_WORDS.items()}}
_POSITION_OF_PHRASE = {p: pos for pos, phrases in grammar.POSITION_PHRASES.items() for p in phrases}
_RELATION_OF_PHRASE = {p: rel for rel, phrases in grammar.RELATION_PHRASES.items() for p in phrases}
_COLOUR_RE = alternation(COLOUR_NAMES)


def _object_re(tag: str) -> str:
    return (
        rf"(?P<num{tag}>{alternation(_COUNT_OF_WORD)})\s+"
        rf"(?:(?P<size{tag}>{alternation(_SIZE_OF_WORD)})\s+)?"
        rf"(?P<colour{tag}>{_COLOUR_RE})\s+"
        rf"(?P<shape{tag}>{alternation(SHAPES)})(?P<plural{tag}>s?)"
    )


_BACKGROUND_RE = rf"(?:(?:,\s*|\s+)(?:(?:on|against|with)\s+(?:a|an)\s+)?(?P<bg>{_COLOUR_RE})\s+background)?"
_RELATION_PROMPT = re.compile(
    rf"^{_object_re('0')}\s+(?P<rel>{alternation(_RELATION_OF_PHRASE)})\s+{_object_re('1')}{_BACKGROUND_RE}$"
)
_POSITION_PROMPT = re.compile(rf"^{_object_re('0')},?\s+(?P<pos>{alternation(_POSITION_OF_PHRASE)}){_BACKGROUND_RE}$")
_PLAIN_PROMPT = re.compile(rf"^{_object_re('0')}{_BACKGROUND_RE}$")


def _outside(prompt: str, why: str) -> GenimgError:
    return GenimgError(
        f"prompt is outside the scene grammar: {prompt!r} ({why}); expected e.g. "
        "'two small red circles on a blue background' or 'a green square to the left of a purple star'"
    )


def _object_from_match(m: re.Match, tag: str, prompt: str) -> ObjectSpec:
    count = _COUNT_OF_WORD[m[f"num{tag}"]]
    plural = bool(m[f"plural{tag}"])
    if plural != (count > 1):
        raise _outside(prompt, f"'{m[f'num{tag}']} ... {m[f'shape{tag}']}{m[f'plural{tag}']}' does not agree in number")
    size = _SIZE_OF_WORD[m[f"size{tag}"]] if m[f"size{tag}"] else None
    return ObjectSpec(m[f"shape{tag}"], m[f"colour{tag}"], size, count)


def parse_prompt(prompt: str) -> PromptSpec:
    """Parse a caption of the scene grammar into a :class:`PromptSpec`.

    Case, surrounding spaces and a final full stop are ignored.
    Raises GenimgError("prompt is outside the scene grammar: ...") for anything else the
    grammar cannot produce (unknown words, number disagreement, a background the same colour
    as an object, a relation between two identical objects, counts above four).
    """
    if not isinstance(prompt, str):
        raise GenimgError(f"prompt must be a string, got {type(prompt).__name__}")
    text = " ".join(prompt.lower().strip().rstrip(".").split())
    text = text.replace(" ,", ",")

    if m := _RELATION_PROMPT.match(text):
        objects = (_object_from_match(m, "0", prompt), _object_from_match(m, "1", prompt))
        if any(o.count != 1 for o in objects):
            raise _outside(prompt, "a relation is between two single objects")
        if (objects[0].shape, objects[0].colour) == (objects[1].shape, objects[1].colour):
            raise _outside(prompt, "the two objects of a relation must differ in colour or shape")
        spec = PromptSpec(objects, m["bg"], "relation", relation=_RELATION_OF_PHRASE[m["rel"]])
    elif m := _POSITION_PROMPT.match(text):
        obj = _object_from_match(m, "0", prompt)
        if obj.count != 1:
            raise _outside(prompt, "a position is asked of a single object")
        spec = PromptSpec((obj,), m["bg"], "position", position=_POSITION_OF_PHRASE[m["pos"]])
    elif m := _PLAIN_PROMPT.match(text):
        obj = _object_from_match(m, "0", prompt)
        spec = PromptSpec((obj,), m["bg"], "count" if obj.count > 1 else "single")
    else:
        raise _outside(prompt, "it does not match any caption pattern")

    if spec.background is not None and any(o.colour == spec.background for o in spec.objects):
        raise _outside(prompt, "an object has the background colour")
    return spec


def spec_for_scene(scene: Scene) -> PromptSpec:
    """The spec a fully explicit caption of ``scene`` would parse to (sizes and background given)."""
    if scene.kind == "count":
        o = scene.objects[0]
        objects = (ObjectSpec(o.shape, o.colour, o.size, len(scene.objects)),)
    else:
        objects = tuple(ObjectSpec(o.shape, o.colour, o.size, 1) for o in scene.objects)
    return PromptSpec(objects, scene.background, scene.kind, scene.position, scene.relation)

"""Captions of the emoji world, read back: a prompt parsed into what it asks for.

:func:`parse_prompt` turns a caption the grammar can produce into a :class:`PromptSpec`
(emoji with optional size and count, background, position or relation) and refuses anything
else with a GenimgError, so an evaluation never silently scores a prompt it does not
understand. Case, extra spaces and a final full stop are ignored; names, synonyms and plurals
come from :mod:`genimg.emoji.vocabulary`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from genimg.emoji import grammar
from genimg.emoji.grammar import Scene
from genimg.emoji.vocabulary import vocabulary
from genimg.errors import GenimgError
from genimg.scenes.prompts import alternation


@dataclass(frozen=True)
class ObjectSpec:
    """One kind of emoji a prompt asks for: ``count`` copies of ``char``, of ``size`` (None: not said)."""

    char: str
    size: str | None
    count: int


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt asks for. For kind "relation": objects[0] <relation> objects[1]."""

    objects: tuple[ObjectSpec, ...]
    background: str | None
    kind: str  # "single" | "position" | "count" | "relation"
    position: str | None = None
    relation: str | None = None


@lru_cache(maxsize=1)
def _tables():
    singular = {}
    plural = {}
    for e in vocabulary():
        for phrase in (e.name, *e.synonyms):
            singular[phrase] = e.char
        plural[e.plural] = e.char
    sizes = {w: size for size, words in grammar.SIZE_WORDS.items() for w in words}
    positions = {p: pos for pos, phrases in grammar.POSITION_PHRASES.items() for p in phrases}
    relations = {p: rel for rel, phrases in grammar.RELATION_PHRASES.items() for p in phrases}
    backgrounds = {**{c: c for c in grammar.BACKGROUND_NAMES}, **grammar.BACKGROUND_SYNONYMS}
    # Lazy: "a small airplane" is the emoji named "small airplane" before it is a small "airplane"
    # (the grammar never writes the second reading).
    size_re = rf"(?:(?P<size{{t}}>{alternation(sizes)})\s+)??"
    one = rf"(?:a|an|one)\s+{size_re}(?P<name{{t}}>{alternation(singular)})"
    many = rf"(?P<num>two|three)\s+{size_re.format(t='0')}(?P<plural>{alternation(plural)})"
    prefix = r"(?:(?:an emoji|a picture|an icon|an image) of\s+)?"
    bg = (rf"(?:(?:,\s*|\s+)(?:(?:on|against|with)\s+(?:a|an)\s+)?(?P<bg>{alternation(backgrounds)})"
          r"\s+background)?")
    patterns = {
        "relation": re.compile(rf"^{one.format(t='0')}\s+(?P<rel>{alternation(relations)})\s+{one.format(t='1')}{bg}$"),
        "position": re.compile(rf"^{prefix}{one.format(t='0')},?\s+(?P<pos>{alternation(positions)}){bg}$"),
        "count": re.compile(rf"^{many}{bg}$"),
        "single": re.compile(rf"^{prefix}{one.format(t='0')}{bg}$"),
    }
    return singular, plural, sizes, positions, relations, backgrounds, patterns


def _outside(prompt: str, why: str) -> GenimgError:
    return GenimgError(f"prompt is outside the emoji world: {prompt!r} ({why}); expected e.g. "
                       "'a cat to the left of a rocket on a blue background' or 'three grinning faces'")


def parse_prompt(prompt: str) -> PromptSpec:
    """Parse a caption of the emoji grammar into a :class:`PromptSpec`.

    Raises GenimgError("prompt is outside the emoji world: ...") for a non-string, an unknown
    word, or a pattern the grammar cannot produce (a relation between two identical emoji).
    """
    if not isinstance(prompt, str):
        raise GenimgError(f"prompt must be a string, got {type(prompt).__name__}")
    text = " ".join(prompt.lower().strip().rstrip(".").split()).replace(" ,", ",")
    singular, plural, sizes, positions, relations, backgrounds, patterns = _tables()
    for kind, pattern in patterns.items():
        m = pattern.match(text)
        if m is None:
            continue
        bg = backgrounds[m["bg"]] if m["bg"] else None
        if kind == "count":
            obj = ObjectSpec(plural[m["plural"]], sizes.get(m["size0"]), grammar.COUNTS[0] if m["num"] == "two" else 3)
            return PromptSpec((obj,), bg, kind)
        first = ObjectSpec(singular[m["name0"]], sizes.get(m["size0"]), 1)
        if kind == "relation":
            second = ObjectSpec(singular[m["name1"]], sizes.get(m["size1"]), 1)
            if second.char == first.char:
                raise _outside(prompt, "the two emoji of a relation must differ")
            return PromptSpec((first, second), bg, kind, relation=relations[m["rel"]])
        if kind == "position":
            return PromptSpec((first,), bg, kind, position=positions[m["pos"]])
        return PromptSpec((first,), bg, kind)
    raise _outside(prompt, "it does not match any caption pattern of the vocabulary")


def spec_for_scene(scene: Scene) -> PromptSpec:
    """The spec a fully explicit caption of ``scene`` would parse to (sizes and background given)."""
    if scene.kind == "count":
        o = scene.objects[0]
        return PromptSpec((ObjectSpec(o.char, o.size, len(scene.objects)),), scene.background, "count")
    objects = tuple(ObjectSpec(o.char, o.size, 1) for o in scene.objects)
    return PromptSpec(objects, scene.background, scene.kind, scene.position, scene.relation)

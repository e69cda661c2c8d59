"""A closed, deterministic grammar of captioned emoji scenes (the emoji world).

Each scene is a plain coloured background with one to three OpenMoji emoji from
:func:`genimg.emoji.vocabulary.vocabulary`, in four kinds mirroring the shapes grammar:

* ``single``   - one emoji near the middle ("a small cat on a pink background")
* ``position`` - one emoji in a named region ("a picture of a rocket at the top")
* ``count``    - two or three copies of one emoji ("three grinning faces, blue background")
* ``relation`` - two different emoji in a spatial relation ("a cat to the left of a rocket")

Geometry is in fractions of the image side; an emoji's size is the longest side of its ink.
Captions come from a closed vocabulary (CLDR names, synonyms, plurals), so
:func:`genimg.emoji.prompts.parse_prompt` reads every one back. Everything random goes
through an explicitly seeded ``numpy.random.Generator`` (PCG64) using ``random()`` and
``integers()`` only; ``tests/test_emoji_grammar.py`` pins a fingerprint of the evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from genimg.emoji.vocabulary import Emoji, faces, glyph, lookup, vocabulary
from genimg.errors import GenimgError
# Positions, relations, kinds of scene and position wording are the shapes grammar's own.
from genimg.scenes.grammar import KINDS, POSITION_PHRASES, POSITIONS, RELATIONS  # noqa: F401 (re-exported)

# Background colours: light enough that OpenMoji's black outlines always stand out (no black
# background), and at least ~55 RGB units apart so the border's colour names one of them.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "grey": (170, 170, 170),
    "pink": (255, 175, 210),
    "blue": (110, 165, 255),
    "green": (130, 215, 130),
    "yellow": (255, 240, 110),
    "purple": (185, 140, 235),
    "orange": (255, 165, 80),
}
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)
BACKGROUND_SYNONYMS: dict[str, str] = {"gray": "grey"}

SIZES: dict[str, float] = {"small": 0.26, "large": 0.42}  # longest ink side / image side
COUNTS: tuple[int, ...] = (2, 3)
MIN_SIZE = 96  # smallest render side (px)

SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
NUMBER_WORDS: dict[int, str] = {2: "two", 3: "three"}
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "beneath", "under"),
}
PREFIXES: tuple[str, ...] = ("", "", "an emoji of ", "a picture of ", "an icon of ")
BACKGROUND_PHRASES: tuple[str, ...] = (
    " on {a} {c} background", " against {a} {c} background", ", {c} background", " with {a} {c} background",
)

# Layout rules, in fractions of the image side. Each emoji is placed as a square of side
# SIZES[size] (its longest ink side), so boxes of different emoji never come closer than GAP.
EDGE_PAD = 0.03
GAP = 0.08
SINGLE_JITTER = 0.10
CENTRE_JITTER = 0.05
REGION_OFFSET = 0.22
REGION_CROSS = 0.06
RELATION_MIN = 0.30
RELATION_SLOPE = 0.4


@dataclass(frozen=True)
class EmojiObject:
    """One emoji in a scene: ``char``, ``size`` name, centre (x, y) in fractions of the side."""

    char: str
    size: str
    x: float
    y: float


@dataclass(frozen=True)
class Scene:
    """A background plus emoji, with the caption that describes them."""

    objects: tuple[EmojiObject, ...]
    background: str
    kind: str
    caption: str
    position: str | None = None
    relation: str | None = None  # objects[0] <relation> objects[1]


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * rng.random())


def article(word: str) -> str:
    """"a" or "an" before ``word`` (by sound for the few exceptions the vocabulary has)."""
    if word.startswith(("uni", "eu", "one", "ewe", "u-")):
        return "a"
    return "an" if word[0] in "aeiou" or word.startswith("hour") else "a"


def relation_axes(dx, dy, relation: str):
    """(along, cross) offsets of b from a (``dx = b.x - a.x``) for ``relation``; along > 0 when it holds."""
    if relation == "left of":
        return dx, dy
    if relation == "right of":
        return -dx, dy
    if relation == "above":
        return dy, dx  # image y grows downwards
    if relation == "below":
        return -dy, dx
    raise GenimgError(f"unknown relation {relation!r}; expected one of {', '.join(RELATIONS)}")


def _apart(x, y, size, placed) -> bool:
    for p in placed:
        need = (SIZES[size] + SIZES[p.size]) / 2 + GAP
        if abs(x - p.x) < need and abs(y - p.y) < need:
            return False
    return True


def _free_position(rng, size, placed, tries=200):
    r = SIZES[size] / 2 + EDGE_PAD
    for _ in range(tries):
        x, y = _uniform(rng, r, 1 - r), _uniform(rng, r, 1 - r)
        if _apart(x, y, size, placed):
            return x, y
    return None


def _region_centre(rng, position: str, size: str) -> tuple[float, float]:
    if position == "centre":
        return 0.5 + _uniform(rng, -CENTRE_JITTER, CENTRE_JITTER), 0.5 + _uniform(rng, -CENTRE_JITTER, CENTRE_JITTER)
    far = 0.5 - SIZES[size] / 2 - EDGE_PAD
    along = _uniform(rng, REGION_OFFSET, max(REGION_OFFSET, far))
    cross = 0.5 + _uniform(rng, -REGION_CROSS, REGION_CROSS)
    return {"left": (0.5 - along, cross), "right": (0.5 + along, cross),
            "top": (cross, 0.5 - along), "bottom": (cross, 0.5 + along)}[position]


def _pick(rng, pool: tuple[Emoji, ...], char: str | None) -> str:
    return lookup(char).char if char else _choice(rng, pool).char


@lru_cache(maxsize=1)
def _all_phrases() -> frozenset[str]:
    return frozenset(p for e in vocabulary() for p in (e.name, e.plural, *e.synonyms))


def _object_phrase(rng, emoji: Emoji, size: str, with_size: bool) -> str:
    name = emoji.name if not emoji.synonyms or rng.random() < 0.7 else _choice(rng, emoji.synonyms)
    word = _choice(rng, SIZE_WORDS[size])
    if with_size and f"{word} {name}" in _all_phrases():  # "small airplane" is another emoji: say "little"
        word = next((w for w in SIZE_WORDS[size] if f"{w} {name}" not in _all_phrases()), None)
    words = ([word] if with_size and word else []) + [name]
    return f"{article(words[0])} " + " ".join(words)


def _caption(rng, kind, objects, background, position, relation) -> str:
    with_size = rng.random() < 0.6
    first = lookup(objects[0].char)
    if kind == "count":
        words = ([_choice(rng, SIZE_WORDS[objects[0].size])] if with_size else []) + [first.plural]
        text = f"{NUMBER_WORDS[len(objects)]} " + " ".join(words)
    elif kind == "relation":
        text = (f"{_object_phrase(rng, first, objects[0].size, with_size)} {_choice(rng, RELATION_PHRASES[relation])} "
                f"{_object_phrase(rng, lookup(objects[1].char), objects[1].size, with_size)}")
    else:
        text = _choice(rng, PREFIXES) + _object_phrase(rng, first, objects[0].size, with_size)
        if kind == "position":
            text += " " + _choice(rng, POSITION_PHRASES[position])
    if rng.random() < 0.85:  # sometimes unconstrained: the evaluator then skips the background
        text += _choice(rng, BACKGROUND_PHRASES).format(a=article(background), c=background)
    return text


def compose_scene(rng: np.random.Generator, kind: str, char: str | None = None, *, faces_only: bool = False,
                  position: str | None = None, relation: str | None = None, count: int | None = None,
                  background: str | None = None) -> Scene:
    """Sample one scene of ``kind``; keyword arguments pin parts of it. Raises GenimgError for bad values."""
    if kind not in KINDS:
        raise GenimgError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")
    if background is not None and background not in BACKGROUNDS:
        raise GenimgError(f"unknown background {background!r}; expected one of {', '.join(BACKGROUND_NAMES)}")
    pool = faces() if faces_only else vocabulary()
    first = _pick(rng, pool, char)
    size = _choice(rng, tuple(SIZES))
    bg = background or _choice(rng, BACKGROUND_NAMES)
    if kind == "single":
        objects = (EmojiObject(first, size, 0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER),
                               0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER)),)
    elif kind == "position":
        position = position or _choice(rng, POSITIONS)
        if position not in POSITIONS:
            raise GenimgError(f"unknown position {position!r}; expected one of {', '.join(POSITIONS)}")
        objects = (EmojiObject(first, size, *_region_centre(rng, position, size)),)
    elif kind == "count":
        count = count or _choice(rng, COUNTS)
        if count not in COUNTS:
            raise GenimgError(f"count must be one of {COUNTS}, got {count!r}")
        size = "small" if count == 3 else size
        placed: list[EmojiObject] = []
        while len(placed) < count:
            xy = _free_position(rng, size, placed)
            if xy is None:  # a bad first placement: start again (rare)
                placed = []
                continue
            placed.append(EmojiObject(first, size, *xy))
        objects = tuple(placed)
    else:
        relation = relation or _choice(rng, RELATIONS)
        second = _pick(rng, pool, None)
        while second == first:
            second = _pick(rng, pool, None)
        size2 = _choice(rng, tuple(SIZES))
        while True:
            a = _free_position(rng, size, [])
            b = _free_position(rng, size2, [EmojiObject(first, size, *a)])
            if b is not None:
                along, cross = relation_axes(b[0] - a[0], b[1] - a[1], relation)
                if along >= RELATION_MIN and abs(cross) <= RELATION_SLOPE * along:
                    break
        objects = (EmojiObject(first, size, *a), EmojiObject(second, size2, *b))
    caption = _caption(rng, kind, objects, bg, position, relation)
    return Scene(objects, bg, kind, caption, position if kind == "position" else None,
                 relation if kind == "relation" else None)


def layout(rng: np.random.Generator, kind: str, chars: tuple[str, ...], sizes: tuple[str | None, ...], *,
           position: str | None = None, relation: str | None = None, count: int = 1) -> tuple[EmojiObject, ...]:
    """Place the emoji a caption asks for by the grammar's own rules (what a generator's layout stage uses).

    ``chars``/``sizes``: one entry per kind of emoji (two for a relation); a size of None is drawn.
    ``count`` copies for kind "count" (3 copies are always small, as in the grammar). Returns the
    objects with their centres; raises GenimgError for an unknown kind, position or relation.
    """
    if kind not in KINDS:
        raise GenimgError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")
    sizes = tuple(s if s is not None else _choice(rng, tuple(SIZES)) for s in sizes)
    if kind == "single":
        return (EmojiObject(chars[0], sizes[0], 0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER),
                            0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER)),)
    if kind == "position":
        if position not in POSITIONS:
            raise GenimgError(f"unknown position {position!r}; expected one of {', '.join(POSITIONS)}")
        return (EmojiObject(chars[0], sizes[0], *_region_centre(rng, position, sizes[0])),)
    if kind == "count":
        size = "small" if count >= 3 else sizes[0]
        placed: list[EmojiObject] = []
        while len(placed) < count:
            xy = _free_position(rng, size, placed)
            if xy is None:
                placed = []
                continue
            placed.append(EmojiObject(chars[0], size, *xy))
        return tuple(placed)
    if relation not in RELATIONS:
        raise GenimgError(f"unknown relation {relation!r}; expected one of {', '.join(RELATIONS)}")
    while True:
        a = _free_position(rng, sizes[0], [])
        b = _free_position(rng, sizes[1], [EmojiObject(chars[0], sizes[0], *a)])
        if b is not None:
            along, cross = relation_axes(b[0] - a[0], b[1] - a[1], relation)
            if along >= RELATION_MIN and abs(cross) <= RELATION_SLOPE * along:
                return EmojiObject(chars[0], sizes[0], *a), EmojiObject(chars[1], sizes[1], *b)


def sample_scene(rng: np.random.Generator, kind: str | None = None, *, faces_only: bool = False) -> Scene:
    """One random scene (kind drawn uniformly unless given)."""
    return compose_scene(rng, kind or _choice(rng, KINDS), faces_only=faces_only)


def scene_for_seed(seed: int, kind: str | None = None, *, faces_only: bool = False) -> Scene:
    """The scene of ``seed`` (a non-negative int): the same on every machine."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise GenimgError(f"seed must be a non-negative integer, got {seed!r}")
    return sample_scene(np.random.Generator(np.random.PCG64(int(seed))), kind, faces_only=faces_only)


@lru_cache(maxsize=4096)
def _scaled(char: str, longest_px: int) -> Image.Image:
    g = glyph(char)
    w, h = g.size
    k = longest_px / max(w, h)
    return g.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)


def render(scene: Scene, size: int = 128) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``size`` x ``size`` (>= 96 px). Raises GenimgError for a bad size."""
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < MIN_SIZE or size > 2048:
        raise GenimgError(f"render size must be an integer from {MIN_SIZE} to 2048 px, got {size!r}")
    if scene.background not in BACKGROUNDS:
        raise GenimgError(f"unknown background {scene.background!r}; expected one of {', '.join(BACKGROUND_NAMES)}")
    canvas = Image.new("RGBA", (size, size), BACKGROUNDS[scene.background] + (255,))
    for obj in scene.objects:
        g = _scaled(obj.char, max(8, round(SIZES[obj.size] * size)))
        left, top = round(obj.x * size - g.width / 2), round(obj.y * size - g.height / 2)
        canvas.alpha_composite(g, (left, top))
    return canvas.convert("RGB")


def dataset_scenes(n: int, seed: int) -> list[Scene]:
    """The ``n`` scenes of the training set of ``seed`` (what :func:`make_dataset` renders), without rendering."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return [sample_scene(rng) for _ in range(n)]


def make_dataset(n: int, seed: int, size: int = 128) -> tuple[np.ndarray, list[str]]:
    """``n`` scenes from ``seed``: uint8 images (n, size, size, 3) and their captions."""
    scenes = dataset_scenes(n, seed)
    return np.stack([np.asarray(render(s, size)) for s in scenes]), [s.caption for s in scenes]


@lru_cache(maxsize=1)
def _eval_prompt_set() -> tuple[Scene, ...]:
    rng = np.random.Generator(np.random.PCG64(19))
    scenes = [compose_scene(rng, "single", e.char) for e in vocabulary()]  # every emoji once
    scenes += [compose_scene(rng, "position", position=POSITIONS[i % 5]) for i in range(100)]
    scenes += [compose_scene(rng, "count", count=COUNTS[i % 2]) for i in range(100)]
    scenes += [compose_scene(rng, "relation", relation=RELATIONS[i % 4]) for i in range(100)]
    return tuple(scenes)


def eval_prompt_set() -> list[Scene]:
    """The fixed evaluation set: a single of every emoji, then 100 position, 100 count, 100 relation scenes."""
    return list(_eval_prompt_set())

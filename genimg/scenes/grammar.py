"""A closed, deterministic grammar of captioned synthetic scenes.

Each scene is a plain-coloured background with 1-4 flat shapes (circle, square,
triangle, star) in one of eight well-separated colours. The grammar has four kinds
of scene, mirroring the GenEval task split:

* ``single``   - one object near the middle ("a small red circle on a blue background")
* ``position`` - one object in a named region ("an orange triangle at the top")
* ``count``    - 2-4 identical objects ("three small blue squares, white background")
* ``relation`` - two different objects in a spatial relation
  ("a green square to the left of a purple triangle")

Captions are drawn from a small closed vocabulary so that
:func:`genimg.scenes.prompts.parse_prompt` can parse every one of them.

Geometry is kept in fractions of the image side, and :func:`render` draws at 4x
supersampling then box-filters down, so the same scene renders consistently (and
anti-aliased) at 32, 64 or 128 pixels.

Determinism: everything random goes through an explicit, explicitly seeded
``numpy.random.Generator`` (PCG64) using only ``random()`` and ``integers()``, whose
streams are identical across machines and have been stable across numpy releases;
nothing depends on Python's ``hash``, set order or global state. ``tests/test_grammar.py``
pins a fingerprint of :func:`eval_prompt_set`, so any drift is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from genimg.errors import GenimgError

# --------------------------------------------------------------------------- vocabulary

# Chosen so that the closest pair (red/orange, blue/purple, yellow/orange) is still
# about 45 CIELAB units apart: far enough that nearest-colour classification is
# unambiguous even for somewhat off-palette generated pixels.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (20, 100, 230),
    "yellow": (250, 220, 30),
    "purple": (150, 30, 160),
    "orange": (250, 140, 20),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# Object "diameter" (side of its bounding box) as a fraction of the image side:
# ~14 px and ~24 px at 64 px. Four large objects still fit in a 2x2 arrangement.
SIZES: dict[str, float] = {"small": 0.21875, "large": 0.375}

POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
KINDS: tuple[str, ...] = ("single", "position", "count", "relation")

# Caption vocabulary (closed). The first entry of each list is the canonical word.
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
NUMBER_WORDS: dict[int, str] = {2: "two", 3: "three", 4: "four"}
POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "near the top", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "at the bottom of the image"),
    "centre": ("in the centre", "in the center", "in the middle"),
}
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "on top of"),
    "below": ("below", "beneath", "under"),
}
# "{a}" is the article ("a"/"an") and "{c}" the background colour name.
BACKGROUND_PHRASES: tuple[str, ...] = (
    " on {a} {c} background",
    " against {a} {c} background",
    ", {c} background",
    ", on {a} {c} background",
    " with {a} {c} background",
)

# --------------------------------------------------------------------------- layout rules
# All in fractions of the image side.
EDGE_PAD = 0.04  # gap between an object's bounding box and the image edge
GAP = 0.08  # min gap between two objects' boxes: >2 px at 32 px, so they never touch
SINGLE_JITTER = 0.12  # "single" objects sit within +-this of the image centre
CENTRE_JITTER = 0.05  # "centre" position objects sit within +-this of the centre
REGION_OFFSET = 0.20  # "left"/"top"/... objects are at least this far from the centre
REGION_CROSS = 0.08  # ... and within +-this of the centre line across the region
RELATION_MIN = 0.25  # relation: centres at least this far apart along the relation axis
RELATION_SLOPE = 0.4  # relation: |cross-axis offset| <= this * along-axis offset

SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    """One flat shape; ``x``, ``y`` are its centre in fractions (0..1) of the image side."""

    shape: str
    colour: str
    size: str
    x: float
    y: float


@dataclass(frozen=True)
class Scene:
    """A background plus objects, with the caption that describes them."""

    objects: tuple[SceneObject, ...]
    background: str
    kind: str  # "single" | "position" | "count" | "relation"
    caption: str
    position: str | None = None  # for kind "position"
    relation: str | None = None  # for kind "relation": objects[0] <relation> objects[1]


# --------------------------------------------------------------------------- geometry


@lru_cache(maxsize=None)
def _unit_outline(shape: str) -> np.ndarray:
    """Polygon (N, 2) of ``shape`` with a bounding box of side 1 centred on (0, 0), y down."""
    if shape == "circle":
        t = np.linspace(0.0, 2 * np.pi, 96, endpoint=False)
        return np.stack([0.5 * np.cos(t), 0.5 * np.sin(t)], axis=1)
    if shape == "square":
        return np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    if shape == "triangle":
        # Isosceles, apex up, filling its box like the square does.
        return np.array([[0.0, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    if shape == "star":
        # Five points; inner radius 0.45 of the outer keeps the arms thick enough to
        # survive rasterising a 7 px star at 32 px.
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 0.5, 0.5 * 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    raise GenimgError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def shape_outline(shape: str, cx: float, cy: float, diameter: float, angle: float = 0.0) -> np.ndarray:
    """Return the (N, 2) polygon of ``shape`` centred at (cx, cy), ``diameter`` wide, rotated by
    ``angle`` radians (clockwise on screen). Units are whatever the caller uses (pixels here).

    Raises GenimgError for an unknown shape.
    """
    pts = _unit_outline(shape) * diameter
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        pts = pts @ np.array([[c, s], [-s, c]])
    return pts + np.array([cx, cy])


def polygon_area_centroid(pts: np.ndarray) -> tuple[float, float, float]:
    """Return (area, centroid_x, centroid_y) of a simple polygon (shoelace formula)."""
    x, y = pts[:, 0], pts[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    gx = ((x + xn) * cross).sum() / (6.0 * area)
    gy = ((y + yn) * cross).sum() / (6.0 * area)
    return abs(area), gx, gy


def _fill_polygon(pts: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of pixels whose centres ``(j + 0.5, i + 0.5)`` lie inside
    the simple polygon ``pts`` (even-odd rule), by a vectorised scanline fill."""
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    ys = np.arange(height)[:, None] + 0.5
    # Half-open edge spans so a scanline through a vertex counts it exactly once.
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    crosses = (ys >= lo) & (ys < hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
    xc = np.sort(np.where(crosses, xc, np.inf), axis=1)
    # Keep only as many columns as the busiest scanline has crossings (rounded up to pairs).
    n = int(crosses.sum(axis=1).max(initial=0))
    xc = xc[:, : n + n % 2]
    starts, ends = xc[:, 0::2], xc[:, 1::2]
    # Pixel j is inside a span [s, e) when s <= j + 0.5 < e (no span: both are inf).
    centres = np.arange(width) + 0.5
    inside = np.zeros((height, width), dtype=bool)
    for k in range(starts.shape[1]):
        inside |= (centres >= starts[:, k, None]) & (centres < ends[:, k, None])
    return inside


def shape_alpha(
    shape: str,
    cx: float,
    cy: float,
    diameter: float,
    width: int,
    height: int,
    angle: float = 0.0,
    supersample: int = SUPERSAMPLE,
) -> np.ndarray:
    """Coverage (float32 ``(height, width)``, 0..1) of one shape drawn on a pixel grid.

    ``cx``, ``cy``, ``diameter`` are in pixels; pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``.
    The shape is filled on a ``supersample``-times finer grid and box-averaged, so the
    result is the area coverage up to the supersampling. The evaluator renders its shape
    templates with this same function, so templates match our renders exactly.
    Raises GenimgError for an unknown shape.
    """
    ss = supersample
    fine = _fill_polygon(shape_outline(shape, cx, cy, diameter, angle) * ss, height * ss, width * ss)
    return fine.reshape(height, ss, width, ss).mean(axis=(1, 3), dtype=np.float32)


# --------------------------------------------------------------------------- sampling


def _choice(rng: np.random.Generator, options):
    """Pick one element of a sequence with a single ``rng.integers`` draw."""
    return options[int(rng.integers(len(options)))]


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * rng.random())


def free_position(rng: np.random.Generator, size: str, placed, tries: int = 64):
    """A random centre (x, y) for a ``size`` object inside the image whose bounding box is at
    least GAP away from those of the objects in ``placed``; None if none of ``tries``
    candidates works (they are drawn at once: vectorised rejection sampling).
    """
    r = SIZES[size] / 2
    lo, hi = r + EDGE_PAD, 1 - r - EDGE_PAD
    xs = lo + (hi - lo) * rng.random(tries)
    ys = lo + (hi - lo) * rng.random(tries)
    ok = np.ones(tries, dtype=bool)
    for p in placed:
        need = (SIZES[size] + SIZES[p.size]) / 2 + GAP
        ok &= (np.abs(xs - p.x) >= need) | (np.abs(ys - p.y) >= need)
    hits = np.flatnonzero(ok)
    if hits.size == 0:
        return None
    return float(xs[hits[0]]), float(ys[hits[0]])


def region_centre(rng: np.random.Generator, position: str, size: str) -> tuple[float, float]:
    """A random centre (x, y) for a ``size`` object in the named region (one of POSITIONS):
    within CENTRE_JITTER of the middle for "centre", else at least REGION_OFFSET out from
    the middle along the region's axis and within REGION_CROSS across it, inside the image.
    """
    if position == "centre":
        return 0.5 + _uniform(rng, -CENTRE_JITTER, CENTRE_JITTER), 0.5 + _uniform(rng, -CENTRE_JITTER, CENTRE_JITTER)
    far = 0.5 - SIZES[size] / 2 - EDGE_PAD  # largest offset from the centre that stays inside
    along = _uniform(rng, REGION_OFFSET, far)
    cross = 0.5 + _uniform(rng, -REGION_CROSS, REGION_CROSS)
    if position == "left":
        return 0.5 - along, cross
    if position == "right":
        return 0.5 + along, cross
    if position == "top":
        return cross, 0.5 - along
    return cross, 0.5 + along  # bottom


def relation_axes(dx, dy, relation: str):
    """(along, cross) offsets of b from a (``dx = b.x - a.x``, ``dy = b.y - a.y``) for
    ``relation``: ``along > 0`` when "a <relation> b" points the right way.

    Raises GenimgError for an unknown relation.
    """
    # Image y grows downwards, so "a above b" means b.y - a.y > 0.
    if relation == "left of":
        return dx, dy
    if relation == "right of":
        return -dx, dy
    if relation == "above":
        return dy, dx
    if relation == "below":
        return -dy, dx
    raise GenimgError(f"unknown relation {relation!r}; expected one of {', '.join(RELATIONS)}")


def relation_holds(a: SceneObject, b: SceneObject, relation: str) -> bool:
    """True if ``a <relation> b`` holds with the grammar's unambiguity margins."""
    along, cross = relation_axes(b.x - a.x, b.y - a.y, relation)
    return along >= RELATION_MIN and abs(cross) <= RELATION_SLOPE * along


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _object_phrase(rng: np.random.Generator, obj: SceneObject, count: int, with_size: bool) -> str:
    words = []
    if with_size:
        words.append(_choice(rng, SIZE_WORDS[obj.size]))
    words += [obj.colour, obj.shape + ("s" if count > 1 else "")]
    if count > 1:
        return f"{NUMBER_WORDS[count]} " + " ".join(words)
    return f"{_article(words[0])} " + " ".join(words)


def _caption(rng: np.random.Generator, kind, objects, background, position, relation) -> str:
    """Compose a caption; the rng picks phrasing (size mention, synonyms, background wording)."""
    with_size = rng.random() < 0.75
    if kind == "count":
        text = _object_phrase(rng, objects[0], len(objects), with_size)
    elif kind == "relation":
        a = _object_phrase(rng, objects[0], 1, with_size)
        b = _object_phrase(rng, objects[1], 1, with_size)
        text = f"{a} {_choice(rng, RELATION_PHRASES[relation])} {b}"
    else:
        text = _object_phrase(rng, objects[0], 1, with_size)
        if kind == "position":
            text += " " + _choice(rng, POSITION_PHRASES[position])
    # The background is mentioned in most captions; leaving it out sometimes teaches
    # the model (and tests the evaluator on) prompts that do not constrain it.
    if rng.random() < 0.85:
        text += _choice(rng, BACKGROUND_PHRASES).format(a=_article(background), c=background)
    return text


def compose_scene(
    rng: np.random.Generator,
    kind: str,
    shape: str | None = None,
    colour: str | None = None,
    position: str | None = None,
    relation: str | None = None,
    count: int | None = None,
) -> Scene:
    """Sample one scene of ``kind``; optional arguments pin parts of it (balanced sets, references)."""
    shape = shape or _choice(rng, SHAPES)
    colour = colour or _choice(rng, COLOUR_NAMES)
    size = _choice(rng, tuple(SIZES))
    objects: list[SceneObject]

    if kind == "single":
        x = 0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER)
        y = 0.5 + _uniform(rng, -SINGLE_JITTER, SINGLE_JITTER)
        objects = [SceneObject(shape, colour, size, x, y)]
    elif kind == "position":
        position = position or _choice(rng, POSITIONS)
        objects = [SceneObject(shape, colour, size, *region_centre(rng, position, size))]
    elif kind == "count":
        count = count or int(rng.integers(2, 5))
        while True:  # sequential rejection sampling; restart if the layout got stuck
            objects = []
            for _ in range(count):
                spot = free_position(rng, size, objects)
                if spot is None:
                    break
                objects.append(SceneObject(shape, colour, size, *spot))
            if len(objects) == count:
                break
    elif kind == "relation":
        relation = relation or _choice(rng, RELATIONS)
        while True:  # second object must differ in colour or shape, so the prompt is unambiguous
            shape_b, colour_b = _choice(rng, SHAPES), _choice(rng, COLOUR_NAMES)
            if (shape_b, colour_b) != (shape, colour):
                break
        size_b = _choice(rng, tuple(SIZES))
        a = b = None
        while a is None:  # vectorised rejection sampling of (a, b) centre pairs
            ra, rb = SIZES[size] / 2 + EDGE_PAD, SIZES[size_b] / 2 + EDGE_PAD
            ax, ay = (ra + (1 - 2 * ra) * rng.random(64) for _ in range(2))
            bx, by = (rb + (1 - 2 * rb) * rng.random(64) for _ in range(2))
            need = (SIZES[size] + SIZES[size_b]) / 2 + GAP
            apart = (np.abs(ax - bx) >= need) | (np.abs(ay - by) >= need)
            along, cross = relation_axes(bx - ax, by - ay, relation)
            hits = np.flatnonzero(apart & (along >= RELATION_MIN) & (np.abs(cross) <= RELATION_SLOPE * along))
            if hits.size:
                i = hits[0]
                a = SceneObject(shape, colour, size, float(ax[i]), float(ay[i]))
                b = SceneObject(shape_b, colour_b, size_b, float(bx[i]), float(by[i]))
        objects = [a, b]
    else:
        raise GenimgError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")

    used = {o.colour for o in objects}
    background = _choice(rng, tuple(c for c in COLOUR_NAMES if c not in used))
    caption = _caption(rng, kind, objects, background, position, relation)
    return Scene(tuple(objects), background, kind, caption, position, relation)


def sample_scene(rng: np.random.Generator, kind: str | None = None) -> Scene:
    """Draw a random scene (of ``kind``, or a uniformly random kind) from ``rng``.

    Raises GenimgError for an unknown kind.
    """
    if kind is None:
        kind = _choice(rng, KINDS)
    return compose_scene(rng, kind)


def scene_for_seed(seed: int, kind: str | None = None) -> Scene:
    """The scene for ``seed`` (and ``kind``); identical on every run and machine.

    Raises GenimgError for an unknown kind or a negative seed.
    """
    if kind is not None and kind not in KINDS:
        raise GenimgError(f"unknown scene kind {kind!r}; expected one of {', '.join(KINDS)}")
    if seed < 0:
        raise GenimgError(f"scene seed must be non-negative, got {seed}")
    # The kind is part of the seed so that e.g. scene_for_seed(3, "count") is not a
    # re-labelled copy of the stream behind scene_for_seed(3).
    kind_code = 0 if kind is None else 1 + KINDS.index(kind)
    return sample_scene(np.random.default_rng([int(seed), kind_code]), kind)


# --------------------------------------------------------------------------- rendering


def render(scene: Scene, size: int = 64) -> Image.Image:
    """Render ``scene`` as an anti-aliased RGB ``size`` x ``size`` PIL image.

    Raises GenimgError if ``size`` is below 16 pixels.
    """
    if size < 16:
        raise GenimgError(f"render size must be at least 16 pixels, got {size}")
    canvas = np.empty((size, size, 3), dtype=np.float32)
    canvas[:] = COLOURS[scene.background]
    for obj in scene.objects:
        cx, cy, d = obj.x * size, obj.y * size, SIZES[obj.size] * size
        # Draw only the object's bounding box (integer-aligned, so the supersampling grid
        # matches a full-canvas draw exactly).
        x0, y0 = max(0, int(np.floor(cx - d / 2)) - 1), max(0, int(np.floor(cy - d / 2)) - 1)
        x1, y1 = min(size, int(np.ceil(cx + d / 2)) + 1), min(size, int(np.ceil(cy + d / 2)) + 1)
        a = shape_alpha(obj.shape, cx - x0, cy - y0, d, x1 - x0, y1 - y0)[..., None]
        patch = canvas[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1] = patch * (1 - a) + np.asarray(COLOURS[obj.colour], dtype=np.float32) * a
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), mode="RGB")


def make_dataset(n: int, seed: int, size: int = 64) -> tuple[np.ndarray, list[str]]:
    """``n`` random scenes from ``seed``: (uint8 images ``(n, size, size, 3)``, captions).

    Deterministic in (n, seed, size); the first k items do not depend on n.
    Raises GenimgError if ``n`` or ``seed`` is negative.
    """
    if n < 0 or seed < 0:
        raise GenimgError(f"dataset size and seed must be non-negative, got n={n}, seed={seed}")
    # A second seed word keeps dataset streams apart from scene_for_seed's.
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        scene = sample_scene(rng)
        images[i] = np.asarray(render(scene, size))
        captions.append(scene.caption)
    return images, captions


@lru_cache(maxsize=1)
def _eval_prompt_set() -> tuple[Scene, ...]:
    rng = np.random.default_rng(20240611)
    scenes = []
    # 20 single: each shape 5 times, colours cycling so each colour appears 2-3 times.
    for i in range(20):
        scenes.append(compose_scene(rng, "single", shape=SHAPES[i % 4], colour=COLOUR_NAMES[(i + i // 4) % 8]))
    # 10 position: each region twice.
    for i in range(10):
        scenes.append(compose_scene(rng, "position", shape=SHAPES[(i + 1) % 4], position=POSITIONS[i % 5]))
    # 18 count: 2, 3 and 4 objects six times each.
    for i in range(18):
        scenes.append(compose_scene(rng, "count", shape=SHAPES[(i + 2) % 4], count=2 + i % 3))
    # 16 relation: each relation four times.
    for i in range(16):
        scenes.append(compose_scene(rng, "relation", shape=SHAPES[(i + 3) % 4], relation=RELATIONS[i % 4]))
    return tuple(scenes)


def eval_prompt_set() -> list[Scene]:
    """The fixed evaluation prompts: 64 scenes (20 single, 10 position, 18 count, 16 relation).

    Identical on every run and machine; render them with :func:`render` for ground truth.
    """
    return list(_eval_prompt_set())

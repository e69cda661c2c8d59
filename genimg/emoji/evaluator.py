"""The emoji world's evaluator: classical vision only, no generator's features.

:func:`detect` reads the background from the image border (nearest named colour), finds the
emoji as connected blobs of pixels that differ from it (merged over small gaps, since a glyph
can have separate parts), and names each blob by nearest-template matching against the
vocabulary's own glyphs, composited on the same background at the blob's crop (32 x 32 RGB
plus the crop's aspect ratio). :func:`score_image` checks an image against a caption
(background, emoji, count, size, position, relation, skin tone); :func:`evaluate` scores sets;
:func:`validate` measures the evaluator itself on ground-truth, contradicting and degraded renders.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from genimg.emoji import grammar
from genimg.emoji.grammar import BACKGROUNDS, KINDS, POSITIONS, SIZES, EmojiObject, Scene
from genimg.emoji.prompts import PromptSpec, parse_prompt, spec_for_scene
from genimg.emoji.vocabulary import glyph, lookup, vocabulary
from genimg.errors import GenimgError
from genimg.scenes.evaluator import region_of as scene_region_of

CHECKS: tuple[str, ...] = ("background", "emoji", "count", "size", "position", "relation", "skin_tone")
TEMPLATE = 32  # side of the crops compared
SMOOTH = 1.0  # Gaussian sigma (template pixels) applied to templates and crops alike
EDGE_ALPHA = 0.38  # a template's box: pixels at least this opaque
DIFF_THRESH = 48  # a pixel is foreground when a channel differs from the background by more
BG_MAX_DIST = 70.0  # border colour farther than this (RGB) from every named background: none
MERGE = 0.045  # blobs closer than this (fraction of the side) are one emoji
MIN_AREA = 0.0012  # foreground smaller than this (fraction of the area) is noise
SIZE_SPLIT = (SIZES["small"] + SIZES["large"]) / 2
ASPECT_WEIGHT = 0.02
POSITION_THRESH, CENTRE_THRESH, RELATION_THRESH = 0.14, 0.12, 0.12
MIN_SIDE = 64


@dataclass(frozen=True)
class DetectedEmoji:
    """One blob: the emoji it matches best, its centre (fractions), longest side (fraction), match distance."""

    char: str
    x: float
    y: float
    extent: float
    distance: float

    @property
    def size(self) -> str:
        return "small" if self.extent < SIZE_SPLIT else "large"


@dataclass(frozen=True)
class Detection:
    """The background name (None when the border is no named colour) and the emoji found."""

    background: str | None
    objects: tuple[DetectedEmoji, ...]


def _as_rgb(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"))
    elif isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
        arr = image
    else:
        raise GenimgError("image must be a PIL image or an (H, W, 3) uint8 array")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise GenimgError(f"image is {arr.shape[1]}x{arr.shape[0]} px; the emoji evaluator needs at least "
                          f"{MIN_SIDE}x{MIN_SIDE}")
    return arr.astype(np.float32)


def _smooth(arr: np.ndarray) -> np.ndarray:
    """A Gaussian blur over the two spatial axes of a template-sized array: matching compares
    shapes and colours, not the last pixel of detail, so blurred or JPEG-compressed images
    still match their emoji."""
    return ndimage.gaussian_filter(arr, sigma=(SMOOTH, SMOOTH, 0), mode="nearest")


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(chars, premultiplied RGB (N, T*T, 3) in 0..255, alpha (N, T*T, 1), log aspect (N,))."""
    chars, rgbs, alphas, aspects = [], [], [], []
    for e in vocabulary():
        g = glyph(e.char)
        box = g.getchannel("A").point(lambda a: 255 if a > EDGE_ALPHA * 255 else 0).getbbox() or (0, 0, *g.size)
        crop = g.crop(box)
        arr = np.asarray(crop.resize((TEMPLATE, TEMPLATE), Image.Resampling.BOX), dtype=np.float32)
        a = arr[..., 3:] / 255.0
        chars.append(e.char)
        # Blurring is linear, so blurring the premultiplied colour and the alpha blurs the
        # template on any background the same way as the crops are blurred.
        rgbs.append(_smooth(arr[..., :3] * a).reshape(-1, 3))
        alphas.append(_smooth(a).reshape(-1, 1))
        aspects.append(np.log(crop.width / crop.height))
    return (tuple(chars), np.stack(rgbs).astype(np.float32), np.stack(alphas).astype(np.float32),
            np.array(aspects, dtype=np.float32))


@lru_cache(maxsize=1)
def _p_sq() -> np.ndarray:
    P = _templates()[1]
    return (P.reshape(len(P), -1) ** 2).sum(axis=1)


def detect(image) -> Detection:
    """Find the background and the emoji in ``image`` (PIL or (H, W, 3) uint8, >= 64 px a side).

    Raises GenimgError for anything else.
    """
    rgb = _as_rgb(image)
    h, w = rgb.shape[:2]
    side = max(h, w)
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                             rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    names = list(BACKGROUNDS)
    dists = [float(np.linalg.norm(bg_rgb - np.array(BACKGROUNDS[n]))) for n in names]
    background = names[int(np.argmin(dists))] if min(dists) <= BG_MAX_DIST else None

    diff = np.abs(rgb - bg_rgb).max(axis=2)
    mask = diff > DIFF_THRESH
    # The crop's box uses the templates' edge (alpha > 0.38): OpenMoji outlines are black, so
    # that is a difference of 0.38 * max(bg). A blurred halo stays outside it.
    edge = diff > max(DIFF_THRESH, EDGE_ALPHA * float(bg_rgb.max()))
    r = max(1, round(MERGE * side / 2))
    merged = ndimage.binary_dilation(mask, structure=np.ones((2 * r + 1, 2 * r + 1), bool))
    labels, n = ndimage.label(merged)
    chars, P, A, aspects = _templates()
    # Squared distance to every template composited on this background, T = P + (1 - A) * bg,
    # expanded (|T|^2 - 2 T.v + |v|^2) so no (N, T*T, 3) array is built per image.
    B = 1.0 - A[..., 0]  # (N, T*T)
    bg = bg_rgb.astype(np.float32)
    t_sq = _p_sq() + 2.0 * (B * (P @ bg)).sum(axis=1) + float(bg @ bg) * (B * B).sum(axis=1)
    found = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        part = mask[sl] & (labels[sl] == k)
        if part.sum() < MIN_AREA * h * w:
            continue
        core = part & edge[sl]
        ys, xs = np.nonzero(core if core.sum() >= 0.5 * part.sum() else part)
        y0, y1 = sl[0].start + ys.min(), sl[0].start + ys.max() + 1
        x0, x1 = sl[1].start + xs.min(), sl[1].start + xs.max() + 1
        crop = Image.fromarray(rgb[y0:y1, x0:x1].astype(np.uint8)).resize((TEMPLATE, TEMPLATE), Image.Resampling.BOX)
        v = _smooth(np.asarray(crop, dtype=np.float32)).reshape(-1, 3)
        t_dot_v = P.reshape(len(chars), -1) @ v.reshape(-1) + B @ (v @ bg)
        mse = np.maximum(t_sq - 2.0 * t_dot_v + float((v * v).sum()), 0.0) / (v.size * 255.0**2)
        score = mse + ASPECT_WEIGHT * (aspects - np.log((x1 - x0) / (y1 - y0))) ** 2
        best = int(np.argmin(score))
        found.append(DetectedEmoji(chars[best], (x0 + x1) / 2 / w, (y0 + y1) / 2 / h,
                                   max(x1 - x0, y1 - y0) / side, float(score[best])))
    return Detection(background, tuple(found))


def region_of(x: float, y: float) -> str | None:
    """The grammar position (left/right/top/bottom/centre) of a centre, or None if ambiguous (emoji thresholds)."""
    return scene_region_of(x, y, POSITION_THRESH, CENTRE_THRESH)


def score_detection(det: Detection, spec: PromptSpec) -> dict[str, bool | None]:
    """Check a :class:`Detection` against a :class:`PromptSpec`; see :func:`score_image`."""
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)
    objs = det.objects
    if spec.background is not None:
        out["background"] = det.background == spec.background
    out["count"] = len(objs) == sum(o.count for o in spec.objects)
    matched = []  # for each asked emoji, the detections that are it
    for o in spec.objects:
        matched.append([d for d in objs if d.char == o.char])
    out["emoji"] = all(len(m) >= 1 for m in matched) and all(d.char in {o.char for o in spec.objects} for d in objs)
    sizes = [(o.size, m) for o, m in zip(spec.objects, matched) if o.size is not None]
    if sizes:
        out["size"] = all(m and all(d.size == size for d in m) for size, m in sizes)
    if spec.kind == "position":
        out["position"] = bool(matched[0]) and region_of(matched[0][0].x, matched[0][0].y) == spec.position
    if spec.kind == "relation":
        ok = bool(matched[0] and matched[1])
        if ok:
            a, b = matched[0][0], matched[1][0]
            along, across = grammar.relation_axes(b.x - a.x, b.y - a.y, spec.relation)
            ok = along >= RELATION_THRESH and along > abs(across)
        out["relation"] = ok
    toned = [o for o in spec.objects if lookup(o.char).tone]
    if toned:
        tones = {lookup(d.char).tone for d in objs}
        out["skin_tone"] = all(lookup(o.char).tone in tones for o in toned)
    out = {k: None if v is None else bool(v) for k, v in out.items()}  # plain bools, not numpy's
    out["all"] = all(v for v in out.values() if v is not None)
    return out


def score_image(image, prompt: str) -> dict[str, bool | None]:
    """Check one image against one caption of the emoji world.

    Returns ``{"background", "emoji", "count", "size", "position", "relation", "skin_tone", "all"}``:
    True/False, or None where the prompt does not ask it; "emoji" fails when an asked emoji is
    missing or an unasked one is present, "count" when the number of emoji differs.
    Raises GenimgError for a prompt outside the emoji world or a bad image.
    """
    return score_detection(detect(image), parse_prompt(prompt))


def evaluate(images, prompts) -> dict:
    """Score parallel lists of images and captions: ``{"n", "accuracy": {check: rate}, "per_kind": {...}}``.

    Raises GenimgError when the lists differ in length or are empty.
    """
    images, prompts = list(images), list(prompts)
    if not images or len(images) != len(prompts):
        raise GenimgError(f"need as many images as prompts (got {len(images)} images, {len(prompts)} prompts)")
    rows = [(parse_prompt(p).kind, score_image(im, p)) for im, p in zip(images, prompts)]
    return {"n": len(rows), "accuracy": _rates([r for _, r in rows]),
            "per_kind": {k: _rates([r for kind, r in rows if kind == k]) for k in KINDS if any(kd == k for kd, _ in rows)}}


def _rates(rows) -> dict[str, float]:
    out = {}
    for check in (*CHECKS, "all"):
        vals = [r[check] for r in rows if r[check] is not None]
        if vals:
            out[check] = float(np.mean(vals))
    return out


# --------------------------------------------------------------------------- validation

DEGRADATIONS: tuple[str, ...] = ("blur", "noise", "jpeg", "downscale")


def degrade(image: Image.Image, how: str, rng: np.random.Generator) -> Image.Image:
    """``image`` degraded: Gaussian blur (radius 1), noise (sigma 8), JPEG (quality 40) or downscale to 3/4."""
    if how == "blur":
        return image.filter(ImageFilter.GaussianBlur(1.0))
    if how == "noise":
        arr = np.asarray(image, dtype=np.float32) + rng.normal(0.0, 8.0, (image.height, image.width, 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if how == "jpeg":
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=40)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if how == "downscale":
        return image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.BILINEAR)
    raise GenimgError(f"unknown degradation {how!r}; expected one of {', '.join(DEGRADATIONS)}")


def mismatched_scene(scene: Scene, what: str, rng: np.random.Generator) -> Scene | None:
    """A scene that contradicts ``scene``'s caption in one respect, or None where ``what`` does not apply.

    ``what``: "emoji" (another emoji), "count" (one more or one fewer), "position" (another
    region), "background" (another colour).
    """
    objs = list(scene.objects)
    if what == "emoji":
        other = scene.objects[0].char
        while other in {o.char for o in objs}:
            other = vocabulary()[int(rng.integers(len(vocabulary())))].char
        objs = [replace(o, char=other) if o.char == scene.objects[0].char else o for o in objs]
        return replace(scene, objects=tuple(objs))
    if what == "background":
        names = [n for n in BACKGROUNDS if n != scene.background]
        return replace(scene, background=names[int(rng.integers(len(names)))])
    if what == "position":
        if scene.kind != "position":
            return None
        pos = [p for p in POSITIONS if p != scene.position][int(rng.integers(len(POSITIONS) - 1))]
        fresh = grammar.compose_scene(rng, "position", scene.objects[0].char, position=pos)
        return replace(scene, objects=(replace(fresh.objects[0], size=scene.objects[0].size),))
    if what == "count":
        if scene.kind not in ("single", "count"):
            return None
        if scene.kind == "count" and len(objs) == 3:
            return replace(scene, objects=tuple(objs[:2]))
        small = [replace(o, size="small") for o in objs]
        for _ in range(50):
            x, y = 0.15 + 0.7 * rng.random(), 0.15 + 0.7 * rng.random()
            if grammar._apart(x, y, "small", small):  # noqa: SLF001 - the grammar's own spacing rule
                return replace(scene, objects=(*small, EmojiObject(objs[0].char, "small", x, y)))
        return None
    raise GenimgError(f"unknown mismatch {what!r}")


def validate(n_random: int = 300, size: int = 128, seed: int = 0) -> dict:
    """Measure the evaluator on ``n_random`` seeded scenes plus the faces subset.

    Returns ``{"ground_truth": rate of scenes whose every check passes, "checks": per-check rates,
    "faces": rate on face scenes, "faces_skin_tone": skin tone right on the toned ones,
    "rejection": {what: rate of contradicting renders rejected},
    "degraded": {how: ground-truth rate on degraded renders}, "n": ...}``.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    scenes = [grammar.sample_scene(rng) for _ in range(n_random)]
    face_scenes = [grammar.sample_scene(rng, "single", faces_only=True) for _ in range(max(20, n_random // 5))]
    renders = [grammar.render(s, size) for s in scenes]
    rows = [score_detection(detect(im), spec_for_scene(s)) for im, s in zip(renders, scenes)]
    faces = [score_detection(detect(grammar.render(s, size)), spec_for_scene(s)) for s in face_scenes]
    rejection = {}
    for what in ("emoji", "count", "position", "background"):
        hits = []
        for s in scenes:
            bad = mismatched_scene(s, what, rng)
            if bad is not None:
                hits.append(not score_detection(detect(grammar.render(bad, size)), spec_for_scene(s))["all"])
        rejection[what] = float(np.mean(hits)) if hits else None
    degraded = {}
    for how in DEGRADATIONS:
        ok = [score_detection(detect(degrade(im, how, rng)), spec_for_scene(s))["all"]
              for im, s in zip(renders[: n_random // 2], scenes)]
        degraded[how] = float(np.mean(ok))
    rates = _rates(rows)
    return {"n": n_random, "size": size, "ground_truth": rates["all"], "checks": rates,
            "faces": float(np.mean([r["all"] for r in faces])),
            "faces_skin_tone": float(np.mean([r["skin_tone"] for r in faces if r["skin_tone"] is not None])),
            "rejection": rejection, "degraded": degraded}


# --------------------------------------------------------------------------- training metrics

SCORE_SIDE = 128  # images are scored at this side (the evaluator's validated size; smaller ones bilinearly up)


def faithfulness_metrics(images_u8, scenes) -> dict:
    """The headline figures of an emoji model's card, from uint8 (H, W, 3) images and their scenes.

    Images smaller than :data:`SCORE_SIDE` are scaled up bilinearly first (a 64 px model's
    output, as the Generate tab shows it). Returns ``{"single_emoji", "single_background",
    "single_all", "relation_all", "faces_emoji_tone", "all", "checks", "kinds"}``: the goals'
    rates (None where the set has no such scene), every check's rate and each kind's
    all-right rate. Raises GenimgError for a caption outside the emoji world.
    """
    from genimg.emoji.vocabulary import faces

    face_chars = {e.char for e in faces()}
    rows = []
    for image, scene in zip(images_u8, scenes):
        im = Image.fromarray(np.asarray(image, dtype=np.uint8))
        if im.width < SCORE_SIDE:
            im = im.resize((SCORE_SIDE, SCORE_SIDE), Image.Resampling.BILINEAR)
        rows.append((scene, score_detection(detect(im), parse_prompt(scene.caption))))

    def rate(values):  # over the images where the check applies (None: the caption does not ask it)
        values = [bool(v) for v in values if v is not None]
        return float(np.mean(values)) if values else None

    singles = [r for s, r in rows if s.kind == "single"]
    faces_rows = [r for s, r in rows if s.kind == "single" and s.objects[0].char in face_chars]
    return {
        "single_emoji": rate(r["emoji"] for r in singles),
        "single_background": rate(r["background"] for r in singles),
        "single_all": rate(r["all"] for r in singles),
        "relation_all": rate(r["all"] for s, r in rows if s.kind == "relation"),
        "faces_emoji_tone": rate(bool(r["emoji"]) and r["skin_tone"] is not False for r in faces_rows),
        "all": rate(r["all"] for _, r in rows),
        "checks": _rates([r for _, r in rows]),
        "kinds": {k: _rates([r for s, r in rows if s.kind == k])["all"] for k in KINDS if any(s.kind == k for s, _ in rows)},
    }


def training_scenes(per_kind: int = 24, singles_every: int = 4) -> list[Scene]:
    """A stratified part of :func:`eval_prompt_set` for evaluations during training (the whole set is 687
    prompts): every ``singles_every``-th single emoji (all subgroups, faces included) and the first
    ``per_kind`` position, count and relation scenes."""
    from genimg.emoji.grammar import eval_prompt_set

    scenes = eval_prompt_set()
    singles = [s for s in scenes if s.kind == "single"]
    out = singles[::singles_every]
    for kind in ("position", "count", "relation"):
        out += [s for s in scenes if s.kind == kind][:per_kind]
    return out

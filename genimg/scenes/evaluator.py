"""Prompt-faithfulness evaluation for the scene grammar (GenEval-style), classical vision only.

:func:`score_image` parses a caption (:mod:`genimg.scenes.prompts`), finds the background
and the objects in the image (:mod:`genimg.scenes.detection`) and checks each thing the
caption asks: background, colour, shape, size, count, position, relation.
:func:`evaluate` aggregates that over a set of images, :func:`faithfulness_metrics` adds
the headline figures the embedded models' cards report, and :func:`validate` measures the
evaluator itself: accuracy on ground-truth renders and the rejection rate on renders that
contradict their caption (:func:`mismatched_scene`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.detection import DetectedObject, detect
from genimg.scenes.grammar import COLOUR_NAMES, KINDS, POSITIONS, SHAPES, SIZES, Scene
from genimg.scenes.prompts import parse_prompt

CHECKS: tuple[str, ...] = ("background", "colour", "shape", "size", "count", "position", "relation")

# Position: centroid at least this far from the centre along the named axis and farther
# along it than across it (the grammar places region objects >= 0.20 out, <= 0.08 across).
POSITION_THRESH = 0.12
CENTRE_THRESH = 0.12  # |dx|, |dy| below this is the centre (grammar: <= 0.05)
# Relation: centres at least this far apart along the relation axis, and more along than
# across (the grammar uses >= 0.25 along and |across| <= 0.4 * along).
RELATION_THRESH = 0.10


def region_of(x: float, y: float, position_thresh: float = POSITION_THRESH,
              centre_thresh: float = CENTRE_THRESH) -> str | None:
    """The grammar position (left/right/top/bottom/centre) of a centroid, or None if ambiguous.

    ``x``, ``y`` are fractions of the image side; the thresholds default to this grammar's
    (the emoji world passes its own).
    """
    dx, dy = x - 0.5, y - 0.5
    if abs(dx) < centre_thresh and abs(dy) < centre_thresh:
        return "centre"
    if abs(dx) >= position_thresh and abs(dx) > abs(dy):
        return "left" if dx < 0 else "right"
    if abs(dy) >= position_thresh and abs(dy) > abs(dx):
        return "top" if dy < 0 else "bottom"
    return None


def _relation_true(a: DetectedObject, b: DetectedObject, relation: str) -> bool:
    """True if detected ``a <relation> b``: clearly offset along the axis, more than across."""
    along, across = grammar.relation_axes(b.x - a.x, b.y - a.y, relation)
    return along >= RELATION_THRESH and along > abs(across)


def score_image(image, prompt: str) -> dict[str, bool | None]:
    """Check one image against one prompt of the scene grammar.

    Takes a PIL image or uint8 (H, W, 3) array (>= 32x32) and a caption. Returns
    ``{"background", "colour", "shape", "size", "count", "position", "relation", "all"}``:
    each True/False, or None when the prompt does not ask it; "all" is True when every
    asked check is. "count" also fails when the image holds objects the prompt did not ask
    for. Raises GenimgError for a prompt outside the grammar or a bad image.
    """
    spec = parse_prompt(prompt)
    found = detect(image)
    objs = found.objects

    colour_ok, shape_ok, size_ok, count_ok, matches = [], [], [], [], []
    for want in spec.objects:
        same_colour = [o for o in objs if o.colour == want.colour]
        hits = [o for o in same_colour if o.shape == want.shape]
        matches.append(hits)
        colour_ok.append(bool(same_colour))
        shape_ok.append(bool(hits))
        if want.size is not None:
            size_ok.append(bool(hits) and all(o.size == want.size for o in hits))
        count_ok.append(len(hits) == want.count)

    result: dict[str, bool | None] = dict.fromkeys(CHECKS)
    if spec.background is not None:
        result["background"] = found.background == spec.background
    result["colour"] = all(colour_ok)
    result["shape"] = all(shape_ok)
    result["size"] = all(size_ok) if size_ok else None
    # Exact count of each asked object and nothing else in the picture.
    result["count"] = all(count_ok) and len(objs) == sum(o.count for o in spec.objects)
    if spec.position is not None:
        result["position"] = any(region_of(o.x, o.y) == spec.position for o in matches[0])
    if spec.relation is not None:
        result["relation"] = any(_relation_true(a, b, spec.relation) for a in matches[0] for b in matches[1])
    result["all"] = all(v for k, v in result.items() if k != "all" and v is not None)
    return result


def evaluate(images, prompts) -> dict:
    """Score many images against their prompts.

    Takes a sequence of images (PIL or uint8 arrays, or one uint8 (N, H, W, 3) array) and
    an equally long sequence of prompts. Returns ``{"n", "all", "checks", "kinds",
    "n_checks", "n_kinds"}``: "all" is the fraction of images passing every asked check;
    "checks"[name] the accuracy of each check over the images whose prompt asks it (None if
    none does); "kinds"[kind] the "all" accuracy per prompt kind; the "n_" entries the
    counts behind them. Raises GenimgError for mismatched lengths, an empty set, bad
    images or prompts.
    """
    images, prompts = list(images), list(prompts)
    if len(images) != len(prompts):
        raise GenimgError(f"got {len(images)} images but {len(prompts)} prompts; they must pair up")
    if not images:
        raise GenimgError("nothing to evaluate: no images given")
    per_check = {c: [] for c in CHECKS}
    per_kind = {k: [] for k in KINDS}
    overall = []
    for image, prompt in zip(images, prompts):
        scores = score_image(image, prompt)
        for c in CHECKS:
            if scores[c] is not None:
                per_check[c].append(scores[c])
        per_kind[parse_prompt(prompt).kind].append(scores["all"])
        overall.append(scores["all"])

    def mean(xs):
        return float(np.mean(xs)) if xs else None

    return {
        "n": len(overall),
        "all": mean(overall),
        "checks": {c: mean(v) for c, v in per_check.items()},
        "kinds": {k: mean(v) for k, v in per_kind.items()},
        "n_checks": {c: len(v) for c, v in per_check.items()},
        "n_kinds": {k: len(v) for k, v in per_kind.items()},
    }


def faithfulness_metrics(images_u8, scenes) -> dict:
    """The evaluator's accuracies plus the headline figures of the embedded models' cards.

    Takes uint8 (H, W, 3) images and the grammar scenes they were asked for (same order).
    Returns ``{"single_colour_bg", "single_colour_bg_shape", "relation", "relation_all",
    "all", "checks", "kinds"}``: the first four over the single-object / relation scenes
    (None when the set has none), the rest as :func:`evaluate` gives them. Raises
    GenimgError as :func:`evaluate` does.
    """
    prompts = [s.caption for s in scenes]
    summary = evaluate(list(images_u8), prompts)
    cb, cbs, rel, rel_all = [], [], [], []
    for im, sc in zip(images_u8, scenes):
        r = score_image(im, sc.caption)
        ok_bg = r["background"] is not False
        if sc.kind == "single":
            cb.append(bool(r["colour"]) and ok_bg)
            cbs.append(bool(r["colour"]) and ok_bg and bool(r["shape"]))
        if sc.kind == "relation":
            rel.append(bool(r["relation"]))
            rel_all.append(bool(r["all"]))
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return {
        "single_colour_bg": mean(cb),
        "single_colour_bg_shape": mean(cbs),
        "relation": mean(rel),
        "relation_all": mean(rel_all),
        "all": summary["all"],
        "checks": summary["checks"],
        "kinds": summary["kinds"],
    }


# ---------------------------------------------------------------------------- validation

MISMATCHES: tuple[str, ...] = ("shape", "colour", "count", "relation", "position", "background")


def _clamped(obj):
    """``obj`` moved (if need be) so that it lies inside the image with the grammar's edge pad."""
    lo = SIZES[obj.size] / 2 + grammar.EDGE_PAD
    return replace(obj, x=min(max(obj.x, lo), 1 - lo), y=min(max(obj.y, lo), 1 - lo))


def mismatched_scene(scene: Scene, what: str, rng: np.random.Generator) -> Scene | None:
    """A copy of ``scene`` (keeping its caption) that contradicts the caption in one respect.

    ``what`` is one of MISMATCHES. Returns None when it does not apply to this scene (e.g.
    "relation" for a count scene, "background" when the caption leaves it open).
    """
    objs = list(scene.objects)
    first = objs[0]
    # The objects the caption calls objects[0] (all of them for a count scene).
    targets = range(len(objs)) if scene.kind == "count" else [0]
    used = {o.colour for o in objs} | {scene.background}

    if what == "shape":
        other = [s for s in SHAPES if s != first.shape]
        new = other[int(rng.integers(len(other)))]
        for i in targets:
            objs[i] = replace(objs[i], shape=new)
    elif what == "colour":
        free = [c for c in COLOUR_NAMES if c not in used]
        new = free[int(rng.integers(len(free)))]
        for i in targets:
            objs[i] = replace(objs[i], colour=new)
    elif what == "count":
        if scene.kind == "count" and (len(objs) == 4 or rng.random() < 0.5):
            objs.pop(int(rng.integers(len(objs))))
        else:
            # One more copy; a small one if a big one does not fit (a large single object
            # near the centre leaves no room for another large one).
            for size in (first.size, "small"):
                spot = grammar.free_position(rng, size, objs, tries=256)
                if spot is not None:
                    objs.append(replace(first, size=size, x=spot[0], y=spot[1]))
                    break
            else:
                return None
    elif what == "relation":
        if scene.kind != "relation":
            return None
        a, b = objs
        # Swap the centres (clamped so a large object moved to a small one's spot near
        # the edge stays inside the image).
        objs = [_clamped(replace(a, x=b.x, y=b.y)), _clamped(replace(b, x=a.x, y=a.y))]
    elif what == "position":
        if scene.kind != "position":
            return None
        opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
        if scene.position == "centre":
            target = POSITIONS[int(rng.integers(4))]
        else:
            target = opposite[scene.position]
        objs[0] = replace(first, **dict(zip("xy", grammar.region_centre(rng, target, first.size))))
    elif what == "background":
        if parse_prompt(scene.caption).background is None:
            return None
        free = [c for c in COLOUR_NAMES if c not in used]
        return replace(scene, background=free[int(rng.integers(len(free)))])
    else:
        raise GenimgError(f"unknown mismatch {what!r}; expected one of {', '.join(MISMATCHES)}")
    return replace(scene, objects=tuple(objs))


def validate(n_random: int = 500, size: int = 64) -> dict:
    """Validate the evaluator on ground-truth renders of the grammar.

    Renders :func:`grammar.eval_prompt_set` and ``scene_for_seed(0 .. n_random-1)`` at
    ``size`` px. Returns ``{"size", "eval_set", "random", "rejection", "n_rejection"}``:
    "eval_set" and "random" are :func:`evaluate` results on true renders (should be ~1.0;
    "random" is None when ``n_random`` is 0); "rejection"[what] is the fraction of renders
    contradicting their caption in one respect (see :func:`mismatched_scene`; made for
    every scene of both sets) that the evaluator rejects ("all" False), with
    "rejection"["overall"] across all of them (should be ~1.0). Deterministic.
    Raises GenimgError for a negative ``n_random`` or a ``size`` below 32.
    """
    if n_random < 0:
        raise GenimgError(f"n_random must be non-negative, got {n_random}")
    if size < 32:
        raise GenimgError(f"the evaluator needs images of at least 32 px, got size {size}")
    eval_scenes = grammar.eval_prompt_set()
    random_scenes = [grammar.scene_for_seed(i) for i in range(n_random)]

    def run(scenes):
        if not scenes:
            return None
        return evaluate([grammar.render(s, size) for s in scenes], [s.caption for s in scenes])

    rng = np.random.default_rng(7)
    rejected = {what: [] for what in MISMATCHES}
    for scene in eval_scenes + random_scenes:
        for what in MISMATCHES:
            bad = mismatched_scene(scene, what, rng)
            if bad is not None:
                rejected[what].append(not score_image(grammar.render(bad, size), scene.caption)["all"])
    everything = [r for rs in rejected.values() for r in rs]
    rejection = {what: (float(np.mean(r)) if r else None) for what, r in rejected.items()}
    rejection["overall"] = float(np.mean(everything))
    return {
        "size": size,
        "eval_set": run(eval_scenes),
        "random": run(random_scenes),
        "rejection": rejection,
        "n_rejection": {**{w: len(r) for w, r in rejected.items()}, "overall": len(everything)},
    }

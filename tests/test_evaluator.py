"""The classical-vision prompt-faithfulness evaluator on ground truth and on mismatches."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from genimg.errors import GenimgError
from genimg.scenes import evaluator, grammar
from genimg.scenes.detection import detect
from genimg.scenes.evaluator import evaluate, mismatched_scene, score_image, validate
from genimg.scenes.grammar import COLOURS, Scene, SceneObject, render, scene_for_seed
from genimg.scenes.prompts import ObjectSpec, PromptSpec, parse_prompt

# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "prompt, expected",
    [
        (
            "a small red circle on a blue background",
            PromptSpec((ObjectSpec("circle", "red", "small", 1),), "blue", "single"),
        ),
        (
            "Two large yellow stars on a black background.",
            PromptSpec((ObjectSpec("star", "yellow", "large", 2),), "black", "count"),
        ),
        (
            "a green square to the left of a purple triangle, white background",
            PromptSpec(
                (ObjectSpec("square", "green", None, 1), ObjectSpec("triangle", "purple", None, 1)),
                "white",
                "relation",
                relation="left of",
            ),
        ),
        (
            "an orange triangle at the top, on a green background",
            PromptSpec((ObjectSpec("triangle", "orange", None, 1),), "green", "position", position="top"),
        ),
        (
            "three small blue squares against a white background",
            PromptSpec((ObjectSpec("square", "blue", "small", 3),), "white", "count"),
        ),
        ("a large purple star", PromptSpec((ObjectSpec("star", "purple", "large", 1),), None, "single")),
        (
            "a big white circle in the center",
            PromptSpec((ObjectSpec("circle", "white", "large", 1),), None, "position", position="centre"),
        ),
        (
            "a red star on top of a red square with a black background",
            PromptSpec(
                (ObjectSpec("star", "red", None, 1), ObjectSpec("square", "red", None, 1)),
                "black",
                "relation",
                relation="above",
            ),
        ),
        (
            "a little blue circle beneath a yellow star",
            PromptSpec(
                (ObjectSpec("circle", "blue", "small", 1), ObjectSpec("star", "yellow", None, 1)),
                None,
                "relation",
                relation="below",
            ),
        ),
    ],
)
def test_parse_prompt(prompt, expected):
    assert parse_prompt(prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "a photo of a cat",
        "",
        "a red circle on a red background",  # object colour = background colour
        "two red circle",  # number disagreement
        "a red circles",
        "five red circles",
        "a grey circle",
        "a red hexagon",
        "two red circles to the left of a blue square",  # relations are between single objects
        "a red circle left of a red circle",  # ambiguous relation
        "a red circle on the left of the picture",
    ],
)
def test_prompts_outside_the_grammar_raise(prompt):
    with pytest.raises(GenimgError, match="prompt is outside the scene grammar"):
        parse_prompt(prompt)


def test_score_image_rejects_bad_input():
    image = render(scene_for_seed(0))
    with pytest.raises(GenimgError, match="outside the scene grammar"):
        score_image(image, "a photo of a cat")
    with pytest.raises(GenimgError, match="at least 32x32"):
        score_image(render(scene_for_seed(0), 16), scene_for_seed(0).caption)
    with pytest.raises(GenimgError, match="uint8"):
        score_image(np.asarray(image, dtype=np.float32) / 255, scene_for_seed(0).caption)
    with pytest.raises(GenimgError, match="PIL image or a numpy array"):
        score_image("image.png", scene_for_seed(0).caption)
    with pytest.raises(GenimgError, match="pair up"):
        evaluate([image, image], ["a red circle"])


# ---------------------------------------------------------------------------- ground truth


def _renders(scenes, size):
    return [render(s, size) for s in scenes], [s.caption for s in scenes]


@pytest.mark.parametrize("size", [64, 32])
def test_accurate_on_ground_truth_renders(size):
    scenes = [scene_for_seed(i) for i in range(150)]
    result = evaluate(*_renders(scenes, size))
    assert result["n"] == 150
    assert result["all"] >= 0.98, result
    for check, accuracy in result["checks"].items():
        assert accuracy is not None and accuracy >= 0.98, (check, result)
    assert all(result["n_kinds"][k] > 20 for k in grammar.KINDS)


def test_detect_recovers_the_scene():
    for seed in range(40):
        scene = scene_for_seed(seed)
        found = detect(render(scene, 64))
        assert found.background == scene.background
        truth = sorted((o.colour, o.shape, o.size) for o in scene.objects)
        assert sorted((o.colour, o.shape, o.size) for o in found.objects) == truth, scene.caption
        for o in scene.objects:  # every object is found at its true centroid
            outline = grammar.shape_outline(o.shape, o.x, o.y, grammar.SIZES[o.size])
            _, gx, gy = grammar.polygon_area_centroid(outline)
            assert min(np.hypot(d.x - gx, d.y - gy) for d in found.objects) < 0.01, (scene.caption, o)


def test_score_marks_unasked_checks_none():
    scene = Scene((SceneObject("star", "red", "large", 0.5, 0.5),), "blue", "single", "a red star")
    scores = score_image(render(scene), "a red star")
    assert scores == {
        "background": None,
        "colour": True,
        "shape": True,
        "size": None,
        "count": True,
        "position": None,
        "relation": None,
        "all": True,
    }
    # The same picture against a prompt asking for more.
    scores = score_image(render(scene), "a small red star on the left on a green background")
    assert scores["background"] is False and scores["size"] is False and scores["position"] is False
    assert scores["colour"] and scores["shape"] and scores["all"] is False


def test_array_input_and_other_resolutions():
    scene = scene_for_seed(11)
    for size in (32, 48, 128):
        image = render(scene, size)
        assert score_image(np.asarray(image), scene.caption)["all"], size
    # An RGBA image is fine too.
    assert score_image(render(scene, 64).convert("RGBA"), scene.caption)["all"]


# ---------------------------------------------------------------------------- not lenient


def test_rejects_renders_that_contradict_the_caption():
    """At 64 px here; validate() below covers 32 px."""
    size = 64
    rng = np.random.default_rng(1)
    rejected, failed_check = [], []
    for seed in range(30):
        scene = scene_for_seed(seed)
        for what in evaluator.MISMATCHES:
            bad = mismatched_scene(scene, what, rng)
            if bad is None:
                continue
            scores = score_image(render(bad, size), scene.caption)
            rejected.append(not scores["all"])
            # The check that matches the contradiction is the one that fails.
            failed_check.append(scores[what] is False)
    assert len(rejected) > 100
    assert np.mean(rejected) >= 0.95
    assert np.mean(failed_check) >= 0.95


def _draw(shape_fn, size=64, colour="red", background="white"):
    """Render a non-grammar shape with PIL at 4x and box-downsample (independent of grammar)."""
    big = Image.new("RGB", (4 * size, 4 * size), COLOURS[background])
    shape_fn(ImageDraw.Draw(big), 4 * size)
    return big.resize((size, size), Image.Resampling.BOX)


def test_blobs_are_not_stars_or_squares():
    blobs = {
        "ellipse": lambda d, s: d.ellipse([0.3 * s, 0.4 * s, 0.7 * s, 0.62 * s], fill=COLOURS["red"]),
        "wide rectangle": lambda d, s: d.rectangle([0.3 * s, 0.42 * s, 0.7 * s, 0.58 * s], fill=COLOURS["red"]),
        "cross": lambda d, s: (
            d.rectangle([0.35 * s, 0.46 * s, 0.65 * s, 0.54 * s], fill=COLOURS["red"]),
            d.rectangle([0.46 * s, 0.35 * s, 0.54 * s, 0.65 * s], fill=COLOURS["red"]),
        ),
        "two-lobed blob": lambda d, s: (
            d.ellipse([0.35 * s, 0.4 * s, 0.52 * s, 0.6 * s], fill=COLOURS["red"]),
            d.ellipse([0.46 * s, 0.42 * s, 0.65 * s, 0.58 * s], fill=COLOURS["red"]),
        ),
    }
    for name, fn in blobs.items():
        for size in (64, 32):
            (found,) = detect(_draw(fn, size)).objects
            assert found.colour == "red"
            assert found.shape not in ("star", "square"), (name, size, found)
            assert not score_image(_draw(fn, size), "a red star")["all"]
            assert not score_image(_draw(fn, size), "a red square")["all"]


@pytest.mark.parametrize("size", [64, 32])
def test_off_palette_colour_is_no_palette_colour(size):
    """A mid-grey disc on white is a circle of no palette colour (not "black")."""
    a = grammar.shape_alpha("circle", size / 2, size / 2, 0.375 * size, size, size)[..., None]
    image = np.rint(np.full(3, 255.0) * (1 - a) + np.full(3, 128.0) * a).astype(np.uint8)
    (found,) = detect(image).objects
    assert found.colour is None and found.shape == "circle"
    assert not score_image(image, "a black circle")["all"]
    assert not score_image(image, "a white circle")["all"]


# ---------------------------------------------------------------------------- tolerance


def test_tolerates_blur_noise_and_colour_cast():
    """Generated images are soft, noisy and a little off-palette; ground truth degraded so
    must still pass."""
    rng = np.random.default_rng(0)
    passed = []
    for seed in range(40):
        scene = scene_for_seed(seed)
        px = np.asarray(render(scene, 64)).astype(float) + rng.uniform(-15, 15, 3)
        px = ndimage.gaussian_filter(px, (0.7, 0.7, 0)) + rng.normal(0, 4, px.shape)
        passed.append(score_image(np.clip(np.rint(px), 0, 255).astype(np.uint8), scene.caption)["all"])
    assert np.mean(passed) >= 0.95


def test_touching_objects_of_different_colours_are_split():
    for size in (64, 32):
        a = SceneObject("square", "red", "large", 0.35, 0.5)
        b = SceneObject("circle", "blue", "large", 0.35 + grammar.SIZES["large"], 0.5)  # boxes touch
        scene = Scene((a, b), "white", "relation", "a red square to the left of a blue circle")
        found = detect(render(scene, size)).objects
        assert sorted((o.colour, o.shape) for o in found) == [("blue", "circle"), ("red", "square")]
        assert score_image(render(scene, size), scene.caption)["all"]


def test_rotated_shapes_are_recognised():
    for shape in ("square", "triangle", "star"):
        for angle in (20.0, 35.0):
            outline = grammar.shape_outline(shape, 32.0, 32.0, 22.0, np.deg2rad(angle))
            img = _draw(lambda d, s, pts=outline: d.polygon([(4 * x, 4 * y) for x, y in pts], fill=COLOURS["blue"]))
            (found,) = detect(img).objects
            assert found.shape == shape, (shape, angle, found)


# ---------------------------------------------------------------------------- validate


def test_validate_reports_the_figures():
    """validate() on the eval prompt set alone, at 32 px (random scenes are covered above)."""
    report = validate(n_random=0, size=32)
    assert report["size"] == 32 and report["random"] is None
    assert report["eval_set"]["n"] == 64
    assert report["eval_set"]["all"] >= 0.98, report["eval_set"]
    assert set(report["eval_set"]["kinds"]) == set(grammar.KINDS)
    assert set(report["rejection"]) == set(evaluator.MISMATCHES) | {"overall"}
    assert report["n_rejection"]["overall"] > 200
    assert report["rejection"]["overall"] >= 0.95, report["rejection"]


def test_noisy_images_fit_at_most_max_shape_fits_objects(monkeypatch):
    """A speckled image (what an untrained model makes) is scored with a bounded number of shape fits."""
    from genimg.scenes import detection as E

    calls = []
    original = E._classify_shape
    monkeypatch.setattr(E, "_classify_shape", lambda *a, **k: calls.append(1) or original(*a, **k))
    image = np.full((64, 64, 3), 255, np.uint8)
    for y in range(6, 60, 12):  # 25 separate 5x5 red blobs on white, each above the speck size
        for x in range(6, 60, 12):
            image[y - 2:y + 3, x - 2:x + 3] = (230, 25, 25)
    det = E.detect(image)
    assert len(det.objects) > E.MAX_SHAPE_FITS  # the image really has more candidates than the budget
    assert len(calls) == E.MAX_SHAPE_FITS
    assert score_image(image, "a red circle on a white background")["all"] is False

"""The emoji world's classical-vision evaluator (genimg.emoji.evaluator): validated on renders.

The validation figures (ground truth, faces, rejection of contradicting renders, degraded
renders) are written to test-artifacts/emoji-evaluator-validation.json and quoted in
docs/emoji-world.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from genimg.emoji import grammar
from genimg.emoji.evaluator import DEGRADATIONS, degrade, detect, evaluate, score_image, validate
from genimg.emoji.grammar import BACKGROUNDS, EmojiObject, Scene, eval_prompt_set, render
from genimg.emoji.vocabulary import vocabulary
from genimg.errors import GenimgError

from .conftest import ARTIFACTS


@pytest.fixture(scope="module")
def validation():
    report = validate(n_random=160, size=128, seed=0)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "emoji-evaluator-validation.json").write_text(json.dumps(report, indent=1))
    return report


def test_ground_truth_renders_pass_every_check(validation):
    assert validation["ground_truth"] >= 0.98
    for check in ("background", "emoji", "count", "size", "position", "relation"):
        assert validation["checks"][check] >= 0.98, check
    assert validation["faces"] >= 0.95  # expression (which smiley), which person and skin tone
    assert validation["faces_skin_tone"] >= 0.98


def test_renders_that_contradict_their_caption_are_rejected(validation):
    for what, rate in validation["rejection"].items():
        assert rate is not None and rate >= 0.98, what


def test_degraded_renders_are_reported(validation):
    # Reported (docs/emoji-world.md); held to a floor so a regression shows.
    assert set(validation["degraded"]) == set(DEGRADATIONS)
    for how, rate in validation["degraded"].items():
        assert rate >= 0.85, how


def test_every_emoji_is_named_on_its_own_at_both_sizes():
    names, right = list(BACKGROUNDS), 0
    for i, e in enumerate(vocabulary()):
        for j, size in enumerate(("small", "large")):
            bg = names[(2 * i + j) % len(names)]
            det = detect(render(Scene((EmojiObject(e.char, size, 0.5, 0.5),), bg, "single", "x"), 128))
            right += (len(det.objects) == 1 and det.objects[0].char == e.char and det.objects[0].size == size
                      and det.background == bg)
    assert right / (2 * len(vocabulary())) >= 0.98


def test_the_evaluation_set_scores_as_its_captions_say():
    scenes = eval_prompt_set()[::4]
    report = evaluate([render(s) for s in scenes], [s.caption for s in scenes])
    assert report["n"] == len(scenes)
    assert report["accuracy"]["all"] >= 0.98
    assert set(report["per_kind"]) == set(grammar.KINDS)


def test_a_render_is_checked_against_what_the_caption_asks():
    cat_rocket = Scene((EmojiObject("🐈", "large", 0.27, 0.5), EmojiObject("🚀", "small", 0.77, 0.45)), "blue",
                       "relation", "", relation="left of")
    img = render(cat_rocket)
    assert score_image(img, "a big cat to the left of a small rocket on a blue background")["all"]
    wrong = {
        "a cat to the left of a helicopter on a blue background": "emoji",
        "a cat to the right of a rocket": "relation",
        "a cat to the left of a rocket on a pink background": "background",
        "a small cat to the left of a rocket": "size",
        "three cats": "count",
    }
    for prompt, check in wrong.items():
        result = score_image(img, prompt)
        assert result[check] is False and result["all"] is False, prompt
    assert score_image(img, "a cat to the left of a rocket")["background"] is None  # not asked

    face = render(Scene((EmojiObject("👩🏾", "large", 0.5, 0.2),), "green", "position", "", position="top"))
    assert score_image(face, "a woman with medium-dark skin tone at the top on a green background")["all"]
    other_tone = score_image(face, "a woman with light skin tone at the top")
    assert other_tone["skin_tone"] is False and other_tone["emoji"] is False
    assert score_image(face, "a woman with medium-dark skin tone at the bottom")["position"] is False
    assert score_image(face, "a grinning face")["skin_tone"] is None


def test_degradations_keep_the_image_size_apart_from_downscale():
    img = render(grammar.scene_for_seed(4))
    rng = np.random.Generator(np.random.PCG64(0))
    for how in DEGRADATIONS:
        out = degrade(img, how, rng)
        assert out.mode == "RGB" and out.size == ((96, 96) if how == "downscale" else (128, 128))
    with pytest.raises(GenimgError, match="unknown degradation"):
        degrade(img, "sepia", rng)


def test_bad_input_is_a_clear_error():
    with pytest.raises(GenimgError, match="at least 64x64"):
        detect(Image.new("RGB", (32, 32)))
    with pytest.raises(GenimgError, match="PIL image or an"):
        detect("cat.png")
    with pytest.raises(GenimgError, match="outside the emoji world"):
        score_image(render(grammar.scene_for_seed(1)), "a purple dinosaur")
    with pytest.raises(GenimgError, match="as many images as prompts"):
        evaluate([render(grammar.scene_for_seed(1))], [])

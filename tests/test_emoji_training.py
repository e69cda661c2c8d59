"""The emoji world's latent-diffusion training (``train emoji-diffusion``, measured, not shipped): the shared
trainer on the emoji world (plumbing on a tiny random-weight config), scored by the emoji evaluator, exported with the OpenMoji licence and vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genimg.errors import GenimgError


def test_the_worlds_registry_knows_both_worlds_and_refuses_a_second_registration():
    from genimg.training.worlds import WORLDS, get_world, register_world

    assert {"shapes", "emoji"} <= set(WORLDS)
    with pytest.raises(GenimgError, match="registered twice"):
        register_world(WORLDS["emoji"])
    with pytest.raises(GenimgError, match="unknown training world 'mars'; expected one of emoji, shapes"):
        get_world("mars")


def test_emoji_training_data_are_scenes_downsampled_to_the_model_size_with_their_captions():
    from genimg.emoji.prompts import parse_prompt
    from genimg.training.worlds import get_world

    images, captions = get_world("emoji").make_dataset(6, 0, 64)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8 and len(captions) == 6
    for caption in captions:
        parse_prompt(caption)  # every caption is inside the emoji world


def test_the_emoji_metrics_score_ground_truth_right_and_flat_colour_wrong():
    from genimg.emoji.evaluator import faithfulness_metrics, training_scenes
    from genimg.training.worlds import get_world

    scenes = training_scenes()
    assert len(scenes) == 97 + 3 * 24 and {s.kind for s in scenes} == {"single", "position", "count", "relation"}
    part = scenes[::6]
    truth = get_world("emoji").render_scenes(part, 64)
    good = faithfulness_metrics(list(truth), part)
    assert good["single_emoji"] >= 0.9 and good["single_background"] == 1.0 and good["all"] >= 0.85
    flat = np.zeros_like(truth) + np.array([255, 255, 255], dtype=np.uint8)
    bad = faithfulness_metrics(list(flat), part)
    assert bad["single_emoji"] == 0.0 and bad["all"] == 0.0


def test_train_emoji_runs_the_shared_loop_and_exports_a_card_with_licence_and_vocabulary(tmp_path):
    from genimg.emoji.vocabulary import vocabulary
    from genimg.training.diffusion import DiffusionTrainer, export
    from genimg.training.loop import fit

    trainer = DiffusionTrainer(steps=2, batch_size=4, config="tiny", n_data=8, vae_steps=2, eval_every=2,
                               eval_minutes=0, eval_steps=2, eval_limit=3, world="emoji", threads=1,
                               log=lambda *_: None)
    result = fit(trainer, tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert cfg["world"] == "emoji" and trainer.name == "emoji"
    evals = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert evals[-1]["step"] == 2 and {"single_emoji", "single_background", "faces_emoji_tone"} <= set(evals[-1])
    assert (tmp_path / "run" / "data" / "emoji_images_8_0_32.npy").exists()
    folder = export(result.checkpoint, tmp_path / "assets", log=lambda *_: None)
    card = json.loads((folder / "model_card.json").read_text())
    assert card["name"].startswith("genimg-emoji") and "CC BY-SA 4.0" in card["licence"]
    assert len(card["vocabulary"]) == len(vocabulary()) >= 150
    assert {"emoji", "name"} <= set(card["vocabulary"][0])
    assert card["reproduce"] == "python -m genimg train emoji-diffusion --export"
    assert card["train_config"]["run_dir"] == str(tmp_path / "run")
    from genimg.training.emoji import record_memorisation

    figures = record_memorisation(folder, n_scenes=3, log=lambda *_: None)
    assert figures["n"] == 3 and 0 < figures["generated"]["min"] <= figures["generated"]["median"] <= 1
    assert json.loads((folder / "model_card.json").read_text())["memorisation"]["n"] == 3


def test_train_emoji_diffusion_is_a_registered_trainer_with_its_own_defaults():
    from genimg.training import TRAINERS
    from genimg.training.diffusion import _parser

    assert {"emoji", "emoji-diffusion"} <= set(TRAINERS.names())
    args = _parser("python -m genimg train emoji-diffusion", out=__import__("pathlib").Path("runs/emoji"),
                   config="emoji").parse_args([])
    assert str(args.out) == "runs/emoji" and args.config == "emoji"


def test_nearest_distances_find_a_copy_and_measure_a_new_image():
    from genimg.training.evaluation import nearest_distances

    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    probe = np.stack([train[17], np.zeros((8, 8, 3), dtype=np.uint8), np.full((8, 8, 3), 255, np.uint8)])
    d = nearest_distances(probe, train, chunk=7)
    assert d[0] < 1e-3                                   # a copy of a training image
    brute = [min(np.sqrt(((p.astype(float) - t.astype(float)) ** 2).mean()) / 255 for t in train) for p in probe]
    assert np.allclose(d, brute, atol=1e-3)


def test_eval_minutes_zero_means_evaluate_by_steps_only():
    from genimg.training.diffusion import DiffusionTrainer

    # It once meant "every 0 seconds": an evaluation after every step.
    trainer = DiffusionTrainer(config="tiny", eval_every=1000, eval_minutes=0, world="emoji", log=lambda *_: None)
    assert trainer.cadence.eval_seconds is None and trainer.cadence.eval_every == 1000
    assert DiffusionTrainer(config="tiny", eval_every=1000, eval_minutes=5).cadence.eval_seconds == 300


def test_the_scene_sampler_balances_classes_and_keeps_first_lessons_until_the_curriculum_ends():
    from collections import Counter

    from genimg.training.diffusion import SceneSampler

    # Class "a" holds 90 % of the scenes; only scenes 0, 1 (a) and 95 (b) are first lessons.
    keys = ["a"] * 90 + ["b"] * 10
    firsts = [i in (0, 1, 95) for i in range(100)]
    sampler = SceneSampler(keys, firsts)
    gen = torch.Generator().manual_seed(0)
    uniform = Counter(keys[i] for i in sampler.draw(4000, gen, balanced=False, firsts=False).tolist())
    balanced = Counter(keys[i] for i in sampler.draw(4000, gen, balanced=True, firsts=False).tolist())
    assert uniform["b"] / 4000 < 0.15 and 0.45 < balanced["b"] / 4000 < 0.55
    lessons = sampler.draw(400, gen, balanced=True, firsts=True).tolist()
    assert set(lessons) == {0, 1, 95} and 0.4 < lessons.count(95) / 400 < 0.6  # balanced among first lessons too
    assert set(sampler.draw(100, gen, balanced=False, firsts=True).tolist()) <= {0, 1, 95}
    with pytest.raises(GenimgError, match="no first-lesson scenes"):
        SceneSampler(keys, [False] * 100).draw(4, gen, balanced=False, firsts=True)


def test_emoji_first_lessons_are_one_large_emoji_alone_and_the_card_names_the_curriculum(tmp_path):
    from genimg.emoji.grammar import dataset_scenes
    from genimg.training.diffusion import DiffusionTrainer, export
    from genimg.training.loop import fit
    from genimg.training.worlds import get_world

    keys, firsts = get_world("emoji").sampling_keys(60, 0)
    scenes = dataset_scenes(60, 0)
    assert keys == [s.objects[0].char for s in scenes]
    assert any(firsts) and all(s.kind == "single" and s.objects[0].size == "large"
                               for s, first in zip(scenes, firsts) if first)
    trainer = DiffusionTrainer(steps=2, batch_size=4, config="tiny", n_data=60, vae_steps=2, eval_every=0,
                               eval_minutes=0, world="emoji", threads=1, balanced=True, curriculum_steps=1,
                               log=lambda *_: None)
    result = fit(trainer, tmp_path / "run")
    assert (tmp_path / "run" / "data" / "sampling_emoji_60_0_32.json").exists()
    card = json.loads((export(result.checkpoint, tmp_path / "assets", log=lambda *_: None)
                       / "model_card.json").read_text())
    assert card["reproduce"] == "python -m genimg train emoji-diffusion --balanced --curriculum-steps 1 --export"
    assert "class-balanced" in card["data"] and "curriculum" in card["data"]
    with pytest.raises(GenimgError, match="no classes to balance"):
        DiffusionTrainer(config="tiny", world="shapes", balanced=True)

"""The GAN's fixes against collapse and shapeless blobs: minibatch standard deviation in the
discriminator, hard negative captions (same scene, other shapes), the mode-seeking term, lazy R1,
and their command-line options; the VAE's likelihood width on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def test_minibatch_std_is_zero_for_identical_images_and_positive_for_different_ones():
    from genimg.embedded.gan import minibatch_std

    same = torch.ones(8, 3, 4, 4)
    out = minibatch_std(same, 4)
    assert out.shape == (8, 4, 4, 4)
    assert torch.allclose(out[:, 3], torch.full((8, 4, 4), 1e-4), atol=1e-4)  # sqrt(0 + 1e-8)
    different = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert float(minibatch_std(different, 4)[:, 3].min()) > 0.5
    # A batch the group does not divide uses the largest divisor; a batch of one gets (almost) zero.
    assert minibatch_std(torch.randn(6, 2, 4, 4), 4).shape == (6, 3, 4, 4)
    assert float(minibatch_std(torch.randn(1, 2, 4, 4), 4)[:, 2].max()) < 1e-3


def test_the_discriminator_with_minibatch_std_scores_a_batch():
    from genimg.embedded.gan import CONFIGS, ProjectionDiscriminator

    D = ProjectionDiscriminator(**CONFIGS["tiny"]["discriminator"])
    assert D.mbstd_group == 4
    states, mask, pooled = torch.randn(4, 5, 384), torch.ones(4, 5, dtype=torch.long), torch.randn(4, 384)
    assert D(torch.randn(4, 3, 16, 16), states, mask, pooled).shape == (4,)


def test_hard_negatives_differ_from_their_caption_in_shape_only():
    from genimg.training.gan import hard_negative, shape_negative_groups

    captions = ["a red circle on a white background", "a red square on a white background",
                "a blue circle on a white background", "a red star on a black background",
                "a red triangle on a white background", "something the grammar never says"]
    groups, shapes = shape_negative_groups(captions)
    assert shapes[0] == ("circle",) and shapes[5] == ()
    assert sorted(groups[0]) == [0, 1, 4]        # same colour and background, any shape
    assert groups[2] == [2] and groups[3] == [3] and groups[5] == [5]
    gen = torch.Generator().manual_seed(0)
    picks = {hard_negative(0, groups, shapes, gen) for _ in range(40)}
    assert picks == {1, 4}                        # never itself (same shape), never another colour/background
    assert hard_negative(2, groups, shapes, gen) is None
    assert hard_negative(5, groups, shapes, gen) is None


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory):
    from genimg.training.gan import GanTrainer

    root = tmp_path_factory.mktemp("gan-fixes")
    trainer = GanTrainer(steps=2, batch_size=32, config="tiny", n_data=400, data_dir=root / "data", eval_minutes=0,
                         hard_negatives=1.0, mode_seeking=1.0, r1_gamma=1.0, r1_every=1, log=lambda *_: None)
    (root / "run").mkdir()
    trainer.setup(root / "run", None)
    return trainer


def test_a_gan_step_reports_the_mode_seeking_term_and_the_r1_penalty(tiny_gan):
    losses = tiny_gan.step(0)
    assert losses["mode_seeking"] > 0 and losses["r1"] > 0
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_the_hard_negative_rows_name_captions_of_the_same_scene_with_other_shapes(tiny_gan):
    from genimg.training.data import prepare_data

    _, captions = prepare_data(tiny_gan.data_dir, tiny_gan.n_data, tiny_gan.seed, 64, log=lambda *_: None)
    x, s_all, *_ = tiny_gan.batch(1)
    idx, rows = tiny_gan._batch_idx, tiny_gan._mismatch_rows
    n = tiny_gan.batch_size
    assert len(x) == n and len(s_all) >= n
    hard = [i for i in range(n) if rows[i] >= n]
    # Every image with a partner of the same colours/background/layout got one (hard_negatives=1.0).
    with_partner = [i for i in range(n)
                    if any(tiny_gan.shapes[j] != tiny_gan.shapes[int(idx[i])]
                           for j in tiny_gan.negative_groups[int(idx[i])])]
    assert hard and set(hard) <= set(with_partner)
    assert all(rows[i] == (i - 1) % n for i in range(n) if i not in hard)
    for i in hard:  # the appended caption is the partner's: same words but the shape
        j = next(j for j in tiny_gan.negative_groups[int(idx[i])] if torch.equal(tiny_gan.data[1][j].float(),
                                                                                   s_all[rows[i]]))
        assert tiny_gan.shapes[j] != tiny_gan.shapes[int(idx[i])]
        assert captions[j] != captions[int(idx[i])]


def test_shape_labels_are_multi_hot_over_the_grammar_shapes_and_unparsed_captions_carry_none():
    from genimg.scenes.grammar import SHAPES
    from genimg.training.gan import shape_negative_groups
    from genimg.training.shapes_aux import aux_bce, caption_shapes, shape_labels

    _, shapes = shape_negative_groups(["a red star on a white background", "a blue circle to the left of a green "
                                       "square on a black background", "something the grammar never says"])
    assert caption_shapes(["a red star on a white background", "a blue circle to the left of a green square on a "
                           "black background", "something the grammar never says"]) == shapes
    labels, known = shape_labels(shapes)
    assert labels.shape == (3, len(SHAPES)) and known.tolist() == [True, True, False]
    assert labels[0].tolist() == [float(name == "star") for name in SHAPES]
    assert labels[1].tolist() == [float(name in ("circle", "square")) for name in SHAPES]
    # The unparsed row does not count: a confident right answer on the known rows is a loss near 0.
    logits = (labels * 2 - 1) * 20
    logits[2] = 20.0
    assert float(aux_bce(logits, labels, known)) < 1e-6
    assert float(aux_bce(-logits, labels, known)) > 10


def test_the_shape_classifier_reads_each_batch_images_own_shapes_learns_first_and_resumes(tmp_path):
    from genimg.scenes.grammar import SHAPES
    from genimg.scenes.prompts import parse_prompt
    from genimg.training.data import prepare_data
    from genimg.training.gan import GanTrainer
    from genimg.training.loop import fit

    def trainer(steps, classifier_steps):
        return GanTrainer(steps=steps, batch_size=32, config="tiny", n_data=400, data_dir=tmp_path / "data",
                          eval_minutes=0, hard_negatives=0.0, shape_classifier=1.0, classifier_steps=classifier_steps,
                          log=lambda *_: None)

    probe = trainer(2, 0)
    (tmp_path / "probe").mkdir()
    probe.setup(tmp_path / "probe", None)
    cfg = json.loads((tmp_path / "probe" / "train_config.json").read_text())
    assert cfg["shape_classifier"] == 1.0 and cfg["arch"]["shape_classifier"]["classes"] == len(SHAPES)
    # The labels of a batch are its own captions' shapes.
    _, captions = prepare_data(probe.data_dir, probe.n_data, probe.seed, 64, log=lambda *_: None)
    probe.batch(3)
    for i in probe._batch_idx.tolist():
        names = {o.shape for o in parse_prompt(captions[i]).objects}
        assert probe.C.labels[i].tolist() == [float(name in names) for name in SHAPES]
    untrained = probe.C.accuracy()
    losses = probe.step(0)
    assert losses["aux_real"] > 0 and losses["aux_fake"] > 0

    # Learning first on real images alone lifts its label accuracy; a resumed run restores it (no new pretraining).
    first = trainer(1, 300)
    fit(first, tmp_path / "run")
    learned = first.C.accuracy()
    assert learned > untrained + 0.05 and learned > 0.6
    resumed = trainer(2, 300)
    fit(resumed, tmp_path / "run")
    assert abs(resumed.C.accuracy() - learned) < 0.1


def test_train_gan_and_vae_take_their_own_options_on_the_command_line(tmp_path):
    from genimg.training.gan import main as train_gan_main
    from genimg.training.vae import main as train_vae_main

    common = ["--steps", "1", "--batch-size", "4", "--config", "tiny", "--n-data", "8", "--data-dir",
              str(tmp_path / "data"), "--eval-minutes", "0", "--no-export"]
    train_gan_main(common + ["--out", str(tmp_path / "gan"), "--mode-seeking", "0.5", "--hard-negatives", "0",
                             "--r1-gamma", "0.1"])
    cfg = json.loads((tmp_path / "gan" / "train_config.json").read_text())
    assert (cfg["mode_seeking"], cfg["hard_negatives"], cfg["r1_gamma"]) == (0.5, 0, 0.1)
    train_vae_main(common + ["--out", str(tmp_path / "vae"), "--rec-sigma", "0.8"])
    assert json.loads((tmp_path / "vae" / "train_config.json").read_text())["rec_sigma"] == 0.8
    with pytest.raises(SystemExit):
        train_gan_main(common + ["--rec-sigma", "1"])  # a VAE option is not a GAN option


def test_the_vae_patch_discriminator_trains_from_its_start_step_and_resumes(tmp_path):
    from genimg.training.loop import fit
    from genimg.training.vae import VaeTrainer

    def trainer(steps):
        return VaeTrainer(steps=steps, batch_size=4, config="tiny", n_data=8, data_dir=tmp_path / "data",
                          eval_minutes=0, adv_weight=0.05, adv_start=1, log=lambda *_: None)

    t = trainer(2)
    (tmp_path / "probe").mkdir()
    t.setup(tmp_path / "probe", None)
    assert "d" not in t.step(0)                     # before adv_start: the plain ELBO
    losses = t.step(1)
    assert {"d", "adv"} <= set(losses) and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    result = fit(trainer(2), tmp_path / "run")
    assert (result.checkpoint / "patch_d.safetensors").exists()
    assert fit(trainer(3), tmp_path / "run").steps == 3  # resumes with the discriminator's state


def test_the_vae_shape_classifier_judges_prior_samples_from_its_start_step_and_resumes(tmp_path):
    from genimg.training.loop import fit
    from genimg.training.vae import VaeTrainer

    def trainer(steps, classifier_steps=300):
        return VaeTrainer(steps=steps, batch_size=32, config="tiny", n_data=400, data_dir=tmp_path / "data",
                          eval_minutes=0, adv_weight=0.0, shape_classifier=0.5, shape_start=1,
                          classifier_steps=classifier_steps, log=lambda *_: None)

    probe = trainer(2, 0)
    (tmp_path / "probe").mkdir()
    probe.setup(tmp_path / "probe", None)
    assert json.loads((tmp_path / "probe" / "train_config.json").read_text())["shape_start"] == 1
    assert "aux_fake" not in probe.step(0)          # before shape_start: the plain ELBO
    losses = probe.step(1)
    assert losses["aux_real"] > 0 and losses["aux_fake"] > 0
    untrained = probe.C.accuracy()
    first = trainer(2)
    result = fit(first, tmp_path / "run")
    assert (result.checkpoint / "shape_classifier.safetensors").exists()
    learned = first.C.accuracy()
    assert learned > untrained + 0.05
    resumed = trainer(3, classifier_steps=0)
    assert fit(resumed, tmp_path / "run").steps == 3
    assert abs(resumed.C.accuracy() - learned) < 0.1  # restored from the checkpoint, not relearnt


def test_the_generator_can_start_from_an_exported_vae_decoder(tmp_path):
    from genimg.embedded.cvae import ConditionalVAE, vae_config
    from genimg.embedded.gan import ConditionalGANGenerator, CONFIGS
    from genimg.errors import GenimgError
    from genimg.training.gan import init_from_vae

    vae = ConditionalVAE(**vae_config("default")["vae"])
    vae.save_pretrained(str(tmp_path / "vae"), safe_serialization=True)
    G = ConditionalGANGenerator(**CONFIGS["vae-shaped"]["generator"])
    init_from_vae(G, tmp_path)
    states, mask, pooled = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.long), torch.randn(2, 384)
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.allclose(G(z, states, mask, pooled), vae.decoder(z, vae.condition(states, mask, pooled)))
    with pytest.raises(GenimgError, match="--config vae-shaped"):
        init_from_vae(ConditionalGANGenerator(**CONFIGS["default"]["generator"]), tmp_path)


def test_the_card_says_how_to_reproduce_a_run_with_its_non_default_options():
    from genimg.training.onestep import reproduce_command

    assert reproduce_command("vae", {"steps": 16000, "rec_sigma": 1.0, "lr": 5e-4}) == "python -m genimg train vae"
    assert reproduce_command("vae", {"steps": 2500, "rec_sigma": 0.3}) == ("python -m genimg train vae --steps 2500 "
                                                                         "--rec-sigma 0.3")
    cfg = {"steps": 4000, "config": "vae-shaped", "mode_seeking": 0.05, "init_from": "assets/embedded/vae",
           "hard_negatives": 0.5, "seed": 0}
    # From the shipped VAE: its own recipe (its card's reproduce line) first.
    vae_recipe = json.loads(Path("assets/embedded/vae/model_card.json").read_text())["reproduce"]
    assert vae_recipe.startswith("python -m genimg train vae")
    assert reproduce_command("gan", cfg) == (f"{vae_recipe} && python -m genimg train gan --steps 4000 "
                                             "--config vae-shaped --mode-seeking 0.05 --init-from assets/embedded/vae")
    # The best checkpoint of a longer run: the command stops at its step; another VAE start is the user's own.
    cfg |= {"shape_classifier": 3.0, "init_from": "runs/my-vae"}
    assert reproduce_command("gan", cfg, step=500) == ("python -m genimg train gan --steps 500 --config vae-shaped "
                                                       "--mode-seeking 0.05 --init-from runs/my-vae "
                                                       "--shape-classifier 3.0")
    assert reproduce_command("gan", cfg, step=4000).startswith("python -m genimg train gan --steps 4000 ")


def test_near_duplicates_are_images_within_a_small_pixel_distance_of_another():
    import numpy as np

    from genimg.metrics.diversity import pixel_near_duplicate_rate as near_duplicate_rate

    base = np.zeros((4, 8, 8, 3), dtype=np.float32)
    base[1] += 0.01                  # RMS 0.01 from image 0: a near-duplicate pair
    base[2, :4] = 1.0                # far from everything
    base[3, :, :4] = 1.0
    assert near_duplicate_rate(base) == 0.5
    assert near_duplicate_rate(base, threshold=0.001) == 0.0


def test_during_the_discriminator_warm_up_only_the_discriminator_learns(tmp_path):
    from genimg.training.gan import GanTrainer

    t = GanTrainer(steps=3, batch_size=4, config="tiny", n_data=8, data_dir=tmp_path / "data", eval_minutes=0,
                   hard_negatives=0.0, d_warmup=1, log=lambda *_: None)
    (tmp_path / "run").mkdir()
    t.setup(tmp_path / "run", None)
    g0 = [p.detach().clone() for p in t.G.parameters()]
    d0 = [p.detach().clone() for p in t.D.parameters()]
    assert t.step(0)["g"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    t.step(1)  # after the warm-up the generator trains
    assert not all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))

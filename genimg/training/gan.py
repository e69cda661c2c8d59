"""Training of the embedded conditional GAN (``python -m genimg train gan``).

Hinge loss, a spectral-norm projection discriminator, an EMA of the generator (what ships).
The discriminator also sees real images with another sample's caption as fakes
(``mismatch_weight``; "matching-aware" D, Reed et al. 2016), which teaches it - and so the
generator - to check the caption, not only realism. Data, cadence, evaluation and export
are the one-step models' (:mod:`genimg.training.onestep`).

Against the collapse and the shapeless blobs of the first recipe (one image for every z,
shape right 0.00), measured per checkpoint (docs/training.md):

* ``hard_negatives``: that share of the mismatched captions is a *hard* one - a caption of
  the same scene but other shapes (same colours, background, counts, layout). Random
  mismatches almost always differ in colour or background, so D never had to look at shape.
* ``mode_seeking``: MSGAN's term (Mao et al. 2019): two z for one caption, the generator
  is penalised by 1 / (image distance / z distance), so it cannot ignore z.
* the discriminator's minibatch standard deviation (config ``mbstd_group``).
* ``r1_gamma``: lazy R1 gradient penalty on real images every ``r1_every`` steps (0: off).
* ``shape_classifier``: an auxiliary classifier (AC-GAN, Odena et al. 2017) learns from real images
  which shapes a scene holds; the generator is penalised (with this weight) when the classifier
  reads other shapes than the caption's in its image - a dense, per-image signal for the one thing
  the adversarial and matching losses let slide (:mod:`genimg.training.shapes_aux`). It is a small
  network of its own, not a head on D: measured, a head on the spectral-normed D's features was
  still at 0.75 label accuracy (all-absent: 0.70) after 400 steps. Training only: it is not the
  evaluator and does not ship.
* ``d_warmup``: the discriminator learns alone for that many steps, the generator held, so that a
  generator started from a VAE decoder is first judged by a critic that knows real images
  (measured: the shipped GAN, docs/training-tracking.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from genimg.training.checkpoints import load_optimizer_tensors, load_tensors, optimizer_tensors
from genimg.training.data import unit_batch
from genimg.training.ema import EMA
from genimg.training.loop import fit
from genimg.training.onestep import DATA_DIR, DEFAULTS, OneStepTrainer, run_cli
from genimg.training.registry import register_trainer
from genimg.training.shapes_aux import ShapeAux


class GanTrainer(OneStepTrainer):
    """The conditional GAN: generator G, projection discriminator D, EMA of G (shipped)."""

    name = "gan"

    def __init__(self, *, steps: int = DEFAULTS["gan"]["steps"], batch_size: int = DEFAULTS["gan"]["batch_size"],
                 lr: float = DEFAULTS["gan"]["lr"], seed: int = 0, config="default", n_data: int = 40000,
                 data_dir=DATA_DIR, mismatch_weight: float = 0.5, hard_negatives: float = 0.5,
                 mode_seeking: float = 0.0, r1_gamma: float = 0.0, r1_every: int = 4, init_from=None,
                 shape_classifier: float = 0.0, classifier_steps: int = 3000, d_warmup: int = 0,
                 ema_decay: float = 0.999,
                 eval_minutes: float = 10.0, eval_every: int = 0, eval_seeds=(0, 1), ckpt_minutes: float = 5.0,
                 threads: int = 1, log=print):
        from genimg.embedded.gan import gan_config

        from genimg.scenes.grammar import SHAPES

        arch = gan_config(config)
        if shape_classifier > 0:
            arch["shape_classifier"] = {"image_size": int(arch["discriminator"]["image_size"]),
                                        "classes": len(SHAPES)}
        extra = {"mismatch_weight": mismatch_weight, "hard_negatives": hard_negatives, "mode_seeking": mode_seeking,
                 "r1_gamma": r1_gamma, "r1_every": r1_every, "init_from": str(init_from) if init_from else None,
                 "shape_classifier": shape_classifier, "classifier_steps": classifier_steps, "d_warmup": d_warmup}
        super().__init__(arch, config, int(arch["generator"]["image_size"]), extra,
                         steps=steps, batch_size=batch_size, lr=lr, seed=seed, n_data=n_data, data_dir=data_dir,
                         ema_decay=ema_decay, eval_minutes=eval_minutes, eval_every=eval_every,
                         eval_seeds=eval_seeds, ckpt_minutes=ckpt_minutes, threads=threads, log=log)
        self.mismatch_weight, self.hard_negatives, self.mode_seeking = mismatch_weight, hard_negatives, mode_seeking
        self.r1_gamma, self.r1_every = r1_gamma, max(1, int(r1_every))
        self.init_from = Path(init_from) if init_from else None
        self.shape_classifier, self.classifier_steps = shape_classifier, int(classifier_steps)
        self.d_warmup = max(0, int(d_warmup))

    # Options of `python -m genimg train gan` beyond the shared ones: name -> (type, help).
    cli_options = {
        "mismatch_weight": (float, "weight of real images with a wrong caption among D's negatives"),
        "hard_negatives": (float, "share of those wrong captions that differ only in shape"),
        "mode_seeking": (float, "weight of the mode-seeking term (0: off)"),
        "r1_gamma": (float, "R1 penalty on real images (0: off)"),
        "r1_every": (int, "apply R1 every this many steps (lazy regularisation)"),
        "init_from": (str, "start the generator from this exported conditional VAE's decoder (config vae-shaped)"),
        "shape_classifier": (float, "weight of the auxiliary shape classifier's loss on the generator (0: off)"),
        "classifier_steps": (int, "steps that classifier first learns on real images alone, before the GAN's first"),
        "d_warmup": (int, "steps that only the discriminator trains, the generator held (a generator started from "
                          "a VAE meets a critic that already knows real images)"),
    }

    def build(self) -> None:
        """G, D, the EMA of G and one Adam per network (betas 0, 0.99)."""
        from genimg.embedded.gan import ConditionalGANGenerator, ProjectionDiscriminator, n_params

        self.G = self.network = ConditionalGANGenerator(**self.arch["generator"])
        if self.init_from is not None:
            init_from_vae(self.G, self.init_from)
            self.log(f"gan: generator starts from the VAE decoder in {self.init_from}")
        self.D = ProjectionDiscriminator(**self.arch["discriminator"])
        if self.hard_negatives > 0 or self.shape_classifier > 0:
            from genimg.training.data import prepare_data

            _, captions = prepare_data(Path(self.data_dir), self.n_data, self.seed, 64, log=self.log)
            self.negative_groups, self.shapes = shape_negative_groups(captions)
        self.C = ShapeAux(self.data, self.shapes, batch_size=self.batch_size, seed=self.seed) \
            if self.shape_classifier > 0 else None
        self.ema = EMA(self.G, decay=self.ema_decay)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=(0.0, 0.99))
        self.g_params, self.d_params = n_params(self.G), n_params(self.D)
        self.log(f"gan: G {self.g_params / 1e6:.2f}M, D {self.d_params / 1e6:.2f}M parameters; "
                 f"data {tuple(self.data[0].shape)}")
        self.G.train()
        self.D.train()

    def pipeline(self):
        """The GAN pipeline around the EMA generator."""
        from genimg.embedded.gan import build_gan_pipeline

        return build_gan_pipeline(self.ema.model, text_encoder=self.te, tokenizer=self.tok)

    def step(self, step: int) -> dict[str, float]:
        """One D step (hinge on real, fake and mismatched pairs), then one G step; returns the losses."""
        G, D, g, batch_size, mismatch_weight = self.G, self.D, self.g, self.batch_size, self.mismatch_weight
        x, s_all, m_all, p_all = self.batch(step)
        s, m, p = s_all[:batch_size], m_all[:batch_size], p_all[:batch_size]
        z_dim = G.config.z_dim
        perm = self._mismatch_rows  # the row of (s_all, m_all, p_all) whose caption each real image gets as a wrong pair
        with torch.no_grad():
            fake = G(torch.randn(batch_size, z_dim, generator=g), s, m, p)
        r1_step = self.r1_gamma > 0 and step % self.r1_every == 0
        if r1_step:
            x.requires_grad_(True)
        aux_loss = torch.zeros(())
        if self.C is not None:
            aux_loss = self.C.learn(x, self._batch_idx)
        d_real = D(x, s, m, p)
        d_fake = D(fake, s, m, p)
        d_mis = D(x, s_all[perm], m_all[perm], p_all[perm]) if mismatch_weight > 0 else d_fake.new_zeros(1)
        loss_d = (F.relu(1 - d_real).mean() + (1 - mismatch_weight) * F.relu(1 + d_fake).mean()
                  + mismatch_weight * F.relu(1 + d_mis).mean())
        r1 = torch.zeros(())
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), x, create_graph=True)
            r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
            loss_d = loss_d + 0.5 * self.r1_gamma * self.r1_every * r1
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        if step < self.d_warmup:  # the generator waits for a discriminator worth listening to
            return {"d": loss_d.item(), "g": 0.0, "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(),
                    "d_mismatch": d_mis.mean().item(), "d_margin": (d_real.mean() - d_fake.mean()).item(),
                    "mode_seeking": 0.0, "r1": r1.item(), "aux_real": aux_loss.item(), "aux_fake": 0.0}
        # Non-saturating hinge generator loss. With mode seeking, the second half of the batch repeats the first
        # half's captions with other z, and the pairs' image distance per z distance is pushed up.
        half = batch_size // 2
        rows = torch.cat([torch.arange(half), torch.arange(half)]) if self.mode_seeking > 0 and half else \
            torch.arange(batch_size)
        s, m, p = s[rows], m[rows], p[rows]
        z = torch.randn(len(rows), z_dim, generator=g)
        fake = G(z, s, m, p)
        loss_g = -D(fake, s, m, p).mean()
        aux_g = torch.zeros(())
        if self.C is not None:
            aux_g = self.C.generator_loss(fake, self._batch_idx[rows])
            loss_g = loss_g + self.shape_classifier * aux_g
        ms = torch.zeros(())
        if self.mode_seeking > 0 and half:
            ratio = ((fake[:half] - fake[half:]).abs().mean(dim=(1, 2, 3))
                     / (z[:half] - z[half:]).abs().mean(dim=1)).mean()
            ms = 1.0 / (ratio + 1e-5)
            loss_g = loss_g + self.mode_seeking * ms
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.ema.update(G, step)
        # d_margin = D(real) - D(fake): the generator/discriminator balance; it grows without bound when D
        # wins outright (G's gradients vanish), one of the roads to collapse.
        return {"d": loss_d.item(), "g": loss_g.item(), "d_real": d_real.mean().item(),
                "d_fake": d_fake.mean().item(), "d_mismatch": d_mis.mean().item(),
                "d_margin": (d_real.mean() - d_fake.mean()).item(), "mode_seeking": ms.item(), "r1": r1.item(),
                "aux_real": aux_loss.item(), "aux_fake": aux_g.item()}

    def batch(self, step: int):
        """The shared batch, plus the wrong caption pairs of the matching-aware discriminator.

        Sets ``_mismatch_rows``: for each image, the row whose caption it is shown with as a wrong pair -
        the next row (a shift within the batch), or, for a ``hard_negatives`` share of the images, a
        training caption that differs from its own only in shape (same colours, background, counts,
        layout), appended to the returned caption tensors after the batch's own rows.
        """
        x, s, m, p = super().batch(step)
        n = self.batch_size
        rows = torch.roll(torch.arange(n), 1)
        if self.hard_negatives > 0:
            idx = self._batch_idx
            gen = torch.Generator().manual_seed(self.seed * 7_919 + step)
            extra = []
            for i in range(n):
                if torch.rand((), generator=gen).item() >= self.hard_negatives:
                    continue
                j = hard_negative(int(idx[i]), self.negative_groups, self.shapes, gen)
                if j is not None:
                    rows[i] = n + len(extra)
                    extra.append(j)
            if extra:
                _, s2, m2, p2 = unit_batch(self.data, torch.tensor(extra))
                s, m, p = torch.cat([s, s2]), torch.cat([m, m2]), torch.cat([p, p2])
        self._mismatch_rows = rows
        return x, s, m, p

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """G, D, the EMA of G, both optimizers' moments (and the shape classifier with its optimizer)."""
        tensors = {"generator": self.G.state_dict(), "discriminator": self.D.state_dict(), "ema": self.ema.state_dict(),
                   "opt_g": optimizer_tensors(self.opt_g), "opt_d": optimizer_tensors(self.opt_d)}
        if self.C is not None:
            tensors |= self.C.tensors()
        return tensors

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore G, D, EMA and both optimizers from ``checkpoint``."""
        self.G.load_state_dict(load_tensors(checkpoint, "generator"))
        self.D.load_state_dict(load_tensors(checkpoint, "discriminator"))
        self.ema.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt_g, load_tensors(checkpoint, "opt_g"))
        load_optimizer_tensors(self.opt_d, load_tensors(checkpoint, "opt_d"))
        if self.C is not None:
            self.C.load(checkpoint)

    def state(self) -> dict[str, Any]:
        """Parameter counts and the seed, for the model card."""
        return {"g_params": self.g_params, "d_params": self.d_params, "seed": self.seed}


def init_from_vae(G, folder: Path) -> None:
    """Copy an exported conditional VAE's text conditioner and decoder into generator ``G`` (same shapes).

    A VAE decoder already draws the right colours and backgrounds (blurred); adversarial training
    then only has to sharpen it and learn to use z. Raises GenimgError when the shapes differ.
    """
    from genimg.embedded.cvae import ConditionalVAE
    from genimg.errors import GenimgError

    source = str(folder / "vae") if (folder / "vae").is_dir() else str(folder)
    vae = ConditionalVAE.from_pretrained(source, use_safetensors=True).float()
    for name in ("z_dim", "cond_dim", "text_queries", "image_size", "channels", "refine"):
        if list(np.atleast_1d(getattr(vae.config, name))) != list(np.atleast_1d(getattr(G.config, name))):
            raise GenimgError(f"the VAE in {folder} has {name} {getattr(vae.config, name)}, the generator "
                              f"{getattr(G.config, name)}: train the GAN with --config vae-shaped")
    G.text.load_state_dict(vae.text.state_dict())
    G.net.load_state_dict(vae.decoder.state_dict())


def shape_negative_groups(captions) -> tuple[list[list[int]], list[tuple]]:
    """Group training captions by everything but their shapes, for hard negatives.

    Returns (for each caption the list of indices of its group, for each caption its shapes).
    Captions the scene parser cannot read get a group of their own (no hard negative).
    """
    from genimg.errors import GenimgError
    from genimg.scenes.prompts import parse_prompt

    groups: dict[tuple, list[int]] = {}
    keys, shapes = [], []
    for i, caption in enumerate(captions):
        try:
            spec = parse_prompt(caption)
        except GenimgError:
            keys.append(("unparsed", i))
            shapes.append(())
        else:
            keys.append((spec.kind, spec.background, spec.position, spec.relation,
                         tuple((o.colour, o.size, o.count) for o in spec.objects)))
            shapes.append(tuple(o.shape for o in spec.objects))
        groups.setdefault(keys[-1], []).append(i)
    return [groups[k] for k in keys], shapes


def hard_negative(i: int, groups, shapes, gen: torch.Generator, tries: int = 8) -> int | None:
    """A random caption index of ``i``'s group with other shapes than ``i``'s, or None (``tries`` draws)."""
    group = groups[i]
    for _ in range(tries if len(group) > 1 else 0):
        j = group[int(torch.randint(len(group), (1,), generator=gen))]
        if shapes[j] != shapes[i]:
            return j
    return None


def train_gan(out_dir=DEFAULTS["gan"]["out"], *, resume: bool = True, **options) -> Path:
    """Train the conditional GAN in ``out_dir`` (resumably); returns the final checkpoint folder.

    ``options`` are :class:`GanTrainer`'s (steps, batch_size, lr, config, n_data, data_dir,
    mismatch_weight, eval_minutes, ..., log).
    """
    return fit(GanTrainer(**options), out_dir, resume=resume).checkpoint


@register_trainer("gan")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train gan [options]``: train, export and measure; returns the summary.

    Raises GenimgError for a user error (e.g. ``--export-only`` without a checkpoint).
    """
    return run_cli(GanTrainer, argv)

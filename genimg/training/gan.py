"""Training of the embedded conditional GAN (``python -m genimg train gan``).

Hinge loss, a spectral-norm projection discriminator, an EMA of the generator (what ships).
The discriminator also sees real images with another sample's caption as fakes
(``mismatch_weight``; "matching-aware" D, Reed et al. 2016), which teaches it - and so the
generator - to check the caption, not only realism. Data, cadence, evaluation and export
are the one-step models' (:mod:`genimg.training.onestep`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from genimg.training.checkpoints import load_optimizer_tensors, load_tensors, optimizer_tensors
from genimg.training.ema import EMA
from genimg.training.loop import fit
from genimg.training.onestep import DATA_DIR, DEFAULTS, OneStepTrainer, run_cli
from genimg.training.registry import register_trainer


class GanTrainer(OneStepTrainer):
    """The conditional GAN: generator G, projection discriminator D, EMA of G (shipped)."""

    name = "gan"

    def __init__(self, *, steps: int = DEFAULTS["gan"]["steps"], batch_size: int = DEFAULTS["gan"]["batch_size"],
                 lr: float = DEFAULTS["gan"]["lr"], seed: int = 0, config="default", n_data: int = 40000,
                 data_dir=DATA_DIR, mismatch_weight: float = 0.5, ema_decay: float = 0.999,
                 eval_minutes: float = 10.0, eval_every: int = 0, eval_seeds=(0, 1), ckpt_minutes: float = 5.0,
                 threads: int = 1, log=print):
        from genimg.embedded.gan import gan_config

        arch = gan_config(config)
        super().__init__(arch, config, int(arch["generator"]["image_size"]), {"mismatch_weight": mismatch_weight},
                         steps=steps, batch_size=batch_size, lr=lr, seed=seed, n_data=n_data, data_dir=data_dir,
                         ema_decay=ema_decay, eval_minutes=eval_minutes, eval_every=eval_every,
                         eval_seeds=eval_seeds, ckpt_minutes=ckpt_minutes, threads=threads, log=log)
        self.mismatch_weight = mismatch_weight

    def build(self) -> None:
        """G, D, the EMA of G and one Adam per network (betas 0, 0.99)."""
        from genimg.embedded.gan import ConditionalGANGenerator, ProjectionDiscriminator, n_params

        self.G = self.network = ConditionalGANGenerator(**self.arch["generator"])
        self.D = ProjectionDiscriminator(**self.arch["discriminator"])
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
        x, s, m, p = self.batch(step)
        z_dim = G.config.z_dim
        # Another sample's caption for each real image (a shift within the batch).
        perm = torch.roll(torch.arange(batch_size), 1)
        with torch.no_grad():
            fake = G(torch.randn(batch_size, z_dim, generator=g), s, m, p)
        d_real = D(x, s, m, p)
        d_fake = D(fake, s, m, p)
        d_mis = D(x, s[perm], m[perm], p[perm]) if mismatch_weight > 0 else d_fake.new_zeros(1)
        loss_d = (F.relu(1 - d_real).mean() + (1 - mismatch_weight) * F.relu(1 + d_fake).mean()
                  + mismatch_weight * F.relu(1 + d_mis).mean())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # Non-saturating hinge generator loss.
        fake = G(torch.randn(batch_size, z_dim, generator=g), s, m, p)
        loss_g = -D(fake, s, m, p).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.ema.update(G, step)
        # d_margin = D(real) - D(fake): the generator/discriminator balance; it grows without bound when D
        # wins outright (G's gradients vanish), one of the roads to collapse.
        return {"d": loss_d.item(), "g": loss_g.item(), "d_real": d_real.mean().item(),
                "d_fake": d_fake.mean().item(), "d_mismatch": d_mis.mean().item(),
                "d_margin": (d_real.mean() - d_fake.mean()).item()}

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """G, D, the EMA of G and both optimizers' moments."""
        return {"generator": self.G.state_dict(), "discriminator": self.D.state_dict(), "ema": self.ema.state_dict(),
                "opt_g": optimizer_tensors(self.opt_g), "opt_d": optimizer_tensors(self.opt_d)}

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore G, D, EMA and both optimizers from ``checkpoint``."""
        self.G.load_state_dict(load_tensors(checkpoint, "generator"))
        self.D.load_state_dict(load_tensors(checkpoint, "discriminator"))
        self.ema.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt_g, load_tensors(checkpoint, "opt_g"))
        load_optimizer_tensors(self.opt_d, load_tensors(checkpoint, "opt_d"))

    def state(self) -> dict[str, Any]:
        """Parameter counts and the seed, for the model card."""
        return {"g_params": self.g_params, "d_params": self.d_params, "seed": self.seed}


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

"""Training of the embedded conditional VAE (``python -m genimg train vae``).

With ``adv_weight`` > 0 a patch discriminator (PatchGAN, Isola et al. 2017; as in the latent
diffusion autoencoder's training) judges ~10 px patches of the reconstructions against real
ones, from step ``adv_start`` on: a Gaussian likelihood alone
draws the average of the possible edges - a blur the evaluator cannot read a shape from.

With ``shape_classifier`` > 0, from step ``shape_start`` the auxiliary shape classifier of
:mod:`genimg.training.shapes_aux` reads the VAE's *prior samples* (what a user gets) and the VAE
pays that weight x its BCE against the caption's shapes (measured: +shape 0.45 -> 0.80 in 3 000
steps at weight 0.01; docs/training-tracking.md).

A Gaussian likelihood with std ``rec_sigma`` on [-1, 1] pixels plus the KL to the learned
conditional prior p(z | text), the KL weight warmed up over ``kl_warmup`` steps. The EMA
model is evaluated by sampling from the prior, like the shipped pipeline. Data, cadence,
evaluation and export are the one-step models' (:mod:`genimg.training.onestep`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genimg.training.checkpoints import load_optimizer_tensors, load_tensors, optimizer_tensors
from genimg.training.ema import EMA
from genimg.training.loop import fit
from genimg.training.onestep import DATA_DIR, DEFAULTS, OneStepTrainer, run_cli
from genimg.training.registry import register_trainer


class PatchDiscriminator(torch.nn.Module):
    """Spectral-norm PatchGAN critic: images in [-1, 1] (B, 3, S, S) -> real/fake logits per patch (B, 1, S/4, S/4).

    Hand-written (a few convolutions; diffusers ships no discriminator). Training only, never shipped.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        sn = torch.nn.utils.spectral_norm
        a, b, c = channels
        self.net = torch.nn.Sequential(
            sn(torch.nn.Conv2d(3, a, 4, 2, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(a, b, 4, 2, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(b, c, 3, 1, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(c, 1, 3, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VaeTrainer(OneStepTrainer):
    """The conditional VAE and its EMA (shipped), Adam with ``warmup`` steps of learning-rate warm-up."""

    name = "vae"

    def __init__(self, *, steps: int = DEFAULTS["vae"]["steps"], batch_size: int = DEFAULTS["vae"]["batch_size"],
                 lr: float = DEFAULTS["vae"]["lr"], seed: int = 0, config="default", n_data: int = 40000,
                 data_dir=DATA_DIR, rec_sigma: float = 1.0, kl_warmup: int = 500, warmup: int = 100,
                 ema_decay: float = 0.999, eval_minutes: float = 10.0, eval_every: int = 0, eval_seeds=(0, 1),
                 ckpt_minutes: float = 5.0, threads: int = 1, adv_weight: float = 0.02, adv_start: int = 2500,
                 shape_classifier: float = 0.0, shape_start: int = 0, classifier_steps: int = 3000, log=print):
        from genimg.embedded.cvae import vae_config

        arch = vae_config(config)
        super().__init__(arch, config, int(arch["vae"]["image_size"]),
                         {"rec_sigma": rec_sigma, "kl_warmup": kl_warmup, "warmup": warmup,
                          "adv_weight": adv_weight, "adv_start": adv_start, "shape_classifier": shape_classifier,
                          "shape_start": shape_start, "classifier_steps": classifier_steps},
                         steps=steps, batch_size=batch_size, lr=lr, seed=seed, n_data=n_data, data_dir=data_dir,
                         ema_decay=ema_decay, eval_minutes=eval_minutes, eval_every=eval_every,
                         eval_seeds=eval_seeds, ckpt_minutes=ckpt_minutes, threads=threads, log=log)
        self.rec_sigma, self.kl_warmup, self.warmup = rec_sigma, kl_warmup, warmup
        self.adv_weight, self.adv_start = adv_weight, adv_start
        self.shape_classifier, self.shape_start, self.classifier_steps = shape_classifier, shape_start, classifier_steps
        if shape_classifier > 0:
            from genimg.scenes.grammar import SHAPES

            self.arch["shape_classifier"] = {"image_size": self.size, "classes": len(SHAPES)}

    cli_options = {
        "rec_sigma": (float, "std of the Gaussian likelihood on [-1, 1] pixels (larger: more weight on the KL)"),
        "kl_warmup": (int, "steps over which the KL weight rises from 0 to 1"),
        "adv_weight": (float, "weight of the patch discriminator's loss on reconstructions (0: off)"),
        "adv_start": (int, "the step the patch discriminator starts at"),
        "shape_classifier": (float, "weight of the auxiliary shape classifier's loss on prior samples (0: off)"),
        "shape_start": (int, "the step that loss starts at"),
        "classifier_steps": (int, "steps that classifier first learns on real images alone"),
    }

    def build(self) -> None:
        """The VAE, its EMA and Adam."""
        from genimg.embedded.cvae import ConditionalVAE
        from genimg.embedded.gan import n_params

        self.vae = self.network = ConditionalVAE(**self.arch["vae"])
        self.ema = EMA(self.vae, decay=self.ema_decay)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=self.lr)
        self.D = PatchDiscriminator() if self.adv_weight > 0 else None
        if self.D is not None:
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=(0.5, 0.9))
        self.C = None
        if self.shape_classifier > 0:
            from genimg.training.data import prepare_data
            from genimg.training.shapes_aux import ShapeAux, caption_shapes

            _, captions = prepare_data(Path(self.data_dir), self.n_data, self.seed, 64, log=self.log)
            self.C = ShapeAux(self.data, caption_shapes(captions), batch_size=self.batch_size, seed=self.seed)
        self.params = n_params(self.vae)
        self.log(f"vae: {self.params / 1e6:.2f}M parameters; data {tuple(self.data[0].shape)}")
        self.vae.train()

    def pipeline(self):
        """The VAE pipeline around the EMA model (samples z from the conditional prior)."""
        from genimg.embedded.cvae import build_vae_pipeline

        return build_vae_pipeline(self.ema.model, text_encoder=self.te, tokenizer=self.tok)

    def step(self, step: int) -> dict[str, float]:
        """One negative-ELBO step (plus the patch critic's and the shape classifier's terms from their start steps);
        returns {"loss", "mse", "kl"} and, when on, {"d", "adv"} and {"aux_real", "aux_fake"}."""
        vae, g, batch_size = self.vae, self.g, self.batch_size
        x, s, m, p = self.batch(step)
        for group in self.opt.param_groups:
            group["lr"] = self.lr * min(1.0, (step + 1) / self.warmup)
        rec, kl = vae(x, s, m, p, torch.randn(batch_size, vae.config.z_dim, generator=g))
        # Per-pixel normalised negative ELBO (Gaussian likelihood, fixed std), KL weight warmed up.
        nll = (rec - x).pow(2).sum(dim=(1, 2, 3)) / (2 * self.rec_sigma ** 2)
        beta = min(1.0, (step + 1) / max(1, self.kl_warmup))
        loss = (nll + beta * kl).mean() / x[0].numel()
        out = {}
        adversarial = self.D is not None and step >= self.adv_start
        if adversarial:
            # Hinge losses: D on real vs reconstructions; the VAE pays adv_weight * -D(reconstruction). (Prior samples
            # as fakes too were measured worse: at step 1000 colour+bg 0.075 vs 0.225, diversity 0.45 - noise.)
            fakes = rec
            d_real, d_fake = self.D(x), self.D(fakes.detach())
            loss_d = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            adv = -self.D(fakes).mean()
            loss = loss + self.adv_weight * adv
            out = {"d": loss_d.item(), "adv": adv.item()}
        if self.C is not None and step >= self.shape_start:
            # Prior samples at the pipeline's sampling temperature (what a user sees) should hold the caption's
            # shapes: the reconstruction term alone teaches the decoder shapes only for the encoder's z.
            from genimg.embedded.cvae import EmbeddedVAEPipeline

            aux_real = self.C.learn(x, self._batch_idx)
            eps = torch.randn(batch_size, vae.config.z_dim, generator=g)
            sample = vae.sample(eps, s, m, p, temperature=EmbeddedVAEPipeline.sample_temperature)
            aux_fake = self.C.generator_loss(sample, self._batch_idx)
            loss = loss + self.shape_classifier * aux_fake
            out |= {"aux_real": aux_real.item(), "aux_fake": aux_fake.item()}
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        self.opt.step()
        self.ema.update(vae, step)
        return {"loss": loss.item(), "mse": (rec - x).pow(2).mean().item(), "kl": kl.mean().item(), **out}

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """The VAE, its EMA and the optimizer moments (and the patch discriminator's, when there is one)."""
        tensors = {"vae": self.vae.state_dict(), "ema": self.ema.state_dict(), "opt": optimizer_tensors(self.opt)}
        if self.D is not None:
            tensors.update({"patch_d": self.D.state_dict(), "opt_d": optimizer_tensors(self.opt_d)})
        if self.C is not None:
            tensors.update(self.C.tensors())
        return tensors

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore the VAE, EMA and optimizer (and the patch discriminator) from ``checkpoint``."""
        self.vae.load_state_dict(load_tensors(checkpoint, "vae"))
        self.ema.model.load_state_dict(load_tensors(checkpoint, "ema"))
        load_optimizer_tensors(self.opt, load_tensors(checkpoint, "opt"))
        if self.D is not None and (checkpoint / "patch_d.safetensors").exists():
            self.D.load_state_dict(load_tensors(checkpoint, "patch_d"))
            load_optimizer_tensors(self.opt_d, load_tensors(checkpoint, "opt_d"))
        if self.C is not None:
            self.C.load(checkpoint)

    def state(self) -> dict[str, Any]:
        """Parameter count and the seed, for the model card."""
        return {"params": self.params, "seed": self.seed}


def train_vae(out_dir=DEFAULTS["vae"]["out"], *, resume: bool = True, **options) -> Path:
    """Train the conditional VAE in ``out_dir`` (resumably); returns the final checkpoint folder.

    ``options`` are :class:`VaeTrainer`'s (steps, batch_size, lr, config, n_data, data_dir,
    rec_sigma, kl_warmup, eval_minutes, ..., log).
    """
    return fit(VaeTrainer(**options), out_dir, resume=resume).checkpoint


@register_trainer("vae")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train vae [options]``: train, export and measure; returns the summary.

    Raises GenimgError for a user error (e.g. ``--export-only`` without a checkpoint).
    """
    return run_cli(VaeTrainer, argv)

"""The embedded one-step conditional VAE (Kingma et al. 2014's CVAE / Sohn et al. 2015).

:class:`ConditionalVAE` (a diffusers ``ModelMixin`` + ``ConfigMixin``) has

* ``encoder``: q(z | x, text) - a stride-2 conv stack with the text vector added (FiLM) at
  its 4x4 end, giving a diagonal Gaussian over a global ``z``;
* ``prior``: p(z | text) - a learned conditional prior (an MLP on the text vector); with
  ``learned_prior=False`` it is the standard N(0, I);
* ``decoder``: p(x | z, text) - the same DCGAN-style trunk as the GAN generator
  (:class:`genimg.embedded.gan.ConvGeneratorNet`).

Sampling draws z from the prior (``mu + sigma * eps``, eps from the caller's generator)
and runs the decoder once. :class:`EmbeddedVAEPipeline` shares the one-step pipeline of
:mod:`genimg.embedded.gan`; its component is called ``vae`` and has a ``decoder``, so the
generate task's stage timer reports the decode time as it does for diffusion models.
Trained by :func:`genimg.training.vae.train_vae` (``python -m genimg train vae``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from genimg.embedded.diffusion import _dtype
from genimg.embedded.gan import (ConvGeneratorNet, OneStepPipeline, TextConditioner, _check_channels,
                                 _weights_present, finish_pipeline)
from genimg.embedded.text import HIDDEN_SIZE, load_text_encoder
from genimg.errors import GenimgError
from diffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402
from diffusers.models.modeling_utils import ModelMixin  # noqa: E402


class _Encoder(nn.Module):
    """x (B, 3, S, S) + text vector -> (mu, logvar) of z."""

    def __init__(self, image_size: int, channels, cond_dim: int, z_dim: int):
        super().__init__()
        layers, cin = [], 3
        for cout in channels:  # mirrors the decoder: S -> 4 px
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.film = nn.Linear(cond_dim, 2 * cin)
        self.out = nn.Sequential(nn.Linear(16 * cin, 256), nn.SiLU(), nn.Linear(256, 2 * z_dim))

    def forward(self, x, c):
        h = self.convs(x)
        gamma, beta = self.film(c)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(h * (1 + gamma) + beta)
        mu, logvar = self.out(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 5)


class ConditionalVAE(ModelMixin, ConfigMixin):
    """Conditional VAE over ``image_size`` px images (returned at ``output_size`` px by the pipeline)."""

    @register_to_config
    def __init__(self, image_size: int = 32, output_size: int = 64, z_dim: int = 32, cond_dim: int = 256,
                 text_dim: int = HIDDEN_SIZE, text_queries: int = 8, channels: tuple = (256, 128, 64),
                 refine: tuple = (1, 0), groups: int = 8, learned_prior: bool = True):
        super().__init__()
        _check_channels(image_size, channels)
        self.text = TextConditioner(text_dim, cond_dim, text_queries)
        # A narrower mirror of the decoder (the encoder is not shipped-size critical but is shipped).
        self.encoder = _Encoder(image_size, [max(8, c // 2) for c in reversed(list(channels))], cond_dim, z_dim)
        self.prior = (nn.Sequential(nn.Linear(cond_dim, 256), nn.SiLU(), nn.Linear(256, 2 * z_dim))
                      if learned_prior else None)
        self.decoder = _Decoder(z_dim, cond_dim, channels, groups, refine)

    def condition(self, states, mask, pooled):
        """MiniLM outputs -> the text vector (B, cond_dim)."""
        return self.text(states, mask, pooled)

    def prior_params(self, c):
        """(mu, logvar) of p(z | text): learned, or zeros for N(0, I)."""
        if self.prior is None:
            zeros = c.new_zeros(c.shape[0], self.config.z_dim)
            return zeros, zeros
        mu, logvar = self.prior(c).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 5)

    def sample(self, eps, states, mask, pooled, temperature: float = 1.0):
        """Images in [-1, 1] from standard-normal ``eps`` (B, z_dim): z = mu + temperature * sigma * eps."""
        c = self.condition(states, mask, pooled)
        mu, logvar = self.prior_params(c)
        z = mu + temperature * torch.exp(0.5 * logvar) * eps
        return self.decoder(z, c)

    def forward(self, x, states, mask, pooled, eps):
        """Training pass: (reconstruction in [-1, 1], KL(q(z|x,c) || p(z|c)) per sample (B,))."""
        c = self.condition(states, mask, pooled)
        mu_q, logvar_q = self.encoder(x, c)
        z = mu_q + torch.exp(0.5 * logvar_q) * eps
        mu_p, logvar_p = self.prior_params(c)
        kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1).sum(1)
        return self.decoder(z, c), kl


class _Decoder(ConvGeneratorNet):
    """The decoder p(x | z, text): the GAN generator's trunk (its own module name for the stage timer)."""


CONFIGS: dict[str, dict] = {
    "default": {"vae": {"image_size": 32, "output_size": 64, "z_dim": 32, "cond_dim": 256, "text_queries": 4,
                        "channels": [256, 128, 64], "refine": [1, 0], "learned_prior": True}},
    "tiny": {"vae": {"image_size": 16, "output_size": 32, "z_dim": 4, "cond_dim": 16, "text_queries": 2,
                     "channels": [16, 8], "refine": [0], "groups": 4, "learned_prior": True}},
}


def vae_config(config) -> dict:
    """A deep copy of a named CVAE config (or of a given config dict). Raises GenimgError if unknown."""
    import copy

    if isinstance(config, dict):
        return copy.deepcopy(config)
    if config not in CONFIGS:
        raise GenimgError(f"unknown embedded VAE config {config!r}; expected one of {', '.join(CONFIGS)}")
    return copy.deepcopy(CONFIGS[config])


class EmbeddedVAEPipeline(OneStepPipeline):
    """Text-to-image with the conditional VAE. Components: ``vae``, ``text_encoder``, ``tokenizer``."""

    model_component = "vae"
    model_cpu_offload_seq = "text_encoder->vae"

    def __init__(self, vae, text_encoder=None, tokenizer=None):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)

    # Reduced-temperature sampling (z = mu + 0.6 sigma eps), the usual VAE/flow trade of diversity
    # for fidelity. It mattered for the first weights (temperature 1.0 / 0.6: single colour+background
    # 0.325 / 0.50); for the 16 000-step weights it barely does (fresh seeds 2-5, temperature 0.4 / 0.6 /
    # 0.8 / 1.0: + shape 0.44 / 0.41 / 0.44 / 0.41, diversity 0.097 / 0.124 / 0.146 / 0.162). Training
    # judges prior samples at this temperature (train vae --shape-classifier), and cards report it.
    sample_temperature = 0.6

    def generate_unit(self, latents, states, mask, pooled):
        return self.vae.sample(latents, states, mask, pooled, temperature=self.sample_temperature)


def build_vae_pipeline(vae: ConditionalVAE, device="cpu", dtype=torch.float32, *, text_encoder=None,
                       tokenizer=None) -> EmbeddedVAEPipeline:
    """A pipeline around a conditional VAE (e.g. during training)."""
    if text_encoder is None or tokenizer is None:
        text_encoder, tokenizer = load_text_encoder()
    pipe = EmbeddedVAEPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
    return finish_pipeline(pipe, vae, device, _dtype(dtype))


def load_embedded_vae(folder, device="cpu", dtype=torch.float32, *, text_encoder=None,
                      tokenizer=None) -> EmbeddedVAEPipeline:
    """Load the trained conditional VAE from ``folder`` (``vae/`` with safetensors). Raises GenimgError if missing."""
    folder = Path(folder)
    if not _weights_present(folder / "vae"):
        raise GenimgError(f"no embedded VAE weights under {folder}; train and export them with: python -m genimg train vae")
    dtype = _dtype(dtype)
    vae = ConditionalVAE.from_pretrained(str(folder / "vae"), torch_dtype=dtype, use_safetensors=True)
    return build_vae_pipeline(vae, device, dtype, text_encoder=text_encoder, tokenizer=tokenizer)


__all__ = ["ConditionalVAE", "EmbeddedVAEPipeline", "build_vae_pipeline", "load_embedded_vae", "vae_config", "CONFIGS"]

"""The embedded one-step GAN: conditional DCGAN-style generator + projection discriminator.

* :class:`TextConditioner` turns frozen all-MiniLM-L6-v2 outputs into one conditioning
  vector: an MLP on the pooled sentence vector plus a few learned queries that attend
  over the token states (so word order - "red circle left of a blue square" - is not
  averaged away as in the pooled vector alone).
* :class:`ConvGeneratorNet` is the DCGAN-style trunk shared with the conditional VAE's
  decoder: ``[z, c]`` -> 4x4 map -> stride-2 transposed convolutions up to the image size,
  each followed by GroupNorm modulated by ``[z, c]`` (FiLM). GroupNorm instead of DCGAN's
  BatchNorm keeps every image independent of the rest of its batch.
* :class:`ConditionalGANGenerator` / :class:`ProjectionDiscriminator` are diffusers
  ``ModelMixin`` + ``ConfigMixin`` models (``save_pretrained`` / ``from_pretrained`` with
  safetensors). The discriminator (spectral norm, projection on the text vector,
  Miyato & Koyama 2018) is only needed for training and is not shipped.
* :class:`OneStepPipeline` is the diffusers-style pipeline shared by the GAN and the VAE:
  one network evaluation per image; :class:`EmbeddedGANPipeline` is the GAN's.

Trained by :func:`genimg.training.gan.train_gan` (``python -m genimg train gan``).
"""

from __future__ import annotations

from pathlib import Path

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from genimg.embedded.diffusion import LocalDeviceMixin, _dtype, to_uint8  # noqa: F401  (to_uint8 re-exported for callers)
from genimg.embedded.text import HIDDEN_SIZE, MAX_LENGTH, encode_prompts, encode_prompts_cached, load_text_encoder
from genimg.errors import GenimgError

try:
    from diffusers import DiffusionPipeline, ImagePipelineOutput
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.models.modeling_utils import ModelMixin
    from diffusers.utils.torch_utils import randn_tensor
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise GenimgError("The embedded GAN needs 'diffusers'; install it with: pip install diffusers") from exc


# --------------------------------------------------------------------------- building blocks


class TextConditioner(nn.Module):
    """MiniLM ``(states (B,T,384), mask (B,T), pooled (B,384))`` -> conditioning vector ``(B, dim)``."""

    def __init__(self, text_dim: int = HIDDEN_SIZE, dim: int = 256, queries: int = 8):
        super().__init__()
        self.pooled = nn.Sequential(nn.Linear(text_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.queries = nn.Parameter(torch.randn(queries, dim) * dim ** -0.5)
        self.kv = nn.Linear(text_dim, 2 * dim)
        self.out = nn.Linear(queries * dim, dim)
        self.scale = dim ** -0.5

    def forward(self, states, mask, pooled):
        k, v = self.kv(states).chunk(2, dim=-1)                        # (B, T, d)
        logits = torch.einsum("qd,btd->bqt", self.queries, k) * self.scale
        logits = logits.masked_fill(mask[:, None, :] == 0, torch.finfo(logits.dtype).min)
        attended = torch.einsum("bqt,btd->bqd", logits.softmax(-1), v)  # (B, Q, d)
        return self.pooled(pooled) + self.out(attended.flatten(1))


class _FiLMUp(nn.Module):
    """Stride-2 transposed conv -> GroupNorm -> FiLM(w) -> ReLU (-> optional 3x3 conv block)."""

    def __init__(self, cin: int, cout: int, w_dim: int, groups: int, refine: bool):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.norm = nn.GroupNorm(min(groups, cout), cout, affine=False)
        self.film = nn.Linear(w_dim, 2 * cout)
        self.refine = nn.Conv2d(cout, cout, 3, padding=1) if refine else None

    def forward(self, h, w):
        h = self.norm(self.up(h))
        gamma, beta = self.film(w)[:, :, None, None].chunk(2, dim=1)
        h = F.relu(h * (1 + gamma) + beta)
        if self.refine is not None:
            h = F.relu(h + self.refine(h))
        return h


class ConvGeneratorNet(nn.Module):
    """DCGAN-style trunk: ``(z (B, z_dim), c (B, cond_dim))`` -> image in [-1, 1] ``(B, 3, S, S)``.

    ``channels[i]`` is the width at 4 * 2**i pixels; a last stride-2 transposed conv makes
    the RGB image at ``S = 4 * 2**len(channels)`` (as in DCGAN), followed by tanh.
    ``out_channels``: 3 for RGB; the emoji glyph decoder asks 4 (colour + alpha) and ``tanh=False``
    (raw logits: its alpha is learnt through a logistic loss, which does not saturate).
    """

    def __init__(self, z_dim: int, cond_dim: int, channels, groups: int = 8, refine=None, out_channels: int = 3,
                 tanh: bool = True):
        super().__init__()
        channels = list(channels)
        refine = list(refine) if refine is not None else [False] * (len(channels) - 1)
        w_dim = z_dim + cond_dim
        self.c0 = channels[0]
        self.fc = nn.Linear(w_dim, 16 * channels[0])
        self.norm0 = nn.GroupNorm(min(groups, channels[0]), channels[0], affine=False)
        self.film0 = nn.Linear(w_dim, 2 * channels[0])
        self.blocks = nn.ModuleList(
            _FiLMUp(a, b, w_dim, groups, bool(r)) for a, b, r in zip(channels[:-1], channels[1:], refine))
        self.to_rgb = nn.ConvTranspose2d(channels[-1], out_channels, 4, 2, 1)
        self.tanh = tanh

    def forward(self, z, c):
        w = torch.cat([z, c], dim=1)
        gamma, beta = self.film0(w)[:, :, None, None].chunk(2, dim=1)
        h = F.relu(self.norm0(self.fc(w).view(-1, self.c0, 4, 4)) * (1 + gamma) + beta)
        for block in self.blocks:
            h = block(h, w)
        out = self.to_rgb(h)
        return torch.tanh(out) if self.tanh else out


def _check_channels(image_size: int, channels) -> None:
    if 4 * 2 ** len(channels) != image_size:
        raise GenimgError(f"{len(channels)} channel entries make {4 * 2 ** len(channels)} px images, "
                          f"not {image_size} px: give log2(image_size / 4) entries")


# --------------------------------------------------------------------------- models


class ConditionalGANGenerator(ModelMixin, ConfigMixin):
    """G(z, text): one forward pass from noise ``z`` and MiniLM outputs to an image in [-1, 1].

    The network makes ``image_size`` px; the pipeline returns ``output_size`` px (bilinear
    upsampling; the evaluator scores 32 px renders upsampled to 64 px exactly as native 64 px
    ones, 1.0 on eval_prompt_set, and 32 px training is ~4x cheaper on this CPU).
    """

    @register_to_config
    def __init__(self, image_size: int = 32, output_size: int = 64, z_dim: int = 64, cond_dim: int = 256,
                 text_dim: int = HIDDEN_SIZE, text_queries: int = 8, channels: tuple = (256, 128, 64),
                 refine: tuple = (1, 0), groups: int = 8):
        super().__init__()
        _check_channels(image_size, channels)
        self.text = TextConditioner(text_dim, cond_dim, text_queries)
        self.net = ConvGeneratorNet(z_dim, cond_dim, channels, groups, refine)

    def forward(self, z, states, mask, pooled):
        return self.net(z, self.text(states, mask, pooled))


class ProjectionDiscriminator(ModelMixin, ConfigMixin):
    """D(x, text) -> (B,) logits: spectral-normed conv stack + projection on the text vector."""

    @register_to_config
    def __init__(self, image_size: int = 64, cond_dim: int = 256, text_dim: int = HIDDEN_SIZE, text_queries: int = 8,
                 channels: tuple = (32, 64, 128, 256), feature_dim: int = 256, mbstd_group: int = 0):
        super().__init__()
        sn = nn.utils.spectral_norm
        if image_size // 2 ** len(channels) != 4:
            raise GenimgError(f"{len(channels)} stride-2 stages take {image_size} px to "
                              f"{image_size // 2 ** len(channels)} px, not 4 px")
        layers, cin = [], 3
        for cout in channels:
            layers += [sn(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers += [sn(nn.Conv2d(cin, cin, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        # Minibatch standard deviation (Karras et al. 2018): one more channel holding how much the images of a
        # group differ, so a generator that makes one image for every z is easy to tell from real data.
        self.mbstd_group = int(mbstd_group)
        # Flatten the 4x4 map (not a global sum) so where things are stays visible to the head.
        self.fc = sn(nn.Linear(16 * (cin + (1 if self.mbstd_group else 0)), feature_dim))
        self.head = sn(nn.Linear(feature_dim, 1))
        self.text = TextConditioner(text_dim, cond_dim, text_queries)
        self.embed = sn(nn.Linear(cond_dim, feature_dim))

    def forward(self, x, states, mask, pooled):
        h = self.convs(x)
        if self.mbstd_group:
            h = minibatch_std(h, self.mbstd_group)
        h = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        c = self.embed(self.text(states, mask, pooled))
        return self.head(h).squeeze(1) + (h * c).sum(1)


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """``h`` (B, C, H, W) with one channel more: the mean std across each group of ``group`` images (i, i + B/G, ...).

    The group shrinks to the largest divisor of B not above ``group`` (a batch of 1 gets zeros).
    """
    b, _, height, width = h.shape
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    y = h.reshape(g, -1, *h.shape[1:])                                    # (G, B/G, C, H, W)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
    y = y.repeat(g)[:, None, None, None].expand(b, 1, height, width)
    return torch.cat([h, y], dim=1)


CONFIGS: dict[str, dict] = {
    # The shipped model: trained and run at 32 px, returned at 64 px.
    "default": {
        "generator": {"image_size": 32, "output_size": 64, "z_dim": 64, "cond_dim": 256, "text_queries": 8,
                      "channels": [256, 128, 64], "refine": [1, 0]},
        "discriminator": {"image_size": 32, "cond_dim": 256, "text_queries": 8, "channels": [32, 64, 128],
                          "feature_dim": 256, "mbstd_group": 4},
    },
    # The shipped model's discriminator with a generator shaped like the conditional VAE's decoder (z 32, 4 text
    # queries), so that it can start from a trained VAE's decoder (train gan --init-from assets/embedded/vae).
    "vae-shaped": {
        "generator": {"image_size": 32, "output_size": 64, "z_dim": 32, "cond_dim": 256, "text_queries": 4,
                      "channels": [256, 128, 64], "refine": [1, 0]},
        "discriminator": {"image_size": 32, "cond_dim": 256, "text_queries": 8, "channels": [32, 64, 128],
                          "feature_dim": 256, "mbstd_group": 4},
    },
    # Random-weight tiny model for tests (16 px net, 32 px out).
    "tiny": {
        "generator": {"image_size": 16, "output_size": 32, "z_dim": 8, "cond_dim": 16, "text_queries": 2,
                      "channels": [16, 8], "refine": [0], "groups": 4},
        "discriminator": {"image_size": 16, "cond_dim": 16, "text_queries": 2, "channels": [8, 16],
                          "feature_dim": 16, "mbstd_group": 4},
    },
}


def gan_config(config) -> dict:
    """A deep copy of a named GAN config (or of a given config dict). Raises GenimgError if unknown."""
    import copy

    if isinstance(config, dict):
        return copy.deepcopy(config)
    if config not in CONFIGS:
        raise GenimgError(f"unknown embedded GAN config {config!r}; expected one of {', '.join(CONFIGS)}")
    return copy.deepcopy(CONFIGS[config])


# --------------------------------------------------------------------------- pipeline


def check_call_arguments(pipe, prompt, num_images_per_prompt: int, num_inference_steps: int, guidance_scale: float,
                         output_type: str, callback_tensor_inputs) -> list[str]:
    """The prompts of a one-step pipeline's call as a list, after checking its arguments.

    Raises GenimgError for no prompt, fewer than one image or step, a negative guidance scale,
    an unknown output type or callback tensors the pipeline does not offer.
    """
    if prompt is None:
        raise GenimgError("no prompt given")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise GenimgError("no prompt given")
    if num_images_per_prompt < 1:
        raise GenimgError(f"num_images_per_prompt must be at least 1, got {num_images_per_prompt}")
    if num_inference_steps < 1:
        raise GenimgError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
    if guidance_scale < 0:
        raise GenimgError(f"guidance_scale must be non-negative, got {guidance_scale}")
    if output_type not in ("pil", "np", "pt"):
        raise GenimgError(f"unknown output_type {output_type!r}; expected pil, np or pt")
    bad = [k for k in callback_tensor_inputs if k not in pipe._callback_tensor_inputs]
    if bad:
        raise GenimgError(f"callback tensor inputs {bad} are not among {pipe._callback_tensor_inputs}")
    return prompts


class OneStepPipeline(LocalDeviceMixin, DiffusionPipeline):
    """Shared ``__call__`` of the one-step generators (GAN, VAE): text -> one forward pass -> images.

    Subclasses name their network component (``model_component``) and implement
    :meth:`generate_unit`. ``num_inference_steps`` and ``guidance_scale`` are accepted for
    interface compatibility with diffusion pipelines and validated, but a one-step model
    has no steps to choose and no classifier-free guidance: they do not change the image.
    ``callback_on_step_end`` is called once (step 0) with the noise ``latents``.
    """

    model_component = "model"
    prompt_cache_size = 256
    _callback_tensor_inputs = ["latents"]

    def _network(self) -> torch.nn.Module:
        return getattr(self, self.model_component)

    _main_module = _network

    @property
    def image_size(self) -> int:
        """The size the pipeline returns by default (the network's ``output_size``)."""
        cfg = self._network().config
        return int(getattr(cfg, "output_size", None) or cfg.image_size)

    @property
    def supported_sizes(self) -> tuple[int, ...]:
        """Square sizes it can make: the network's own and the upsampled output size."""
        return tuple(sorted({int(self._network().config.image_size), self.image_size}))

    @property
    def latent_dim(self) -> int:
        return int(self._network().config.z_dim)

    def encode_prompt(self, prompts):
        """MiniLM token states (B, T, 384), attention mask (B, T) and pooled vector (B, 384).

        Encodings are cached per prompt string (the last ``prompt_cache_size``): for a one-step
        model the text encoder costs more than the generator, and prompts repeat (more seeds
        of one prompt, the Compare tab). Each prompt is encoded on its own padded length
        (``MAX_LENGTH``), so a cached row equals a fresh one.
        """
        if self.text_encoder is None or self.tokenizer is None:
            raise GenimgError(f"this {type(self).__name__} has no text encoder; load it with its load_embedded_* function")
        states, mask, pooled = encode_prompts_cached(self.__dict__.setdefault("_prompt_cache", OrderedDict()),
                                                     self.text_encoder, self.tokenizer, prompts, MAX_LENGTH,
                                                     self.prompt_cache_size)
        device, dtype = self._execution_device, self._network().dtype
        return states.to(device, dtype), mask.to(device), pooled.to(device, dtype)

    def generate_unit(self, latents, states, mask, pooled):  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, prompt=None, negative_prompt=None, height: int | None = None, width: int | None = None,
                 num_inference_steps: int = 1, guidance_scale: float = 0.0, num_images_per_prompt: int = 1,
                 generator=None, latents: torch.Tensor | None = None, output_type: str = "pil",
                 return_dict: bool = True, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs=("latents",)):
        """Generate images for ``prompt``; returns ``ImagePipelineOutput`` (or a tuple).

        Image i depends only on its prompt and on ``generator[i]`` (one generator per image)
        or the single ``generator``'s stream. ``negative_prompt`` is ignored (no guidance).
        Raises GenimgError for no prompt, a size other than the model's, or bad arguments.
        """
        prompts = check_call_arguments(self, prompt, num_images_per_prompt, num_inference_steps, guidance_scale,
                                       output_type, callback_on_step_end_tensor_inputs)
        size = self.image_size
        height, width = int(height or size), int(width or size)
        if height != width or height not in self.supported_sizes:
            can = " or ".join(f"{s}x{s}" for s in self.supported_sizes)
            raise GenimgError(f"this one-step model makes {can} images, not {width}x{height}: "
                              f"use width=height={size}")
        batch = len(prompts) * num_images_per_prompt
        if isinstance(generator, list) and len(generator) != batch:
            raise GenimgError(f"got {len(generator)} generators for {batch} images; pass one per image")

        device, dtype = self._execution_device, self._network().dtype
        states, mask, pooled = self.encode_prompt(prompts)
        states = states.repeat_interleave(num_images_per_prompt, 0)
        mask = mask.repeat_interleave(num_images_per_prompt, 0)
        pooled = pooled.repeat_interleave(num_images_per_prompt, 0)
        shape = (batch, self.latent_dim)
        if latents is None:
            # With a list, randn_tensor draws each row from its own generator: batch-independent.
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise GenimgError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        latents = latents.to(device=device, dtype=dtype)
        if callback_on_step_end is not None:
            cb_kwargs = {k: latents for k in callback_on_step_end_tensor_inputs}
            latents = (callback_on_step_end(self, 0, 0, cb_kwargs) or {}).get("latents", latents)
        image = self.generate_unit(latents, states, mask, pooled).float()
        if image.shape[-1] != height:  # the network's size -> the asked size
            image = F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False)
        image = image.clamp(-1, 1)
        image = VaeImageProcessor(do_resize=False).postprocess(image, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return ImagePipelineOutput(images=image)


class EmbeddedGANPipeline(OneStepPipeline):
    """Text-to-image with the conditional GAN. Components: ``gan``, ``text_encoder``, ``tokenizer``."""

    model_component = "gan"
    model_cpu_offload_seq = "text_encoder->gan"

    def __init__(self, gan, text_encoder=None, tokenizer=None):
        super().__init__()
        self.register_modules(gan=gan, text_encoder=text_encoder, tokenizer=tokenizer)

    def generate_unit(self, latents, states, mask, pooled):
        return self.gan(latents, states, mask, pooled)


# --------------------------------------------------------------------------- builders / loader


def finish_pipeline(pipe, network, device, dtype):
    """Eval mode, device and dtype (text encoder stays fp32), no progress bar; returns ``pipe``."""
    network.eval().requires_grad_(False)
    pipe.to(device=device)
    if network.dtype != dtype:
        network.to(dtype=dtype)
    pipe.text_encoder.to(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_gan_pipeline(gan: ConditionalGANGenerator, device="cpu", dtype=torch.float32, *, text_encoder=None,
                       tokenizer=None) -> EmbeddedGANPipeline:
    """A pipeline around a generator (e.g. the EMA generator during training)."""
    if text_encoder is None or tokenizer is None:
        text_encoder, tokenizer = load_text_encoder()
    pipe = EmbeddedGANPipeline(gan=gan, text_encoder=text_encoder, tokenizer=tokenizer)
    return finish_pipeline(pipe, gan, device, _dtype(dtype))


def _weights_present(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def load_embedded_gan(folder, device="cpu", dtype=torch.float32, *, text_encoder=None,
                      tokenizer=None) -> EmbeddedGANPipeline:
    """Load the trained GAN from ``folder`` (``generator/`` with safetensors). Raises GenimgError if missing."""
    folder = Path(folder)
    if not _weights_present(folder / "generator"):
        raise GenimgError(f"no embedded GAN weights under {folder}; train and export them with: python -m genimg train gan")
    dtype = _dtype(dtype)
    gan = ConditionalGANGenerator.from_pretrained(str(folder / "generator"), torch_dtype=dtype, use_safetensors=True)
    return build_gan_pipeline(gan, device, dtype, text_encoder=text_encoder, tokenizer=tokenizer)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["TextConditioner", "ConvGeneratorNet", "ConditionalGANGenerator", "ProjectionDiscriminator",
           "OneStepPipeline", "EmbeddedGANPipeline", "build_gan_pipeline", "load_embedded_gan", "gan_config",
           "CONFIGS"]

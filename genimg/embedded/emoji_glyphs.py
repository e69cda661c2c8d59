"""genimg-emoji: text-to-image for the emoji world, as layout then drawing (a one-step generator per emoji).

Why not one network for the whole image: a latent-diffusion UNet on whole scenes (the shapes
recipe, ``python -m genimg train emoji-diffusion``) learnt backgrounds and layout in two CPU
hours but not which emoji is which (right emoji 0.02 on single prompts; docs/emoji-world.md).
The scenes of this world are few objects on a flat colour, so the image is made in two stages
that each learn or follow what they are good at:

1. **Layout** (rules, not learnt): the prompt is read with the world's parser
   (:func:`genimg.emoji.prompts.parse_prompt`) and the emoji are placed by the grammar's own layout
   rules (:func:`genimg.emoji.grammar.layout`), from the image's random stream - so the seed moves
   them within what the prompt asks. A prompt the parser does not read is drawn as one emoji from
   its whole text (the text encoder's nearest idea of it), centred.
2. **Drawing** (learnt): :class:`GlyphDecoder`, a conditional VAE decoder, draws each emoji as a
   64 px colour + alpha sprite from the MiniLM sentence vector of its name and a latent ``z`` (its
   pose and detail: the seed varies them). No font and no stored render is used at inference:
   every pixel of an emoji comes from the decoder's weights.

The sprites are scaled to their size in the layout and alpha-composited on the background
colour the prompt names (or one drawn from the seed) - written by hand: compositing a few
sprites is a few lines of tensor code no library offers in this form.
Trained by :mod:`genimg.training.emoji_glyphs` (``python -m genimg train emoji``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from genimg.embedded.diffusion import LocalDeviceMixin, _dtype
from genimg.embedded.gan import ConvGeneratorNet, _check_channels, _weights_present, check_call_arguments
from genimg.embedded.text import HIDDEN_SIZE, MAX_LENGTH, encode_prompts_cached, load_text_encoder
from genimg.errors import GenimgError

from diffusers import DiffusionPipeline, ImagePipelineOutput  # noqa: E402
from diffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402
from diffusers.image_processor import VaeImageProcessor  # noqa: E402
from diffusers.models.modeling_utils import ModelMixin  # noqa: E402

MIN_SIDE, MAX_SIDE = 64, 512  # square image sides the pipeline composes


class _SpriteEncoder(nn.Module):
    """q(z | sprite, text): a stride-2 conv stack over premultiplied RGBA, FiLM by the text at its 4x4 end."""

    def __init__(self, sprite_size: int, channels, cond_dim: int, z_dim: int):
        super().__init__()
        layers, cin = [], 4
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.film = nn.Linear(cond_dim, 2 * cin)
        side = sprite_size // 2 ** len(channels)
        self.out = nn.Sequential(nn.Linear(side * side * cin, 256), nn.SiLU(), nn.Linear(256, 2 * z_dim))

    def forward(self, sprite, c):
        h = self.convs(sprite)
        gamma, beta = self.film(c)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(h * (1 + gamma) + beta)
        mu, logvar = self.out(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 5)


class GlyphDecoder(ModelMixin, ConfigMixin):
    """A conditional VAE of emoji sprites: MiniLM sentence vector of a name + ``z`` -> colour and alpha.

    ``sprite_size`` px square sprites; the glyph's longest side is ``ink`` px at z's average pose.
    ``decode`` returns (colour (B, 3, S, S) in [0, 1], alpha (B, 1, S, S) in [0, 1]); the encoder
    is used in training only (it ships, small, so a checkpoint and the export are the same model).
    """

    @register_to_config
    def __init__(self, sprite_size: int = 64, ink: int = 52, output_size: int = 128, z_dim: int = 8,
                 cond_dim: int = 256, text_dim: int = HIDDEN_SIZE, channels: tuple = (256, 256, 128, 64),
                 refine: tuple = (1, 1, 0), encoder_channels: tuple = (32, 64, 128, 128), groups: int = 8):
        super().__init__()
        _check_channels(sprite_size, channels)
        self.text = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, 512), nn.SiLU(), nn.Linear(512, cond_dim))
        self.decoder = ConvGeneratorNet(z_dim, cond_dim, channels, groups, refine, out_channels=4, tanh=False)
        self.encoder = _SpriteEncoder(sprite_size, encoder_channels, cond_dim, z_dim)

    def condition(self, pooled: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence vectors (B, 384) -> conditioning vectors (B, cond_dim)."""
        return self.text(pooled)

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Raw decoder output (B, 4, S, S): colour and alpha logits."""
        return self.decoder(z, c)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(colour, alpha) sprites in [0, 1] from latents ``z`` (B, z_dim) and conditioning ``c``."""
        out = torch.sigmoid(self.decode_logits(z, c))
        return out[:, :3], out[:, 3:]

    def forward(self, sprite_pm: torch.Tensor, pooled: torch.Tensor, eps: torch.Tensor):
        """Training pass on premultiplied RGBA targets in [0, 1]: (logits (B, 4, S, S), KL(q || N(0, I)) per sample)."""
        c = self.condition(pooled)
        mu, logvar = self.encoder(sprite_pm * 2 - 1, c)
        z = mu + torch.exp(0.5 * logvar) * eps
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        return self.decode_logits(z, c), kl


CONFIGS: dict[str, dict] = {
    "default": {"glyphs": {"sprite_size": 64, "ink": 52, "output_size": 128, "z_dim": 8, "cond_dim": 256,
                           "channels": [256, 256, 128, 64], "refine": [1, 1, 0], "encoder_channels": [32, 64, 128, 128]}},
    # Random-weight tiny model for tests (16 px sprites).
    "tiny": {"glyphs": {"sprite_size": 16, "ink": 13, "output_size": 64, "z_dim": 4, "cond_dim": 16,
                        "channels": [16, 8], "refine": [0], "encoder_channels": [8, 8], "groups": 4}},
}


def glyph_config(config) -> dict:
    """A deep copy of a named glyph-decoder config (or of a given config dict). Raises GenimgError if unknown."""
    import copy

    if isinstance(config, dict):
        return copy.deepcopy(config)
    if config not in CONFIGS:
        raise GenimgError(f"unknown genimg-emoji config {config!r}; expected one of {', '.join(CONFIGS)}")
    return copy.deepcopy(CONFIGS[config])


# --------------------------------------------------------------------------- the scene plan


def plan_prompt(prompt: str, rng: np.random.Generator) -> tuple[list[tuple[str, str, float, float]], str]:
    """The layout of one image: ([(text to draw, size name, x, y) per emoji], background name).

    A prompt of the emoji world is placed by the grammar's rules; any other prompt becomes one
    emoji drawn from its whole text, centred, on a background drawn from ``rng``.
    """
    from genimg.emoji import grammar
    from genimg.emoji.prompts import parse_prompt
    from genimg.emoji.vocabulary import lookup

    try:
        spec = parse_prompt(prompt)
    except GenimgError:
        background = grammar.BACKGROUND_NAMES[int(rng.integers(len(grammar.BACKGROUND_NAMES)))]
        return [(prompt, "large", 0.5, 0.5)], background
    background = spec.background or grammar.BACKGROUND_NAMES[int(rng.integers(len(grammar.BACKGROUND_NAMES)))]
    objects = grammar.layout(rng, spec.kind, tuple(o.char for o in spec.objects), tuple(o.size for o in spec.objects),
                             position=spec.position, relation=spec.relation, count=spec.objects[0].count)
    return [(lookup(o.char).name, o.size, o.x, o.y) for o in objects], background


def compose(colour: torch.Tensor, alpha: torch.Tensor, placements, background, side: int, ink_fraction: float):
    """Alpha-composite sprites on a flat background: an image (3, side, side) in [0, 1].

    ``colour``/``alpha``: (N, 3|1, S, S) sprites; ``placements``: N (size fraction, x, y) - the
    emoji's longest side as a fraction of the image and its centre; ``ink_fraction``: the glyph's
    longest side as a fraction of the sprite (the decoder's ``ink / sprite_size``).
    """
    canvas = torch.tensor(background, dtype=torch.float32, device=colour.device).view(3, 1, 1) / 255.0
    canvas = canvas.expand(3, side, side).clone()
    for k, (fraction, x, y) in enumerate(placements):
        px = max(2, round(fraction * side / ink_fraction))
        rgba = torch.cat([colour[k] * alpha[k], alpha[k]], 0)[None].float()
        rgba = F.interpolate(rgba, size=(px, px), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
        left, top = round(x * side - px / 2), round(y * side - px / 2)
        x0, y0, x1, y1 = max(0, left), max(0, top), min(side, left + px), min(side, top + px)
        if x1 <= x0 or y1 <= y0:
            continue
        part = rgba[:, y0 - top:y1 - top, x0 - left:x1 - left]
        canvas[:, y0:y1, x0:x1] = part[:3] + (1 - part[3:]) * canvas[:, y0:y1, x0:x1]
    return canvas


# --------------------------------------------------------------------------- pipeline


class EmbeddedEmojiPipeline(LocalDeviceMixin, DiffusionPipeline):
    """Text-to-image of the emoji world. Components: ``glyphs`` (:class:`GlyphDecoder`), ``text_encoder``, ``tokenizer``.

    ``num_inference_steps`` and ``guidance_scale`` are accepted like the other one-step
    pipelines' and validated, but change nothing. ``callback_on_step_end`` is called once
    (step 0) with the latents of every emoji drawn (N, z_dim).
    """

    model_cpu_offload_seq = "text_encoder->glyphs"
    prompt_cache_size = 512
    _callback_tensor_inputs = ["latents"]
    # z ~ N(0, temperature^2): the pose and detail an emoji is drawn with. Below 1 keeps the rarely-seen
    # corners of the latent space out (the usual VAE trade of diversity for fidelity). Measured on the shipped
    # weights (whole evaluation set, fresh seeds 7 and 8; right emoji alone / relations / every check):
    # 0.8 -> 0.947 / 0.91 / 0.935; 0.6 -> 0.973 / 0.94 / 0.964;
    # 0.5 -> 0.978 / 0.945 / 0.971; 0.0 (one pose per emoji, no variation) -> 0.995 / 0.98 / 0.994.
    sample_temperature = 0.6

    def __init__(self, glyphs, text_encoder=None, tokenizer=None):
        super().__init__()
        self.register_modules(glyphs=glyphs, text_encoder=text_encoder, tokenizer=tokenizer)

    def _main_module(self) -> torch.nn.Module:
        return self.glyphs

    @property
    def decode_module(self) -> torch.nn.Module:
        """The network that draws the pixels (timed as the "decode" stage by the generate task)."""
        return self.glyphs.decoder

    @property
    def image_size(self) -> int:
        """The side the pipeline returns by default."""
        return int(self.glyphs.config.output_size)

    @property
    def supported_sizes(self) -> tuple[int, ...]:
        """A few square sides for the pickers; any side from 64 to 512 px works."""
        return tuple(s for s in (64, 96, 128, 192, 256, 384, 512) if MIN_SIDE <= s <= MAX_SIDE)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """MiniLM sentence vectors (B, 384) of ``texts``, cached per text (names repeat across images)."""
        if self.text_encoder is None or self.tokenizer is None:
            raise GenimgError("this EmbeddedEmojiPipeline has no text encoder; load it with load_embedded_emoji")
        _states, _mask, pooled = encode_prompts_cached(self.__dict__.setdefault("_prompt_cache", OrderedDict()),
                                                       self.text_encoder, self.tokenizer, texts, MAX_LENGTH,
                                                       self.prompt_cache_size)
        return pooled.to(self._execution_device, self.glyphs.dtype)

    @torch.no_grad()
    def draw(self, texts: list[str], z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sprites of ``texts`` with latents ``z`` (N, z_dim): (colour, alpha), float32 on the pipeline's device."""
        c = self.glyphs.condition(self.encode_texts(texts))
        colour, alpha = self.glyphs.decode(z.to(c.device, c.dtype), c)
        return colour.float(), alpha.float()

    @torch.no_grad()
    def __call__(self, prompt=None, negative_prompt=None, height: int | None = None, width: int | None = None,
                 num_inference_steps: int = 1, guidance_scale: float = 0.0, num_images_per_prompt: int = 1,
                 generator=None, latents=None, output_type: str = "pil", return_dict: bool = True,
                 callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",)):
        """Generate images for ``prompt``; returns ``ImagePipelineOutput`` (or a tuple).

        Image i depends only on its prompt and on ``generator[i]`` (one per image) or the single
        ``generator``'s stream: the layout and each emoji's latent are drawn from it.
        ``negative_prompt`` is ignored. Raises GenimgError for no prompt, a side outside 64-512 px,
        a non-square size or bad arguments.
        """
        from genimg.emoji.grammar import BACKGROUNDS, SIZES

        prompts = check_call_arguments(self, prompt, num_images_per_prompt, num_inference_steps, guidance_scale,
                                       output_type, callback_on_step_end_tensor_inputs)
        if latents is not None:
            raise GenimgError("genimg-emoji draws its own latents (one per emoji); pass a generator, not latents")
        height, width = int(height or self.image_size), int(width or self.image_size)
        if height != width or not MIN_SIDE <= height <= MAX_SIDE:
            raise GenimgError(f"genimg-emoji makes square images from {MIN_SIDE} to {MAX_SIDE} px, "
                              f"not {width}x{height}: use width=height={self.image_size}")
        batch = len(prompts) * num_images_per_prompt
        if isinstance(generator, list) and len(generator) != batch:
            raise GenimgError(f"got {len(generator)} generators for {batch} images; pass one per image")

        z_dim = int(self.glyphs.config.z_dim)
        plans, texts, zs = [], [], []
        for i in range(batch):
            g = generator[i] if isinstance(generator, list) else generator
            gdev = g.device if g is not None else "cpu"
            # The layout's stream is seeded from the image's own generator (one draw), so a seed fixes both.
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=gdev).item())
            objects, background = plan_prompt(prompts[i // num_images_per_prompt],
                                              np.random.Generator(np.random.PCG64(seed)))
            plans.append((objects, background))
            texts += [text for text, *_ in objects]
            zs.append(torch.randn((len(objects), z_dim), generator=g, device=gdev).cpu())
        z = torch.cat(zs) * self.sample_temperature
        if callback_on_step_end is not None:
            cb_kwargs = {k: z for k in callback_on_step_end_tensor_inputs}
            z = (callback_on_step_end(self, 0, 0, cb_kwargs) or {}).get("latents", z)
        colour, alpha = self.draw(texts, z)
        ink_fraction = self.glyphs.config.ink / self.glyphs.config.sprite_size
        images, k = [], 0
        for objects, background in plans:
            n = len(objects)
            images.append(compose(colour[k:k + n], alpha[k:k + n], [(SIZES[s], x, y) for _t, s, x, y in objects],
                                  BACKGROUNDS[background], height, ink_fraction))
            k += n
        image = torch.stack(images) * 2 - 1
        image = VaeImageProcessor(do_resize=False).postprocess(image, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return ImagePipelineOutput(images=image)


def build_emoji_pipeline(glyphs: GlyphDecoder, device="cpu", dtype=torch.float32, *, text_encoder=None,
                         tokenizer=None) -> EmbeddedEmojiPipeline:
    """A pipeline around a glyph decoder (e.g. the EMA decoder during training)."""
    from genimg.embedded.gan import finish_pipeline

    if text_encoder is None or tokenizer is None:
        text_encoder, tokenizer = load_text_encoder()
    pipe = EmbeddedEmojiPipeline(glyphs=glyphs, text_encoder=text_encoder, tokenizer=tokenizer)
    return finish_pipeline(pipe, glyphs, device, _dtype(dtype))


def load_embedded_emoji(folder, device="cpu", dtype=torch.float32, *, text_encoder=None,
                        tokenizer=None) -> EmbeddedEmojiPipeline:
    """Load genimg-emoji from ``folder`` (``glyphs/`` with safetensors). Raises GenimgError if missing."""
    folder = Path(folder)
    if not _weights_present(folder / "glyphs"):
        raise GenimgError(f"no genimg-emoji weights under {folder}; train and export them with: "
                          "python -m genimg train emoji --export")
    dtype = _dtype(dtype)
    glyphs = GlyphDecoder.from_pretrained(str(folder / "glyphs"), torch_dtype=dtype, use_safetensors=True)
    return build_emoji_pipeline(glyphs, device, dtype, text_encoder=text_encoder, tokenizer=tokenizer)


__all__ = ["GlyphDecoder", "EmbeddedEmojiPipeline", "build_emoji_pipeline", "load_embedded_emoji", "glyph_config",
           "plan_prompt", "compose", "CONFIGS"]

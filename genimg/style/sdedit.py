"""Diffusion style transfer by SDEdit (Meng et al. 2022): noise the content part-way, denoise with a style prompt.

Runs on any text-to-image diffusers model in the pool through its img2img variant
(``Lease.variant("img2img")`` → ``from_pipe``: the loaded weights are shared, not copied).
``strength`` is img2img's: the fraction of the noise schedule applied to the content
(0 keeps it, 1 ignores it).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from genimg.errors import GenimgError


def effective_steps(steps: int, strength: float) -> int:
    """Steps to ask img2img for so that at least one denoising step runs at this strength.

    img2img runs ``int(steps * strength)`` steps; one-step models (SD-Turbo) with strength
    0.5 would run none, so the schedule is lengthened until one step remains.
    """
    return max(int(steps), math.ceil(1.0 / strength - 1e-9)) if strength > 0 else int(steps)


def sdedit(lease: Any, content: np.ndarray, prompt: str, strength: float, steps: int, guidance: float,
           seed: int, negative_prompt: str = "", size_multiple: int = 8,
           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Restyle ``content`` (uint8 RGB) with ``prompt`` on the leased text-to-image model.

    The image is processed at the nearest multiple of ``size_multiple`` (the VAE's) and
    returned at the content's size. Returns (uint8 RGB, the parameters used).
    Raises GenimgError when the model has no img2img variant.
    """
    h, w = content.shape[:2]
    if strength <= 0.0 or int(effective_steps(steps, strength) * strength) < 1:
        return content.copy(), {"steps": 0, "denoising_steps": 0, "note": "strength 0: no noise added, content returned"}
    pipe = lease.variant("img2img")
    run_w = max(size_multiple, round(w / size_multiple) * size_multiple)
    run_h = max(size_multiple, round(h / size_multiple) * size_multiple)
    image = Image.fromarray(content)
    if (run_w, run_h) != (w, h):
        image = image.resize((run_w, run_h), Image.Resampling.LANCZOS)
    n_steps = effective_steps(steps, strength)
    denoise = int(n_steps * strength)
    done = [0]

    def on_step_end(_pipe, _step, _timestep, callback_kwargs):
        done[0] += 1
        if progress is not None:
            progress(min(done[0], denoise), denoise)
        return callback_kwargs

    generator = torch.Generator("cpu").manual_seed(int(seed))
    try:
        with torch.inference_mode():
            output = pipe(prompt=prompt, negative_prompt=negative_prompt or None, image=image, strength=float(strength),
                          num_inference_steps=n_steps, guidance_scale=float(guidance), generator=generator,
                          callback_on_step_end=on_step_end, output_type="pil")
    except ValueError as exc:  # diffusers' own parameter checks (e.g. a size the model cannot take)
        raise GenimgError(f"SDEdit on model {lease.handle.spec.id!r}: {exc}") from None
    result = output.images[0].convert("RGB")
    if result.size != (w, h):
        result = result.resize((w, h), Image.Resampling.LANCZOS)
    return np.asarray(result), {"steps": n_steps, "denoising_steps": denoise, "run_size": [run_w, run_h]}

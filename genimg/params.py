"""Request parameters shared by every task: their vocabulary and their validation (one set of rules and words)."""

from __future__ import annotations

import math
from typing import Any

from genimg.config import Limits
from genimg.errors import GenimgError

# Scheduler choice -> (diffusers class, the sampler name AUTOMATIC1111/Civitai use).
SCHEDULERS: dict[str, tuple[str, str]] = {
    "euler": ("EulerDiscreteScheduler", "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", "DPM++ 2M"),
    "ddim": ("DDIMScheduler", "DDIM"),
    "unipc": ("UniPCMultistepScheduler", "UniPC"),
    "lcm": ("LCMScheduler", "LCM"),
}
DEFAULT_SCHEDULER = "default"  # whatever the model ships with
MAX_SEED = 2**32 - 1


def scheduler_names() -> list[str]:
    """Scheduler choices offered to users, the model's own default first."""
    return [DEFAULT_SCHEDULER, *SCHEDULERS]


def check_prompt(prompt: Any, limits: Limits, *, what: str = "prompt", allow_empty: bool = False) -> str:
    """Return the prompt stripped; GenimgError when empty (unless allowed), not text, or too long."""
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise GenimgError(f"{what} must be text, got {type(prompt).__name__}")
    prompt = prompt.strip()
    if not prompt and not allow_empty:
        raise GenimgError(f"{what} is empty: describe the image you want")
    if len(prompt) > limits.max_prompt_chars:
        raise GenimgError(f"{what} is {len(prompt)} characters long; the limit here is {limits.max_prompt_chars}")
    if "\x00" in prompt:
        raise GenimgError(f"{what} contains a NUL character")
    return prompt


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """Return ``value`` as an int in [low, high]; GenimgError otherwise (NaN, inf, text, fractions)."""
    if isinstance(value, bool):
        raise GenimgError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise GenimgError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise GenimgError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise GenimgError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise GenimgError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_float(value: Any, name: str, low: float, high: float) -> float:
    """Return ``value`` as a finite float in [low, high]; GenimgError otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GenimgError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise GenimgError(f"{name} must be a finite number, got {value!r}")
    if not low <= number <= high:
        raise GenimgError(f"{name} must be between {low:g} and {high:g}, got {number:g}")
    return number


def check_size(width: Any, height: Any, limits: Limits, multiple: int = 8) -> tuple[int, int]:
    """Return (width, height) validated against the limits and the model's size multiple."""
    w = check_int(width, "width", multiple, limits.max_side)
    h = check_int(height, "height", multiple, limits.max_side)
    if w % multiple or h % multiple:
        raise GenimgError(f"width and height must be multiples of {multiple} for this model, got {w}x{h}")
    if w * h > limits.max_pixels:
        raise GenimgError(f"{w}x{h} is {w * h} pixels; the limit here is {limits.max_pixels}")
    return w, h

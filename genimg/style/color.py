"""Classical colour/tonal transfer and the "preserve content colours" option.

Images here are uint8 RGB arrays (H, W, 3) in and out. Colour conversions are
scikit-image's (``rgb2lab``/``lab2rgb``: CIELAB, D65), histogram matching is
``skimage.exposure.match_histograms``; only Reinhard's mean/std transfer — four lines
that no library we use provides — is written here.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage import color, exposure


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float RGB in 0..1 → uint8, rounded and clipped."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float64 CIELAB (L 0..100, a/b about -128..127)."""
    return color.rgb2lab(rgb.astype(np.float64) / 255.0)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB → uint8 RGB (out-of-gamut colours clipped to the sRGB cube)."""
    with warnings.catch_warnings():
        # Moving a colour's lightness can leave the gamut; clipping is the intended result.
        warnings.filterwarnings("ignore", message=".*negative Z values.*")
        return to_uint8(color.lab2rgb(lab))


def blend(content: np.ndarray, result: np.ndarray, strength: float) -> np.ndarray:
    """``content + strength * (result - content)`` in uint8 RGB (strength 0 → content, 1 → result)."""
    if strength >= 1.0:
        return result
    if strength <= 0.0:
        return content.copy()
    mixed = content.astype(np.float32) + strength * (result.astype(np.float32) - content.astype(np.float32))
    return (np.clip(mixed, 0, 255) + 0.5).astype(np.uint8)


def keep_content_colors(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance-only transfer: the result's lightness with the content's chroma.

    Takes L from ``result`` and a/b from ``content`` in CIELAB (both the same size), so
    any method changes only light and texture, never the content's hues. Colours that
    fall outside sRGB at the new lightness are clipped.
    """
    if result.shape != content.shape:
        raise ValueError(f"result {result.shape} and content {content.shape} differ in size")
    lab = rgb_to_lab(content)
    lab[..., 0] = rgb_to_lab(result)[..., 0]
    return lab_to_rgb(lab)


def reinhard(content: np.ndarray, style: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer: match per-channel mean and std in CIELAB.

    ``strength`` moves the target statistics from the content's own (0: unchanged) to
    the style image's (1). Returns uint8 RGB the size of ``content``.
    """
    if strength <= 0.0:
        return content.copy()
    src = rgb_to_lab(content)
    ref = rgb_to_lab(style)
    axes = (0, 1)
    mu_s, sd_s = src.mean(axis=axes), src.std(axis=axes)
    mu_r, sd_r = ref.mean(axis=axes), ref.std(axis=axes)
    mu_t = mu_s + strength * (mu_r - mu_s)
    sd_t = sd_s + strength * (sd_r - sd_s)
    # A flat channel (std 0) has no spread to rescale: only its mean moves.
    scale = np.divide(sd_t, sd_s, out=np.ones_like(sd_s), where=sd_s > 1e-6)
    return lab_to_rgb((src - mu_s) * scale + mu_t)


def histogram_match(content: np.ndarray, style: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Per-channel RGB histogram matching (``skimage.exposure.match_histograms``).

    ``strength`` blends the matched image with the content (0: unchanged). Returns uint8 RGB.
    """
    if strength <= 0.0:
        return content.copy()
    matched = exposure.match_histograms(content, style, channel_axis=-1)  # uint8 in, uint8 out
    return blend(content, np.asarray(matched, dtype=np.uint8), strength)

"""Perceptual (deep-feature) distances between an image and its reference.

- :func:`lpips` — LPIPS v0.1 (AlexNet) where its weights are present (see features.py);
  otherwise ModelUnavailableError with the reason.
- :func:`effnet_distance` — "EffNetLite0 feature distance": LPIPS's *un-learned baseline*
  recipe (Zhang et al. 2018, "lin=False") on ImageNet EfficientNet-Lite0: at the last block of
  each of five resolutions (strides 2–32) the activations are unit-normalised over channels,
  squared differences are summed over channels and averaged over positions, and the five
  layer values are averaged. 0 = identical features; each layer term is at most 4. It is not
  LPIPS (no learned layer weights) and its numbers are on their own scale.
  Images are compared at their own resolution, both downscaled alike when the longer side
  exceeds 512 px, and must be at least 32 px a side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genimg.errors import GenimgError
from genimg.metrics.arrays import intra_op_threads, match_pair
from genimg.metrics.features import _as_float_images, _resize, effnet_lite0, lpips_model

MAX_SIDE = 512
MIN_SIDE = 32


def _pair_tensors(image: Any, reference: Any, resize_to_match: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    a, b = match_pair(image, reference, resize_to_match=resize_to_match)
    h, w = a.shape[1:3]
    if min(h, w) < MIN_SIDE:
        raise GenimgError(f"feature distances need images at least {MIN_SIDE}x{MIN_SIDE}, got {w}x{h}")
    x = torch.stack(_as_float_images(list(a)))
    y = torch.stack(_as_float_images(list(b)))
    if max(h, w) > MAX_SIDE:
        size = (max(MIN_SIDE, round(h * MAX_SIDE / max(h, w))), max(MIN_SIDE, round(w * MAX_SIDE / max(h, w))))
        x, y = _resize(x, size), _resize(y, size)
    batched = isinstance(image, (list, tuple)) or (hasattr(image, "ndim") and image.ndim == 4)
    return x, y, batched


def _normalise(f: torch.Tensor) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


def effnet_distance(image: Any, reference: Any, *, extractor: Any = None,
                    resize_to_match: bool = False) -> float | np.ndarray:
    """EffNetLite0 feature distance (see module docstring); lower = more similar.

    Returns a float, or one value per image for a batch. Raises GenimgError on mismatched
    or tiny images, ModelUnavailableError when the weights are missing.
    """
    x, y, batched = _pair_tensors(image, reference, resize_to_match)
    extractor = extractor or effnet_lite0()
    values = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        fx = extractor.stages((x[i:i + 1] - 127.0) / 128.0)
        fy = extractor.stages((y[i:i + 1] - 127.0) / 128.0)
        layers = [((_normalise(a) - _normalise(b)) ** 2).sum(dim=1).mean() for a, b in zip(fx, fy)]
        values[i] = float(torch.stack(layers).mean())
    return values if batched else float(values[0])


def lpips(image: Any, reference: Any, *, resize_to_match: bool = False) -> float | np.ndarray:
    """LPIPS (AlexNet, v0.1); lower = more similar. Needs its weights (see features.py).

    Returns a float, or one per image for a batch. Raises ModelUnavailableError without
    weights, GenimgError on mismatched or tiny images.
    """
    model = lpips_model()
    x, y, batched = _pair_tensors(image, reference, resize_to_match)
    with model.lock, intra_op_threads():
        values = model(x / 127.5 - 1.0, y / 127.5 - 1.0).double().numpy()
    return values if batched else float(values[0])

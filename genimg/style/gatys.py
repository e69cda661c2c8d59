"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2016) over a CNN feature extractor.

The image's pixels are optimised (Adam, starting from the content image) to keep the
content's feature maps and take on the style image's Gram matrices. Losses are normalised
per layer by the target's own magnitude, so the default weights mean the same for
VGG19 and EfficientNet-Lite0 and at any size:

    L = wc · Σ_l ‖F_l(x) − F_l(c)‖² / ‖F_l(c)‖²  +  s · ws · Σ_l ‖G_l(x) − G_l(s)‖² / ‖G_l(s)‖²  +  wtv · TV(x)

``s`` is the strength: 0 leaves only the content loss, whose minimum is the start point,
so the content comes back unchanged. Early stop: when the loss improved by less than
``tolerance`` (relative) over the last ``patience`` iterations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from genimg.style.features import FeatureExtractor, gram
from genimg.style.scores import to_tensor

DEFAULT_ITERATIONS = 100
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 5.0
DEFAULT_TV_WEIGHT = 2.0
LEARNING_RATE = 0.05    # Adam's step in 0..1 pixel units
COARSE_FRACTION = 2 / 3  # share of the iterations spent at half resolution (coarse to fine)
COARSE_ABOVE = 256       # images with a longer side above this start at half resolution


@dataclass
class GatysInfo:
    """How the optimisation went."""

    iterations: int = 0
    stopped_early: bool = False
    losses: list[float] = field(default_factory=list)   # total loss every iteration
    scales: list[list[int]] = field(default_factory=list)  # [height, width] of each stage
    seconds: float = 0.0


def _tv(x: torch.Tensor) -> torch.Tensor:
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


class _Objective:
    """The Gatys loss for one resolution: targets computed once, evaluated per iteration."""

    def __init__(self, extractor: FeatureExtractor, c: torch.Tensor, s: torch.Tensor,
                 content_weight: float, style_weight: float, tv_weight: float):
        self.extractor = extractor
        self.weights = (content_weight, style_weight, tv_weight)
        with torch.no_grad():
            fc, fs = extractor(c), extractor(s)
            self.content = {k: fc[k] for k in extractor.content_layers}
            self.content_norm = {k: v.pow(2).sum().clamp_min(1e-12) for k, v in self.content.items()}
            self.style = {k: gram(fs[k]) for k in extractor.style_layers}
            self.style_norm = {k: v.pow(2).sum().clamp_min(1e-12) for k, v in self.style.items()}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        wc, ws, wtv = self.weights
        f = self.extractor(x)
        loss_c = sum((f[k] - self.content[k]).pow(2).sum() / self.content_norm[k] for k in self.content)
        loss_s = sum((gram(f[k]) - self.style[k]).pow(2).sum() / self.style_norm[k] for k in self.style)
        return wc * loss_c + ws * loss_s + wtv * _tv(x)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)


def stylize(extractor: FeatureExtractor, content: np.ndarray, style: np.ndarray, strength: float = 1.0,
            iterations: int = DEFAULT_ITERATIONS, content_weight: float = DEFAULT_CONTENT_WEIGHT,
            style_weight: float = DEFAULT_STYLE_WEIGHT, tv_weight: float = DEFAULT_TV_WEIGHT,
            tolerance: float = 1e-3, patience: int = 10,
            progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, GatysInfo]:
    """Optimise ``content`` (uint8 RGB) towards ``style`` (uint8 RGB, any size).

    Images larger than COARSE_ABOVE are first optimised at half resolution for
    COARSE_FRACTION of the iterations, then refined at full size (about half the cost of
    full-size iterations throughout).
    Returns (uint8 RGB the size of ``content``, GatysInfo). ``progress(i, iterations)`` is
    called after every iteration; ``tolerance`` 0 switches early stopping off (the
    criterion: relative loss drop over ``patience`` iterations below ``tolerance``).
    """
    info = GatysInfo()
    started = time.perf_counter()
    if strength <= 0.0:  # only the content term: the start point is already its minimum
        info.seconds = time.perf_counter() - started
        return content.copy(), info
    device = next(extractor.parameters()).device
    c_full = to_tensor(content, device)
    s_full = to_tensor(style, device)
    h, w = c_full.shape[2:]
    stages: list[tuple[tuple[int, int], int]] = [((h, w), iterations)]
    if max(h, w) > COARSE_ABOVE and iterations >= 4:
        coarse = int(iterations * COARSE_FRACTION)
        half = (max(16, h // 2), max(16, w // 2))
        stages = [(half, coarse), ((h, w), iterations - coarse)]
    x: torch.Tensor | None = None
    done = 0
    for (size, budget) in stages:
        scale = size[0] / h
        s = s_full if scale == 1 else _resize(s_full, (max(16, round(s_full.shape[2] * scale)),
                                                       max(16, round(s_full.shape[3] * scale))))
        c = c_full if size == (h, w) else _resize(c_full, size)
        objective = _Objective(extractor, c, s, content_weight, style_weight * strength, tv_weight)
        start = c if x is None else _resize(x, size).clamp(0.0, 1.0)
        x = start.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=LEARNING_RATE)
        info.scales.append(list(size))
        window: list[float] = []
        for _ in range(budget):
            loss = objective(x)
            # Gradient with respect to the image only: the extractor's (shared) weights
            # get no .grad, so other requests using them are never disturbed.
            (x.grad,) = torch.autograd.grad(loss, x)
            optimizer.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            value = float(loss.detach())
            info.losses.append(value)
            done += 1
            if progress is not None:
                progress(done, iterations)
            window.append(value)
            if tolerance > 0 and len(window) > patience:
                before = window.pop(0)
                if before - value < tolerance * abs(before):
                    break  # converged at this scale; a coarse stage still hands on to the fine one
    info.iterations = done
    info.stopped_early = done < iterations
    if progress is not None and done < iterations:
        progress(iterations, iterations)
    out = x.detach()[0].permute(1, 2, 0).float().cpu().numpy()
    info.seconds = time.perf_counter() - started
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), info

"""Content-preservation and style-match scores for a stylized image.

- ``ssim``: SSIM of luminance between result and content (``rgb2gray``, data range 1),
  computed by :func:`genimg.metrics.full_reference.ssim` — equal to scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
  1 = same structure.
- ``content_distance``: :func:`genimg.metrics.perceptual.effnet_distance` to the content —
  the "EffNetLite0 feature distance" (LPIPS's un-learned recipe on EfficientNet-Lite0,
  5 stages; 0 = identical features; not LPIPS).
- ``gram_distance``: style distance to the style image in the same extractor and stages —
  per stage, the relative Frobenius distance ``‖G(result) − G(style)‖ / ‖G(style)‖`` of
  Gram matrices (normalised by H·W, so sizes need not match), averaged.
- ``color_distance``: Hellinger distance between the 8×8×8-bin RGB histograms of result
  and style image (0 = same colour distribution, 1 = disjoint).

Every method is scored with the same extractor, so the numbers compare across methods.
Feature scores see images scaled to at most ``SCORE_SIDE`` pixels (as the metrics do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from genimg.style.features import gram

SCORE_SIDE = 512
_BINS = 8


@dataclass
class Scores:
    """Scores of one result (None: not applicable, e.g. no style image)."""

    ssim: float
    content_distance: float | None = None
    gram_distance: float | None = None
    color_distance: float | None = None
    extractor: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ssim_luminance(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between the luminance of two same-size uint8 RGB images (the project's SSIM)."""
    from skimage.color import rgb2gray

    from genimg.metrics.full_reference import ssim

    return float(ssim(rgb2gray(a), rgb2gray(b), data_range=1.0))


def color_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance between the joint RGB histograms (8 bins per channel) of two images."""
    def hist(x: np.ndarray) -> np.ndarray:
        idx = (x.reshape(-1, 3).astype(np.int64) * _BINS) // 256
        flat = idx[:, 0] * _BINS * _BINS + idx[:, 1] * _BINS + idx[:, 2]
        h = np.bincount(flat, minlength=_BINS ** 3).astype(np.float64)
        return h / h.sum()

    bc = np.sqrt(hist(a) * hist(b)).sum()  # Bhattacharyya coefficient
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def _score_size(h: int, w: int) -> tuple[int, int]:
    """The size feature scores see: at most SCORE_SIDE on the longer side (the metrics' rule)."""
    if max(h, w) <= SCORE_SIDE:
        return h, w
    return max(32, round(h * SCORE_SIDE / max(h, w))), max(32, round(w * SCORE_SIDE / max(h, w)))


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 RGB (H, W, 3) → float32 (1, 3, H, W) in 0..1 on ``device``."""
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:  # torch warns on read-only memory (PIL-backed arrays)
        x = x.copy()
    return torch.from_numpy(x).to(device).permute(2, 0, 1)[None].float() / 255.0


def stages(image: np.ndarray) -> list[torch.Tensor]:
    """The metrics' EfficientNet-Lite0 stage outputs of ``image``, preprocessed as effnet_distance does."""
    from genimg.metrics.features import effnet_lite0

    extractor = effnet_lite0()
    return extractor.stages(extractor.preprocess(image, size=_score_size(*image.shape[:2])))


def feature_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> float:
    """EffNetLite0 feature distance from stage outputs — the formula of
    :func:`genimg.metrics.perceptual.effnet_distance` (a test holds them equal), taking
    features so each image goes through the network once per request, not once per pair."""
    def unit(f: torch.Tensor) -> torch.Tensor:
        return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)

    layers = [((unit(a) - unit(b)) ** 2).sum(dim=1).mean() for a, b in zip(fa, fb)]
    return float(torch.stack(layers).mean())


def gram_distance(fa: list[torch.Tensor], fs: list[torch.Tensor]) -> float:
    """Mean over stages of ‖G(a) − G(s)‖_F / ‖G(s)‖_F."""
    total = 0.0
    for a, s in zip(fa, fs):
        ga, gs = gram(a.float()), gram(s.float())
        total += float((ga - gs).norm() / (gs.norm() + 1e-12))
    return total / len(fa)


def score(result: np.ndarray, content: np.ndarray, style: np.ndarray | None,
          content_stages: list[torch.Tensor] | None = None, style_stages: list[torch.Tensor] | None = None,
          features: bool = True) -> Scores:
    """All scores of ``result`` against ``content`` (same size) and ``style`` (any size, or None).

    ``content_stages``/``style_stages`` (from :func:`stages`) save recomputing those
    features for every method; ``features`` False skips the feature scores.
    """
    scores = Scores(ssim=round(ssim_luminance(result, content), 4))
    if style is not None:
        scores.color_distance = round(color_distance(result, style), 4)
    if not features:
        return scores
    scores.extractor = "EfficientNet-Lite0 (ImageNet)"
    fr = stages(result)
    fc = content_stages if content_stages is not None else stages(content)
    scores.content_distance = round(feature_distance(fr, fc), 4)
    if style is not None:
        fs = style_stages if style_stages is not None else stages(style)
        scores.gram_distance = round(gram_distance(fr, fs), 4)
    return scores

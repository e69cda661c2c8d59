"""Diversity of a set of images, on EfficientNet-Lite0 pooled features.

- mean pairwise feature distance: the mean cosine distance (1 − cos) over all pairs i < j;
  0 when every image is the same; about 0.84 over 21 unrelated scikit-image sample images;
- near-duplicate rate: the share of images that have another image in the set with cosine
  similarity ≥ ``NEAR_DUPLICATE_COSINE`` (0.90), set by measurement (docs/metrics.md): for 17
  scikit-image sample images, a JPEG q=75 copy, a 0.9× rescale and a 5%-per-side crop kept a
  similarity of 0.91–1.00 and σ=3 noise kept ≥ 0.90 on photos (but fell to 0.76–0.86 on
  synthetic, binary or texture images: those copies are missed); the two halves of one photo
  scored 0.53 and 0.82, and different images at most 0.49;
- pixel near-duplicate rate: the share of same-size images with another image within
  ``NEAR_DUPLICATE_RMS`` (0.02) RMS pixel distance - the same picture, for flat synthetic scenes
  where the feature rate cannot tell distinct images apart (docs/training-tracking.md: it called
  38-50 % of distinct renders of one caption near-duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genimg.errors import GenimgError

NEAR_DUPLICATE_COSINE = 0.90
# Distinct ground-truth renders of one caption measured >= 0.09 apart (a 1 px shift of a small shape alone is ~0.07).
NEAR_DUPLICATE_RMS = 0.02


@dataclass
class DiversityResult:
    n: int
    mean_pairwise_distance: float
    near_duplicate_rate: float
    near_duplicate_pairs: list[tuple[int, int, float]]   # (i, j, cosine similarity)
    threshold: float
    feature: str = "EffNetLite0"

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean_pairwise_distance": self.mean_pairwise_distance,
                "near_duplicate_rate": self.near_duplicate_rate,
                "near_duplicate_pairs": [list(p) for p in self.near_duplicate_pairs],
                "threshold": self.threshold, "feature": self.feature}


def cosine_similarities(features: Any) -> np.ndarray:
    """(n, n) cosine similarity matrix of (n, d) features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) == 0:
        raise GenimgError(f"features must be a non-empty (n, d) array, got shape {f.shape}")
    unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def diversity_from_features(features: Any, threshold: float = NEAR_DUPLICATE_COSINE) -> DiversityResult:
    """Mean pairwise cosine distance and near-duplicate rate of (n ≥ 2, d) features.

    Raises GenimgError for fewer than 2 rows or a threshold outside (0, 1].
    """
    if not 0 < threshold <= 1:
        raise GenimgError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    sim = cosine_similarities(features)
    n = len(sim)
    if n < 2:
        raise GenimgError(f"diversity needs at least 2 images, got {n}")
    upper = np.triu_indices(n, k=1)
    mean_distance = float(np.mean(1.0 - sim[upper]))
    close = sim >= threshold
    np.fill_diagonal(close, False)
    pairs = [(int(i), int(j), float(sim[i, j])) for i, j in zip(*upper) if close[i, j]]
    return DiversityResult(n=n, mean_pairwise_distance=mean_distance, near_duplicate_rate=float(close.any(axis=1).mean()),
                           near_duplicate_pairs=pairs, threshold=threshold)


def diversity(images: Any, *, extractor: Any = None, threshold: float = NEAR_DUPLICATE_COSINE) -> DiversityResult:
    """Diversity of ≥ 2 images (any sizes) on EffNetLite0 pooled features.

    Raises GenimgError for fewer than 2 images, ModelUnavailableError without the weights.
    """
    from genimg.metrics.features import effnet_lite0

    extractor = extractor or effnet_lite0()
    return diversity_from_features(extractor.pooled(images), threshold)


def pairwise_rms(images: Any) -> np.ndarray:
    """(n, n) RMS pixel distances (0..1 for images in [0, 1]) between ``images``: n >= 2 same-size float
    (H, W, C) arrays, stacked or a list. Raises GenimgError for fewer than 2 images or mixed sizes."""
    try:
        x = np.stack([np.asarray(im, dtype=np.float64) for im in images]).reshape(len(images), -1)
    except ValueError:
        raise GenimgError("pixel distances need images of one size") from None
    if len(x) < 2:
        raise GenimgError(f"diversity needs at least 2 images, got {len(x)}")
    # Squared distances through the Gram matrix: n is small (seeds of one prompt), pixels many.
    sq = (x * x).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0) / x.shape[1])


def pixel_near_duplicate_rate(images: Any, threshold: float = NEAR_DUPLICATE_RMS) -> float:
    """Share of ``images`` (as :func:`pairwise_rms` takes them) that have another image within ``threshold``
    RMS pixel distance. Raises GenimgError for fewer than 2 images or mixed sizes."""
    d = pairwise_rms(images)
    np.fill_diagonal(d, np.inf)
    return float((d.min(axis=1) < threshold).mean())

"""Set-level metrics: Fréchet distance and KID between two sets of feature vectors.

The formulas are written here (no library computes them on arbitrary features offline):

- Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the two sets:
  ``|μa − μb|² + Tr(Σa) + Tr(Σb) − 2·Tr((Σa Σb)^½)``. ``Tr((Σa Σb)^½)`` is computed exactly
  without a general matrix square root: with centred data matrices Xa, Xb it is the nuclear
  norm of ``Xa Xbᵀ / √((na−1)(nb−1))`` (the non-zero eigenvalues of Σa Σb are the squared
  singular values of that matrix), or for sets larger than the feature dimension the trace
  of ``(Σa^½ Σb Σa^½)^½`` from symmetric eigendecompositions. Both are stable for the singular
  covariances that small sets give, where ``scipy.linalg.sqrtm`` returns complex noise.
- KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
  ``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets (default 100 subsets of up to
  1000 images, drawn without replacement, as in the paper and torch-fidelity).

Confidence intervals are percentile bootstraps over images (both sets resampled with
replacement). For KID the resampled U-statistic leaves out pairs of copies of one image, so a
resample does not see an image as its own neighbour (which would bias it upwards).

FD of a small set is biased upwards and noisy (Chong & Forsyth 2020): its covariance has
``d(d+1)/2`` entries (d = 1280 for EfficientNet-Lite0) and with n < d images it is singular.
Results carry a warning when n < 2·d for FD, and when n < 100 for KID (its subset spread is then
of the order of the differences one usually wants to see).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genimg.errors import GenimgError


@dataclass
class SetMetricResult:
    """One set-level number with its uncertainty and, when it cannot mean much, a warning."""

    name: str                      # e.g. "FD-EffNetLite0"
    value: float
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n_a: int
    n_b: int
    feature_dim: int
    warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "ci": [self.ci_low, self.ci_high], "confidence": self.confidence,
                "n_a": self.n_a, "n_b": self.n_b, "feature_dim": self.feature_dim, "warning": self.warning, **self.extra}


def _features(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 2:
        raise GenimgError(f"{what} must be a (n, d) array of feature vectors, got shape {a.shape}")
    if a.shape[0] == 0:
        raise GenimgError(f"{what} is empty: give at least 2 images per set")
    if not np.isfinite(a).all():
        raise GenimgError(f"{what} has NaN or infinite values")
    return a


def _pair(a: Any, b: Any, minimum: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    fa, fb = _features(a, "set A"), _features(b, "set B")
    if fa.shape[1] != fb.shape[1]:
        raise GenimgError(f"the two sets have features of different sizes ({fa.shape[1]} vs {fb.shape[1]})")
    for name, f in (("A", fa), ("B", fb)):
        if f.shape[0] < minimum:
            raise GenimgError(f"{metric} needs at least {minimum} images per set; set {name} has {f.shape[0]}")
    return fa, fb


def _trace_sqrt_product(xa: np.ndarray, xb: np.ndarray) -> float:
    """Tr((Σa Σb)^½) for centred data matrices xa (na, d), xb (nb, d)."""
    na, d = xa.shape
    nb = xb.shape[0]
    if min(na, nb) <= d:
        singular = np.linalg.svd(xa @ xb.T, compute_uv=False)
        return float(singular.sum() / np.sqrt((na - 1) * (nb - 1)))
    sa = xa.T @ xa / (na - 1)
    sb = xb.T @ xb / (nb - 1)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root_a @ sb @ root_a
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets (≥ 2 rows each).

    Returns a float ≥ 0 (tiny negative rounding is clipped). Raises GenimgError on bad input.
    """
    fa, fb = _pair(features_a, features_b, 2, "FD")
    return _fd(fa, fb)


def _fd(fa: np.ndarray, fb: np.ndarray) -> float:
    mu_a, mu_b = fa.mean(axis=0), fb.mean(axis=0)
    xa, xb = fa - mu_a, fb - mu_b
    trace_a = float((xa * xa).sum() / (len(fa) - 1))
    trace_b = float((xb * xb).sum() / (len(fb) - 1))
    value = float(((mu_a - mu_b) ** 2).sum()) + trace_a + trace_b - 2.0 * _trace_sqrt_product(xa, xb)
    return max(value, 0.0)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, ix: np.ndarray | None = None, iy: np.ndarray | None = None) -> float:
    """Unbiased MMD² with the cubic kernel. ``ix``/``iy``: original indices of the rows, so
    pairs of copies of one image (bootstrap resamples) are left out like the diagonal."""
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    if ix is None:
        m, n = len(x), len(y)
        sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    else:
        keep_x = ix[:, None] != ix[None, :]
        keep_y = iy[:, None] != iy[None, :]
        sxx = kxx[keep_x].mean() if keep_x.any() else 0.0
        syy = kyy[keep_y].mean() if keep_y.any() else 0.0
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(features_a: Any, features_b: Any, *, subset_size: int = 1000, subsets: int = 100,
        seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD² (cubic polynomial kernel) averaged over random subsets.

    Subsets hold min(subset_size, na, nb) rows of each set, drawn without replacement; when
    both sets fit in one subset a single exact value is returned (std 0).
    Returns (mean, std over subsets). Raises GenimgError when a set has < 2 rows.
    """
    fa, fb = _pair(features_a, features_b, 2, "KID")
    m = min(subset_size, len(fa), len(fb))
    if m == len(fa) == len(fb):
        return _mmd2_unbiased(fa, fb), 0.0
    rng = np.random.default_rng(seed)
    values = np.array([_mmd2_unbiased(fa[rng.choice(len(fa), m, replace=False)],
                                      fb[rng.choice(len(fb), m, replace=False)]) for _ in range(subsets)])
    return float(values.mean()), float(values.std())


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100.0 - tail))


def fd_result(features_a: Any, features_b: Any, *, name: str = "FD", bootstrap: int = 50,
              confidence: float = 0.95, seed: int = 0) -> SetMetricResult:
    """Fréchet distance with a percentile-bootstrap CI and a small-n warning.

    ``bootstrap``: resamples (0 = no CI). Returns a SetMetricResult. Raises GenimgError.
    """
    fa, fb = _pair(features_a, features_b, 2, name)
    value = _fd(fa, fb)
    low = high = None
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        samples = np.array([_fd(fa[rng.integers(0, len(fa), len(fa))], fb[rng.integers(0, len(fb), len(fb))])
                            for _ in range(bootstrap)])
        low, high = _percentile_ci(samples, confidence)
    d = fa.shape[1]
    n = min(len(fa), len(fb))
    warning = None
    if n < 2 * d:
        warning = (f"{name} on {n} images per set is biased upwards and unstable: its covariance has {d} dimensions "
                   f"and needs ≥ {2 * d} images per set to mean much; compare only runs with equal n, or use KID")
    return SetMetricResult(name=name, value=value, ci_low=low, ci_high=high, confidence=confidence,
                           n_a=len(fa), n_b=len(fb), feature_dim=d, warning=warning,
                           extra={"bootstrap": bootstrap})


KID_MIN_IMAGES = 100


def kid_result(features_a: Any, features_b: Any, *, name: str = "KID", subset_size: int = 1000, subsets: int = 100,
               bootstrap: int = 100, confidence: float = 0.95, seed: int = 0) -> SetMetricResult:
    """KID (mean and subset std) with a percentile-bootstrap CI and a small-n warning.

    Each bootstrap replicate draws min(subset_size, n) images with replacement from each set
    and computes the tie-excluded unbiased MMD². Returns a SetMetricResult. Raises GenimgError.
    """
    fa, fb = _pair(features_a, features_b, 2, name)
    mean, std = kid(fa, fb, subset_size=subset_size, subsets=subsets, seed=seed)
    low = high = None
    if bootstrap > 0:
        rng = np.random.default_rng(seed + 1)
        ma, mb = min(subset_size, len(fa)), min(subset_size, len(fb))
        samples = []
        for _ in range(bootstrap):
            ia, ib = rng.integers(0, len(fa), ma), rng.integers(0, len(fb), mb)
            samples.append(_mmd2_unbiased(fa[ia], fb[ib], ia, ib))
        low, high = _percentile_ci(np.array(samples), confidence)
    n = min(len(fa), len(fb))
    warning = None
    if n < KID_MIN_IMAGES:
        warning = (f"{name} on {n} images per set is very noisy (see its CI); use ≥ {KID_MIN_IMAGES} images per set")
    return SetMetricResult(name=name, value=mean, ci_low=low, ci_high=high, confidence=confidence,
                           n_a=len(fa), n_b=len(fb), feature_dim=fa.shape[1], warning=warning,
                           extra={"subset_std": std, "subset_size": min(subset_size, n), "subsets": subsets,
                                  "bootstrap": bootstrap})


def fd_effnet(images_a: Any, images_b: Any, *, extractor: Any = None, **kwargs: Any) -> SetMetricResult:
    """FD-EffNetLite0: Fréchet distance on EfficientNet-Lite0 pooled features of two image sets.

    Not Inception FID: numbers are not comparable with published FIDs. ``kwargs`` go to fd_result.
    Raises GenimgError (empty sets, bad images) or ModelUnavailableError.
    """
    from genimg.metrics.features import effnet_lite0

    extractor = extractor or effnet_lite0()
    return fd_result(extractor.pooled(images_a), extractor.pooled(images_b), name="FD-EffNetLite0", **kwargs)


def kid_effnet(images_a: Any, images_b: Any, *, extractor: Any = None, **kwargs: Any) -> SetMetricResult:
    """KID-EffNetLite0: KID on EfficientNet-Lite0 pooled features of two image sets (see fd_effnet)."""
    from genimg.metrics.features import effnet_lite0

    extractor = extractor or effnet_lite0()
    return kid_result(extractor.pooled(images_a), extractor.pooled(images_b), name="KID-EffNetLite0", **kwargs)

"""The per-image metrics by name: what each means, which way is better, how to compute it.

Used by the task function, the UI table and the CLI so the three say the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from genimg.metrics import full_reference as fr
from genimg.metrics import no_reference as nr
from genimg.metrics import perceptual


def _always() -> tuple[bool, str]:
    return True, ""


def _effnet() -> tuple[bool, str]:
    from genimg.metrics.features import effnet_available

    return effnet_available()


def _lpips() -> tuple[bool, str]:
    from genimg.metrics.features import lpips_available

    return lpips_available()


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    needs_reference: bool
    better: str                                   # "higher" or "lower"
    meaning: str                                  # one line for people
    fn: Callable[..., float]
    available: Callable[[], tuple[bool, str]] = _always
    unit: str = ""
    min_side: int = 1

    def display(self, value: float) -> str:
        """The value as a person should read it ('∞' for identical images in PSNR)."""
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        digits = 4 if abs(value) < 10 else 2
        return f"{value:.{digits}f}" + (f" {self.unit}" if self.unit else "")


METRICS: dict[str, MetricInfo] = {m.key: m for m in (
    MetricInfo("psnr", "PSNR", True, "higher", "pixel fidelity in dB; ∞ = identical, > 40 near-invisible differences, "
               "< 25 clearly visible", fr.psnr, unit="dB"),
    MetricInfo("ssim", "SSIM", True, "higher", "structural similarity (Gaussian σ=1.5), 1 = identical; "
               "weights local structure over exact pixel values", fr.ssim, min_side=11),
    MetricInfo("ms_ssim", "MS-SSIM", True, "higher", "SSIM over 5 scales (Wang 2003), 1 = identical; "
               "closer to perceived quality across viewing distances", fr.ms_ssim, min_side=fr.ms_ssim_min_side()),
    MetricInfo("mse", "MSE", True, "lower", "mean squared pixel error in 0..255 units, 0 = identical", fr.mse),
    MetricInfo("effnet_distance", "EffNetLite0 feature distance", True, "lower",
               "distance of ImageNet EfficientNet-Lite0 features (LPIPS-style, unweighted; not LPIPS), 0 = same features",
               perceptual.effnet_distance, _effnet, min_side=perceptual.MIN_SIDE),
    MetricInfo("lpips", "LPIPS (AlexNet)", True, "lower", "learned perceptual distance, 0 = same; ~0.1 small, > 0.4 large "
               "differences", perceptual.lpips, _lpips, min_side=perceptual.MIN_SIDE),
    MetricInfo("brisque", "BRISQUE", False, "lower", "no-reference naturalness/distortion score, ~0..100; "
               "clean photos usually < 30", nr.brisque, nr.brisque_available, min_side=nr.BRISQUE_MIN_SIDE),
    MetricInfo("niqe", "NIQE", False, "lower", "no-reference distance from natural-image statistics; clean photos ~3..6",
               nr.niqe, nr.niqe_available, min_side=nr.NIQE_MIN_SIDE),
    MetricInfo("sharpness", "Sharpness", False, "higher", "variance of the Laplacian; more fine detail (or noise) = higher, "
               "compare only similar images", nr.sharpness, min_side=3),
    MetricInfo("colourfulness", "Colourfulness", False, "higher", "Hasler–Süsstrunk: 0 gray, ~15 slightly, ~45 "
               "moderately, > 80 very colourful", nr.colourfulness),
    MetricInfo("entropy", "Entropy", False, "higher", "Shannon entropy of the luminance histogram, 0..8 bits",
               nr.entropy, unit="bits"),
)}

# Accepted spellings on the CLI/API.
ALIASES = {"ms-ssim": "ms_ssim", "msssim": "ms_ssim", "colorfulness": "colourfulness", "effnet": "effnet_distance",
           "feature_distance": "effnet_distance", "effnet-distance": "effnet_distance", "laplacian": "sharpness"}


def canonical(name: str) -> str | None:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in METRICS else None


def metric_table() -> list[dict[str, Any]]:
    """Every per-image metric with its availability, for --help texts and the UI."""
    rows = []
    for m in METRICS.values():
        ok, reason = m.available()
        rows.append({"key": m.key, "label": m.label, "needs_reference": m.needs_reference, "better": m.better,
                     "meaning": m.meaning, "available": ok, "reason": reason})
    return rows

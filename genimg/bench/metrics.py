"""Bench section ``metrics``: genimg's batched torch SSIM (and PSNR) against scikit-image.

``bench_metrics(repeats)`` is the ``metrics`` section of ``python -m genimg bench``
(``python -m genimg.bench.metrics`` runs it alone). Both sides score the same uint8 RGB
256×256 pairs (a smooth random field and a noisy copy); batch 1 is one pair per call for
both, batch 16 is one call of ours against 16 calls of scikit-image.
Trials are interleaved (ours, skimage, ours, ...) and medians reported, so load from other
processes hits both alike. A ratio > 1 means ours is faster per image.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

from genimg.bench.timing import interleaved_samples
from genimg.hardware import cpu_name


def _pairs(n: int, size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=(n, size, size, 3)), sigma=(0, 3, 3, 0))
    field = (field - field.min()) / (np.ptp(field) + 1e-12) * 255
    clean = field.astype(np.uint8)
    noisy = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
    return clean, noisy


def bench_metrics(repeats: int = 5, batches: tuple[int, ...] = (1, 16), size: int = 256) -> dict[str, Any]:
    """Time our SSIM vs scikit-image's (and PSNR) at batch 1 and 16, 256×256 RGB uint8
    (``batches``/``size`` only to make smoke tests cheap).

    Returns a JSON-able dict: per case the median seconds per image of each side, the
    min..max spread, the speed ratio skimage/ours (> 1: ours faster) and the largest
    |ours − skimage| seen on those arrays.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from genimg.metrics.full_reference import psnr, ssim

    def sk_ssim(x: np.ndarray, y: np.ndarray) -> float:
        return structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     channel_axis=-1, data_range=255)

    report: dict[str, Any] = {"what": f"SSIM (Gaussian σ=1.5) per image, {size}x{size} RGB uint8; ratio = skimage / ours",
                              "repeats": repeats, "torch_threads": torch.get_num_threads(),
                              "machine": cpu_name()}
    for batch in batches:
        a, b = _pairs(batch, size)
        ours = ssim(list(a), list(b)) if batch > 1 else np.array([ssim(a[0], b[0])])
        theirs = np.array([sk_ssim(a[i], b[i]) for i in range(batch)])
        samples = interleaved_samples({
            "ours": (lambda: ssim(a, b)) if batch > 1 else (lambda: ssim(a[0], b[0])),
            "skimage": lambda: [sk_ssim(a[i], b[i]) for i in range(batch)],
        }, repeats)
        per_image = {k: statistics.median(v) / batch for k, v in samples.items()}
        report[f"ssim_batch{batch}"] = {
            "ours_s_per_image": per_image["ours"], "skimage_s_per_image": per_image["skimage"],
            "ours_spread_s": [min(samples["ours"]) / batch, max(samples["ours"]) / batch],
            "skimage_spread_s": [min(samples["skimage"]) / batch, max(samples["skimage"]) / batch],
            "ratio": per_image["skimage"] / per_image["ours"],
            "max_abs_diff": float(np.max(np.abs(ours - theirs))),
        }
    n = max(batches)
    a, b = _pairs(n, size)
    samples = interleaved_samples({"ours": lambda: psnr(a, b),
                      "skimage": lambda: [peak_signal_noise_ratio(a[i], b[i], data_range=255) for i in range(n)]}, repeats)
    report[f"psnr_batch{n}"] = {"ours_s_per_image": statistics.median(samples["ours"]) / n,
                                "skimage_s_per_image": statistics.median(samples["skimage"]) / n,
                                "ratio": statistics.median(samples["skimage"]) / statistics.median(samples["ours"])}
    report["ssim_throughput"] = {f"batch{k}": report[f"ssim_batch{k}"]["ratio"] for k in batches}
    report["goal"] = "ours at least as fast as skimage per image (ratio >= 1) at every batch size"
    report["goal_met"] = all(r >= 1.0 for r in report["ssim_throughput"].values())
    return report


def bench_metrics_section(_catalog: dict[str, Any], _model_id: str, repeats: int) -> dict[str, Any]:
    """The section as ``python -m genimg bench`` calls it: :func:`bench_metrics` with ``repeats``.

    The catalog and model arguments are unused (every section takes them).
    """
    return bench_metrics(repeats=repeats)


if __name__ == "__main__":
    import json

    print(json.dumps(bench_metrics(), indent=2))

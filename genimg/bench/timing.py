"""How every CPU-side bench section times things: repeated, interleaved trials and their medians.

These machines are noisy, so every figure is the median of repeated trials, the variants
of one comparison are interleaved trial by trial (A B C A B C ...) so drift hits them
alike, and the spread (min..max) is reported next to each median.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def stats(samples: list[float]) -> dict[str, float]:
    """Median, min, max (seconds) and count of non-empty ``samples``; raises ValueError when empty."""
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "n": len(samples)}


def interleaved_samples(variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every variant ``warmup`` times, then time each ``repeats`` times, interleaved (A B A B ...).

    Returns the seconds of every trial per variant. Whatever a variant raises propagates.
    """
    for _ in range(warmup):  # allocator growth, oneDNN kernel selection, lazy imports
        for fn in variants.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return samples


def interleaved(variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, dict[str, float]]:
    """Time each variant ``repeats`` times, interleaved; return per-variant :func:`stats`."""
    return {name: stats(values) for name, values in interleaved_samples(variants, repeats, warmup).items()}


def ratio(timings: dict[str, dict[str, float]], name: str, baseline: str) -> float:
    """Median of variant ``name`` over the median of ``baseline`` in :func:`interleaved`'s result."""
    return timings[name]["median_s"] / timings[baseline]["median_s"]

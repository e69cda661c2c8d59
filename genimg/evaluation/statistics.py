"""Uncertainty and trade-offs for per-model summaries: intervals, minimum sample sizes, Pareto fronts.

Per-model means carry a 95% interval — Student's t-interval for continuous metrics and latency,
the Wilson score interval for pass rates (a proportion; the t-interval is degenerate at 0 % and
100 %). Images are treated as independent samples, although images of one prompt are
correlated: with few prompts the intervals are optimistic. Below :data:`MIN_N_FOR_INTERVAL`
values no interval is given at all, and the summary says why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CONFIDENCE = 0.95
# An interval from fewer values says more about the formula than about the model: 2 images of a
# pass/fail check give a Wilson interval as wide as [0.09, 1]; we show n and no interval below this.
MIN_N_FOR_INTERVAL = 4


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(mean, low, high): Student's t-interval for the mean; no interval below 2 values."""
    from scipy import stats

    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(a) == 0:
        return float("nan"), None, None
    mean = float(a.mean())
    if len(a) < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return mean, mean - half, mean + half


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(proportion, low, high): the Wilson score interval for a pass rate (Wilson 1927)."""
    from scipy import stats

    if n == 0:
        return float("nan"), None, None
    p = successes / n
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def summarize(values: list[float | None], *, proportion: bool = False, label: str = "", better: str = "",
              min_n: int = MIN_N_FOR_INTERVAL) -> dict[str, Any]:
    """Mean, 95% interval (Wilson for a proportion, else t), n and missing count of ``values``.

    Below ``min_n`` finite values the interval is None and ``ci_note`` says why.
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if proportion:
        mean, low, high = wilson_interval(int(round(sum(finite))), len(finite))
        method = "wilson"
    else:
        mean, low, high = t_interval(finite)
        method = "t"
    out = {"mean": None if math.isnan(mean) else mean, "ci_low": low, "ci_high": high, "n": len(finite),
           "missing": len(values) - len(finite), "ci_method": method, "confidence": CONFIDENCE,
           "label": label, "better": better}
    if 0 < len(finite) < min_n:
        out.update(ci_low=None, ci_high=None,
                   ci_note=f"n = {len(finite)}: no interval below {min_n} values (it would only reflect the formula)")
    return out


def pareto_front(points: dict[str, tuple[float, float]], higher_is_better: bool = True) -> list[str]:
    """Names of the points no other point dominates, for (latency: lower better, quality).

    A point is dominated when another is at least as good on both axes and better on one.
    """
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for name, (lat, q) in points.items():
        if not (math.isfinite(lat) and math.isfinite(q)):
            continue
        dominated = any(
            (l2 <= lat and sign * q2 >= sign * q) and (l2 < lat or sign * q2 > sign * q)
            for other, (l2, q2) in points.items() if other != name and math.isfinite(l2) and math.isfinite(q2))
        if not dominated:
            front.append(name)
    return front


def mark_pareto(summary: dict[str, dict[str, Any]], keys: list[str], better: dict[str, str]) -> None:
    """Mark, per metric in ``keys``, which models are on the latency–quality Pareto front (in place)."""
    for k in keys:
        points = {}
        for model_id, s in summary.items():
            stats = s.get("metrics", {}).get(k)
            lat = (s.get("latency") or {}).get("median_s")
            if stats and stats.get("mean") is not None and lat is not None:
                points[model_id] = (lat, stats["mean"])
        front = set(pareto_front(points, better.get(k, "higher") == "higher"))
        for model_id in points:
            summary[model_id]["metrics"][k]["pareto"] = model_id in front

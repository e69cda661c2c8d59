"""Per-image metrics task: one image (and optionally a reference) → a table of metric values.

The one path for the Metrics tab, ``python -m genimg metrics`` and the API ``/metrics``.
Images come in through the image gate (:func:`genimg.imageio.load_image`) and are scored as
8-bit RGB (a grayscale file scores like its gray RGB copy, so SSIM/PSNR equal the gray ones).
"""

from __future__ import annotations

import time
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.imageio import DecodedImage, load_image
from genimg.metrics.arrays import resize
from genimg.metrics.registry import Metric, canonical, per_image
from genimg.runner import run_cells


def _decode(source: Any, what: str) -> DecodedImage:
    return source if isinstance(source, DecodedImage) else load_image(source, what=what)


def default_metrics(with_reference: bool) -> list[str]:
    """What runs when the caller names no metrics: every available metric that applies."""
    return [m.id for m in per_image(with_reference) if m.availability()[0]]


def resolve_metrics(names: list[str] | None, with_reference: bool) -> list[str]:
    """Canonical metric keys (every applicable available one when ``names`` is empty). Raises
    GenimgError for unknown names or a full-reference metric without a reference."""
    if not names:
        return default_metrics(with_reference)
    known = {m.id: m for m in per_image()}
    keys: list[str] = []
    for name in names:
        key = canonical(str(name))
        if key not in known:
            raise GenimgError(f"unknown metric {name!r} for one image: choose from {', '.join(known)}")
        if known[key].needs_reference and not with_reference:
            raise GenimgError(f"{known[key].label} compares with a reference image: give one (--reference), "
                              "or pick a no-reference metric (brisque, niqe, sharpness, colourfulness, entropy)")
        if key not in keys:
            keys.append(key)
    return keys


def _row(metric: Metric, status: str = "ok", reason: str = "") -> dict[str, Any]:
    return {"label": metric.label, "better": metric.better, "meaning": metric.meaning, "value": None,
            "display": "–" if status != "ok" else "", "seconds": 0.0, "status": status, "reason": reason}


def compute_metrics(image: Any, reference: Any = None, metrics: list[str] | None = None,
                    resize_to_match: bool = False) -> dict[str, Any]:
    """Score ``image`` (path, bytes, PIL, array or DecodedImage) with per-image metrics.

    ``reference``: optional, enables full-reference metrics; sizes must match unless
    ``resize_to_match`` (then the image is resized, bicubic, to the reference's size).
    ``metrics``: names (see genimg.metrics.registry); None = every applicable available one.
    Returns {"metrics": {key: row}, "image": {...}, "reference": {...} | None, "resized": bool,
    "timings": {...}}; each row has label, value (float or None), display, better, meaning,
    seconds, and status "ok" | "unavailable" | "skipped" with a reason. A metric that cannot
    apply (the image is too small for it, ...) is "skipped" with its reason and the others are
    computed; asked for alone, it raises instead.
    Raises GenimgError for bad images, unknown metrics, mismatched sizes, or a lone requested
    metric that cannot apply.
    """
    started = time.perf_counter()
    decoded = _decode(image, "image to score")
    ref = _decode(reference, "reference") if reference is not None else None
    keys = resolve_metrics(metrics, ref is not None)
    load_s = time.perf_counter() - started
    a = decoded.rgb_array()
    b = ref.rgb_array() if ref is not None else None
    resized = False
    if b is not None and a.shape != b.shape:
        if not resize_to_match:
            raise GenimgError(f"image is {a.shape[1]}x{a.shape[0]} but reference is {b.shape[1]}x{b.shape[0]}: "
                              "full-reference metrics need the same size (use --resize-to-match / tick "
                              "'resize image to the reference' to resize the image)")
        a = resize(a, (b.shape[1], b.shape[0]))
        resized = True
    chosen = {m.id: m for m in per_image()}

    def score(key: str, _step: Any) -> dict[str, Any]:
        metric = chosen[key]
        ok, reason = metric.availability()
        if not ok:
            return _row(metric, "unavailable", reason)
        too_small = metric.too_small(a)
        if too_small:
            raise GenimgError(too_small)
        t0 = time.perf_counter()
        try:
            value = metric.run(a, b)
        except ModelUnavailableError as exc:
            return _row(metric, "unavailable", str(exc))
        return {**_row(metric), "value": value, "display": metric.display(value), "seconds": time.perf_counter() - t0}

    # Alone, a metric that cannot apply is the request's error (the runner raises it); among
    # others it is a "skipped" row with its reason and the rest are computed.
    cells = run_cells(keys, score, label=lambda k: chosen[k].label, what="metric") if keys else []
    rows = {c.key: c.value if c.ok else _row(chosen[c.key], "skipped", c.error or "") for c in cells}
    describe = lambda d: {"width": d.size[0], "height": d.size[1], "grayscale": d.grayscale,  # noqa: E731
                          "mode": d.original_mode, "format": d.original_format}
    return {"metrics": rows, "image": describe(decoded), "reference": describe(ref) if ref is not None else None,
            "resized": resized, "timings": {"load_s": load_s, "total_s": time.perf_counter() - started}}


def rows_for_table(result: dict[str, Any]) -> list[list[str]]:
    """[metric, value, better, what it means] rows for a table (UI and CLI)."""
    out = []
    for row in result["metrics"].values():
        value = row["display"] if row["status"] == "ok" else f"– ({row['status']}: {row['reason']})"
        out.append([row["label"], value, f"{row['better']} is better", row["meaning"]])
    return out

"""Benchmark of the restoration methods over the bundled examples: quality (PSNR/SSIM) and time.

``python -m genimg restore --bench`` runs it (it is not a section of ``python -m genimg bench``).

:func:`bench_restore` degrades each RGB example by each scenario (noise σ=25, blur σ=2,
JPEG q=20, ×4 downscale, random strokes), restores it with the methods of the matching task
through :func:`genimg.tasks.restore.restore` — the same path as the tab and the CLI — and
reports per method the mean PSNR/SSIM over the images, the median time, and the gain over
the degraded input. Each method first runs once on a small crop (warm-up, not timed), so
times are warm: imports and first-inference costs are not counted.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genimg.examples import example_paths
from genimg.hardware import cpu_name

SCENARIOS: dict[str, tuple[str, ...]] = {
    "noise:25": ("nlm", "tv-chambolle", "wavelet", "bilateral", "waifu2x-noise1", "waifu2x-noise3", "dae"),
    "blur:2": ("richardson-lucy", "wiener"),
    "jpeg:20": ("nlm", "tv-chambolle", "wavelet", "waifu2x-noise1", "waifu2x-noise3", "dae"),
    "down:4": ("nearest", "bicubic", "lanczos", "realesrgan-x4plus", "realesr-animevideov3-x4", "waifu2x-photo-x2"),
    "mask:strokes": ("biharmonic", "telea", "navier-stokes"),
}


def bench_restore(scenarios: dict[str, tuple[str, ...]] | None = None, images: list[Path] | None = None,
                  pool: Any = None, seed: int = 0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every scenario's methods on the RGB examples; returns a JSON-able report.

    Report: ``scenarios[spec]`` = {"baseline": degraded-input PSNR/SSIM, "methods": {id:
    {psnr, ssim, gain_db, seconds (median), brisque?, per_image, error?}}}, plus
    ``checks`` for the capability's acceptance goals. Methods that cannot run here
    (missing weights) are reported with their error. ``images`` defaults to the RGB
    examples, ``pool`` to a fresh pool over the catalog; ``progress`` gets one line per image.
    Raises GenimgError for an unknown degradation spec; an undecodable image's error propagates.
    """
    from genimg.imageio import load_image
    from genimg.models.pool import ModelPool
    from genimg.tasks.restore import no_reference_metric, restore

    scenarios = scenarios or SCENARIOS
    images = images or example_paths(rgb_only=True)
    pool = pool or ModelPool(budget_bytes=1 << 34)
    decoded = {p.stem: load_image(p) for p in images}
    report: dict[str, Any] = {"images": list(decoded), "seed": seed, "machine": cpu_name(),
                              "scenarios": {}}
    started_all = time.perf_counter()
    for spec, methods in scenarios.items():
        available = [m for m in methods if m in pool.catalog and pool.availability(m)[0]]
        missing = {m: (pool.availability(m)[1] if m in pool.catalog else "not in the catalog")
                   for m in methods if m not in available}
        # Warm-up on a 128×128 crop: loads each model and pays one-time costs outside the timings.
        first = next(iter(decoded.values())).rgb_array()[:128, :128]
        if available:
            restore(first, available, degrade=spec, seed=seed, pool=pool)
        rows: dict[str, list[Any]] = {m: [] for m in available}
        baselines = []
        for name, image in decoded.items():
            if progress is not None:
                progress(f"{spec}: {name}")
            result = restore(image, available, degrade=spec, seed=seed, pool=pool)
            baselines.append(result.baseline)
            for out in result.outputs:
                rows[out.method].append((name, out))
        entry: dict[str, Any] = {"baseline": _mean_scores(baselines), "methods": {}}
        for method, outs in rows.items():
            done = [(n, o) for n, o in outs if o.error is None]
            if not done:
                entry["methods"][method] = {"error": outs[0][1].error if outs else "did not run"}
                continue
            stats: dict[str, Any] = {
                "psnr": _mean([o.psnr for _, o in done]), "ssim": _mean([o.ssim for _, o in done]),
                "seconds": round(statistics.median(o.seconds for _, o in done), 4),
                "per_image": {n: {"psnr": o.psnr, "ssim": o.ssim, "seconds": round(o.seconds, 4)} for n, o in done}}
            if entry["baseline"].get("psnr") is not None and stats["psnr"] is not None:
                stats["gain_db"] = round(stats["psnr"] - entry["baseline"]["psnr"], 3)
            brisques = [o.brisque for _, o in done if o.brisque is not None]
            if brisques:
                stats["brisque"] = round(float(np.mean(brisques)), 3)
            entry["methods"][method] = stats
        for method, reason in missing.items():
            entry["methods"][method] = {"error": reason}
        report["scenarios"][spec] = entry
    report["total_s"] = round(time.perf_counter() - started_all, 1)
    report["no_reference_metric"] = no_reference_metric()[1]
    report["checks"] = _checks(report)
    return report


def _mean(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def _mean_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"psnr": _mean([r.get("psnr") for r in rows]), "ssim": _mean([r.get("ssim") for r in rows])}


def _checks(report: dict[str, Any]) -> dict[str, Any]:
    """The acceptance goals: denoisers ≥ 3 dB over σ=25 noise; Real-ESRGAN ×4 better than bicubic."""
    checks: dict[str, Any] = {}
    noise = report["scenarios"].get("noise:25", {}).get("methods", {})
    for method in ("nlm", "waifu2x-noise3", "dae"):
        gain = noise.get(method, {}).get("gain_db")
        if gain is not None:
            checks[f"{method}_gain_db_sigma25"] = {"value": gain, "goal": ">= 3 dB", "met": gain >= 3.0}
    down = report["scenarios"].get("down:4", {}).get("methods", {})
    esr, bic = down.get("realesrgan-x4plus", {}), down.get("bicubic", {})
    if "brisque" in esr and "brisque" in bic:
        checks["realesrgan_vs_bicubic_brisque"] = {"value": [esr["brisque"], bic["brisque"]],
                                                   "goal": "Real-ESRGAN lower (better) than bicubic",
                                                   "met": esr["brisque"] < bic["brisque"]}
    elif esr.get("psnr") is not None and bic.get("psnr") is not None:
        checks["realesrgan_vs_bicubic_psnr_ssim"] = {
            "value": {"realesrgan": [esr["psnr"], esr["ssim"]], "bicubic": [bic["psnr"], bic["ssim"]]},
            "goal": "BRISQUE not available here: PSNR/SSIM reported instead (they favour smooth outputs)",
            "met": None}
    return checks


def format_bench(report: dict[str, Any]) -> str:
    """:func:`bench_restore`'s report as a plain-text table (one block per scenario)."""
    lines = [f"bench_restore over {', '.join(report['images'])} (seed {report['seed']}, {report['total_s']} s)"]
    for spec, entry in report["scenarios"].items():
        base = entry["baseline"]
        lines.append(f"\n{spec}" + (f"   degraded input: PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.4f}"
                                    if base.get("psnr") is not None else ""))
        lines.append(f"  {'method':<26} {'PSNR dB':>8} {'gain':>7} {'SSIM':>7} {'time s':>8} {'BRISQUE':>8}")
        for method, m in entry["methods"].items():
            if "error" in m:
                lines.append(f"  {method:<26} unavailable: {m['error'][:90]}")
                continue
            gain = f"{m['gain_db']:+.2f}" if "gain_db" in m else "-"
            brisque = f"{m['brisque']:.2f}" if "brisque" in m else "-"
            lines.append(f"  {method:<26} {m['psnr']:8.2f} {gain:>7} {m['ssim']:7.4f} {m['seconds']:8.3f} {brisque:>8}")
    lines.append("\nchecks: " + ", ".join(f"{k}: {'met' if v['met'] else ('n/a' if v['met'] is None else 'NOT met')}"
                                         for k, v in report["checks"].items()))
    return "\n".join(lines)

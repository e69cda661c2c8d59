"""``python -m genimg bench``: speed as ratios against bare baselines measured in the same run.

It drives the dashboard like a visitor, so this package sits above ``genimg.ui`` (and below
the CLI). :func:`run_bench` runs the sections, one module each; the section names are the
report's keys under ``sections``, which outside checks read:

- ``handle_reuse``, ``cpu_dtype`` — :mod:`genimg.bench.models` (pool and dtype policy);
- ``dashboard_overhead`` — :mod:`genimg.bench.overhead` (task function and dashboard vs bare call);
- ``metrics`` — :mod:`genimg.bench.metrics` (SSIM/PSNR vs scikit-image);
- ``embedded`` — :mod:`genimg.bench.embedded` (the project's own models per CPU fast path);
- ``concurrency`` — :mod:`genimg.bench.concurrency` (many clients, with and without micro-batching).

How they time (medians of interleaved trials, with the spread) is :mod:`genimg.bench.timing`.
The package's other benchmarks have their own entry points: :mod:`genimg.bench.load`
(``bench --load``), :mod:`genimg.bench.gpu` (``bench --random-weights`` / ``--flops-only``)
and :mod:`genimg.bench.restore` (``restore --bench``).
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from genimg import __version__
from genimg.bench.concurrency import bench_concurrency
from genimg.bench.embedded import bench_embedded
from genimg.bench.metrics import bench_metrics_section
from genimg.bench.models import bench_cpu_dtype, bench_handle_reuse, tiny_catalog
from genimg.bench.overhead import bench_dashboard_overhead
from genimg.errors import GenimgError
from genimg.hardware import describe

# Section name -> runner(catalog, model_id, repeats), in the order they run.
RUNNERS: dict[str, Callable[[dict[str, Any], str, int], dict[str, Any]]] = {
    "handle_reuse": bench_handle_reuse, "dashboard_overhead": bench_dashboard_overhead,
    "cpu_dtype": bench_cpu_dtype, "metrics": bench_metrics_section,
    "embedded": bench_embedded, "concurrency": bench_concurrency,
}
SECTIONS = tuple(RUNNERS)


def environment() -> dict[str, Any]:
    """Versions and the machine (from :func:`genimg.hardware.describe`, whole under ``hardware``)."""
    import diffusers
    import gradio

    info = describe()
    return {"genimg": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "gradio": gradio.__version__, "machine": info["machine"],
            "processor": info["cpu"], "threads": info.get("torch_threads"),
            "cuda": info["gpu"]["name"] if info.get("gpu") else None, "hardware": info}


def run_bench(quick: bool = False, repeats: int | None = None, only: list[str] | None = None,
              model: str | None = None) -> dict[str, Any]:
    """Run the benchmark sections (``only``: some of :data:`SECTIONS`, in the order given).

    ``repeats``: trials per measurement (default 3 with ``quick``, else 7); ``model``: the
    dashboard-overhead section's model (default ``genimg-diffusion`` when its weights are here,
    else the random-weight ``tiny-sd``). Returns one JSON-able report. Raises GenimgError for an
    unknown section.
    """
    repeats = repeats or (3 if quick else 7)
    sections = only or list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise GenimgError(f"unknown bench section(s) {', '.join(unknown)}: use {', '.join(SECTIONS)}")
    report: dict[str, Any] = {"environment": environment(), "repeats": repeats, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="genimg-bench-") as tmp:
        catalog = tiny_catalog(Path(tmp))
        model_id = "tiny-sd"
        report["note"] = "tiny-sd is a random-weight SD-shaped pipeline built from configs (plumbing speed only)"
        overhead_catalog, overhead_model = catalog, model_id
        if "dashboard_overhead" in sections:
            # The #7 goal is stated for the embedded diffusion model at its defaults; use it when shipped.
            from genimg.models.catalog import load_catalog
            from genimg.models.pool import ModelPool

            real = load_catalog()
            wanted = model or "genimg-diffusion"
            if wanted in real and ModelPool(real).availability(wanted)[0]:
                overhead_catalog, overhead_model = {wanted: real[wanted]}, wanted
        for name in sections:
            started = time.perf_counter()
            if name == "dashboard_overhead":
                report["sections"][name] = RUNNERS[name](overhead_catalog, overhead_model, repeats)
            else:
                report["sections"][name] = RUNNERS[name](catalog, model_id, repeats)
            report["sections"][name]["section_wall_s"] = time.perf_counter() - started
    return report


def format_table(report: dict[str, Any]) -> str:
    """A readable summary of :func:`run_bench`'s report: per section its timings and ratios."""
    lines = [f"genimg bench — {report['environment']['processor']}, torch {report['environment']['torch']}, "
             f"median of {report['repeats']}"]
    for name, section in report["sections"].items():
        lines.append(f"\n[{name}] model={section.get('model')}")
        if name == "embedded":
            for model_id, row in section["models"].items():
                if "skipped" in row:
                    lines.append(f"  {model_id:<18} skipped: {row['skipped']}")
                    continue
                for path in section["paths"]:
                    if path not in row:  # e.g. no ONNX Runtime path for the one-step GAN / VAE
                        continue
                    r = row[path]
                    lines.append(f"  {model_id:<18} {path:<14} batch 1 {r['batch1_latency']['median_s'] * 1000:8.1f} ms"
                                 f"  batch 16 {r['batch16_images_per_s']:8.1f} img/s"
                                 f"  max|diff| {r['max_abs_diff_vs_eager']:.4f}")
            continue
        for key, value in section.items():
            if isinstance(value, dict) and "median_s" in value:
                lines.append(f"  {key:<24} {value['median_s'] * 1000:10.2f} ms  (min {value['min_s'] * 1000:.2f}, "
                             f"max {value['max_s'] * 1000:.2f})")
            elif isinstance(value, float):
                lines.append(f"  {key:<24} {value:10.4f}")
            elif key not in ("model", "params"):
                lines.append(f"  {key:<24} {value}")
    return "\n".join(lines)

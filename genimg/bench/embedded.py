"""Bench section ``embedded``: the project's own models on this CPU, per fast path.

For each shipped embedded model whose weights are here: batch-1 latency and batch-16
images/s at its catalog defaults, on eager fp32, ONNX Runtime (the served default of the
UNet models), channels_last and bf16, interleaved in one run, with each path's largest
pixel difference from eager so an inexact path shows as such.
"""

from __future__ import annotations

from typing import Any

import torch

from genimg.bench.timing import interleaved, ratio

EMBEDDED_PROMPT = "a large red star to the left of a small blue circle on a white background"


def _embedded_modules(pipe: Any) -> list[torch.nn.Module]:
    """The pipeline's own networks (not the shared MiniLM text encoder, which every variant shares)."""
    return [m for name, m in pipe.components.items()
            if isinstance(m, torch.nn.Module) and name != "text_encoder"]


def _fast_path(pipe: Any, path: str) -> Any:
    """Apply one CPU fast path to a freshly loaded embedded pipeline (in place); returns it.

    The pool loads diffusion pipelines on ONNX Runtime by default; every other path starts
    from the PyTorch UNet. Returns None when the path does not apply to the pipeline.
    """
    if hasattr(pipe, "unet_runner"):
        pipe.unet_runner = None
    if path == "onnxruntime":
        if not hasattr(pipe, "use_onnx_runtime"):
            return None  # one-step GAN/VAE generators: no UNet to export
        pipe.use_onnx_runtime()
    elif path == "channels_last":
        for module in _embedded_modules(pipe):
            module.to(memory_format=torch.channels_last)
    elif path == "bf16":
        for module in _embedded_modules(pipe):
            module.to(dtype=torch.bfloat16)
    elif path != "eager_fp32":
        raise ValueError(path)
    return pipe


def bench_embedded(_catalog: dict[str, Any], _model_id: str, repeats: int,
                   paths: tuple[str, ...] = ("eager_fp32", "onnxruntime", "channels_last", "bf16")) -> dict[str, Any]:
    """Each shipped embedded model on this CPU: latency at batch 1, images/s at batch 16, per fast path.

    Every model runs at its catalog defaults (size, steps, guidance). Fast paths are compared
    with eager fp32 in the same run (interleaved), and their outputs' max abs difference from
    eager (pixels in [0, 1], same seeds) says whether they are usable. "onnxruntime" (the
    served default for the diffusion models) applies to UNet pipelines only. torch.compile is not
    measured here: its CPU compile time on two cores is minutes (see docs/decisions.md).
    The catalog and model arguments are unused (the section reads the real catalog).

    Returns per model its rows per path (or ``skipped`` with the reason its weights are not
    here), the speedups over ``genimg-diffusion`` and a note. Raises ValueError for an
    unknown path; loader errors propagate.
    """
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool

    catalog = {k: v for k, v in load_catalog().items() if v.backend == "embedded"}
    pool = ModelPool(catalog)
    results: dict[str, Any] = {"model": "embedded", "paths": list(paths), "models": {}}
    for model_id, spec in catalog.items():
        ok, why = pool.availability(model_id)
        if not ok:
            results["models"][model_id] = {"skipped": why}
            continue
        d = spec.defaults
        pipes = {}
        for path in paths:
            fresh = ModelPool({model_id: spec})
            with fresh.acquire(model_id) as lease:
                pipe = _fast_path(lease.model, path)
            if pipe is not None:
                pipes[path] = pipe
        model_paths = [p for p in paths if p in pipes]

        def call(pipe: Any, batch: int) -> Any:
            with torch.inference_mode():
                return pipe(prompt=EMBEDDED_PROMPT, width=d.get("width"), height=d.get("height"),
                            num_inference_steps=d.get("steps", 20), guidance_scale=d.get("guidance", 0.0),
                            num_images_per_prompt=batch,
                            generator=[torch.Generator("cpu").manual_seed(i) for i in range(batch)],
                            output_type="np").images

        row: dict[str, Any] = {"defaults": dict(d)}
        b1 = interleaved({p: (lambda pp=pipes[p]: call(pp, 1)) for p in model_paths}, repeats)
        outputs: dict[str, Any] = {}

        def batch16(path: str) -> None:
            outputs[path] = call(pipes[path], 16)

        # Batch 16 is warm after the batch-1 runs; fewer trials keep the whole bench < 10 min.
        b16 = interleaved({p: (lambda pp=p: batch16(pp)) for p in model_paths}, max(1, repeats // 3), warmup=0)
        for p in model_paths:
            diff = float(abs(outputs[p].astype("float64") - outputs["eager_fp32"].astype("float64")).max())
            row[p] = {"batch1_latency": b1[p], "batch16_images_per_s": 16 / b16[p]["median_s"],
                      "batch16": b16[p], "max_abs_diff_vs_eager": diff,
                      "batch1_over_eager": ratio(b1, p, "eager_fp32"),
                      "batch16_over_eager": ratio(b16, p, "eager_fp32")}
        usable = [p for p in model_paths if row[p]["max_abs_diff_vs_eager"] <= 2 / 255]
        row["fastest_within_tolerance_batch16"] = min(usable, key=lambda p: row[p]["batch16"]["median_s"])
        results["models"][model_id] = row
        del pipes
    lat = {m: r["eager_fp32"]["batch1_latency"]["median_s"] for m, r in results["models"].items() if "eager_fp32" in r}
    if "genimg-diffusion" in lat:
        results["speedup_vs_diffusion_batch1"] = {m: lat["genimg-diffusion"] / v for m, v in lat.items()}
    # What the app serves: ONNX Runtime for the UNet models, eager for the one-step ones.
    served = {m: r.get("onnxruntime", r.get("eager_fp32"))["batch1_latency"]["median_s"]
              for m, r in results["models"].items() if "eager_fp32" in r}
    if "genimg-diffusion" in served:
        results["speedup_vs_diffusion_batch1_served"] = {m: served["genimg-diffusion"] / v for m, v in served.items()}
    results["note"] = ("one prompt, repeated: after the first call its MiniLM encoding comes from the pipeline's "
                       "prompt cache, as for re-rolled seeds and Compare columns in the app")
    return results

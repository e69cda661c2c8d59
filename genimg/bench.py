"""``python -m genimg bench``: speed as ratios against bare baselines measured in the same run.

These machines are noisy, so every figure is the median of repeated trials, the variants
of one comparison are interleaved trial by trial (A B C A B C ...) so drift hits them
alike, and the spread (min..max) is reported next to each median.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from genimg import __version__

SECTIONS = ("handle_reuse", "dashboard_overhead", "cpu_dtype", "metrics", "embedded", "concurrency")


def _stats(samples: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "n": len(samples)}


def interleaved_samples(variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every variant ``warmup`` times, then time each ``repeats`` times, interleaved (A B A B ...).

    Returns the seconds of every trial per variant.
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
    """Time each variant ``repeats`` times, interleaved; return per-variant stats (median, min, max)."""
    return {name: _stats(values) for name, values in interleaved_samples(variants, repeats, warmup).items()}


def _ratio(stats: dict[str, dict[str, float]], name: str, baseline: str) -> float:
    return stats[name]["median_s"] / stats[baseline]["median_s"]


def _tiny_catalog(folder: Path) -> dict[str, Any]:
    from genimg.models.catalog import ModelSpec
    from genimg.models.tiny import build_tiny_sd_pipeline

    path = build_tiny_sd_pipeline(folder / "tiny-sd", seed=0)
    return {"tiny-sd": ModelSpec(id="tiny-sd", name="Tiny SD (random weights)", backend="diffusers",
                                 source=str(path), tasks=("text-to-image", "image-to-image", "inpaint"),
                                 dtype="fp32", defaults={"width": 64, "height": 64, "steps": 4, "guidance": 5.0})}


def bench_handle_reuse(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """Cold load (fresh pool) vs warm acquire (loaded pool); from_pipe extra bytes."""
    from genimg.models.pool import ModelPool, module_nbytes

    cold: list[float] = []
    warm: list[float] = []
    warm_pool = ModelPool(dict(catalog))
    with warm_pool.acquire(model_id):
        pass
    for _ in range(repeats):
        fresh = ModelPool(dict(catalog))
        started = time.perf_counter()
        with fresh.acquire(model_id):
            pass
        cold.append(time.perf_counter() - started)
        fresh.clear()
        for _ in range(10):
            started = time.perf_counter()
            with warm_pool.acquire(model_id):
                pass
            warm.append(time.perf_counter() - started)
    result: dict[str, Any] = {"model": model_id, "cold_load": _stats(cold), "warm_acquire": _stats(warm)}
    result["warm_over_cold"] = result["warm_acquire"]["median_s"] / result["cold_load"]["median_s"]
    result["goal"] = "warm acquire < 1% of cold load"
    result["goal_met"] = result["warm_over_cold"] < 0.01
    spec = catalog[model_id]
    if spec.backend == "diffusers":
        with warm_pool.acquire(model_id) as lease:
            base_ptrs = {p.data_ptr() for p in lease.model.unet.parameters()}
            extra = {}
            for kind in ("img2img", "inpaint"):
                variant = lease.variant(kind)
                new = [p for p in variant.unet.parameters() if p.data_ptr() not in base_ptrs]
                extra[kind] = sum(p.numel() * p.element_size() for p in new)
            result["from_pipe_extra_parameter_bytes"] = extra
            result["model_bytes"] = module_nbytes(lease.model)
    return result


def bench_dashboard_overhead(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """Bare pipeline call vs genimg.tasks.generate vs /generate through gradio_client."""
    import json

    import httpx
    from gradio_client import Client

    from genimg.models.pool import ModelPool
    from genimg.tasks.generate import GenerateRequest, generate, resolve_request
    from genimg.ui.app import build_app

    pool = ModelPool(dict(catalog))
    spec = pool.spec(model_id)
    request = GenerateRequest(prompt="a small red circle on a blue background", model=model_id, seed=1234)
    resolved = resolve_request(request, spec)
    with pool.acquire(model_id) as lease:
        pipe = lease.model

    def bare() -> None:
        with torch.inference_mode():
            pipe(prompt=resolved["prompt"], width=resolved["width"], height=resolved["height"],
                 num_inference_steps=resolved["steps"], guidance_scale=resolved["guidance"],
                 generator=[torch.Generator("cpu").manual_seed(resolved["seed"])], output_type="pil")

    def direct() -> None:
        generate(request, pool)

    demo = build_app(pool)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def through_api() -> None:
            client.predict(request.prompt, "", model_id, None, None, None, None, "default", 1234, 1,
                           api_name="/generate")

        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

        def through_http() -> None:
            # What curl (or any HTTP client) does: Gradio's REST call API, then fetch the image.
            # gradio_client polls its SSE message queue every 50 ms (gradio_client/utils.py), so
            # this path is the one that shows the server's own overhead.
            data = [request.prompt, "", model_id, None, None, None, None, "default", 1234, 1]
            event = http.post("/gradio_api/call/generate", json={"data": data}).json()["event_id"]
            payload = None
            with http.stream("GET", f"/gradio_api/call/generate/{event}") as stream:
                kind = None
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind in ("complete", "error"):
                        payload = json.loads(line.split(":", 1)[1])
                        break
            if kind != "complete" or not payload:
                raise RuntimeError(f"/generate over HTTP failed: {kind} {payload}")
            http.get(payload[0][0]["image"]["url"]).raise_for_status()

        stats = interleaved({"bare_pipeline": bare, "direct_task": direct, "http_api": through_http,
                             "gradio_client": through_api}, repeats)
        http.close()
    finally:
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):  # Gradio prints "Closing server..." on stdout
            demo.close()
    return {
        "model": model_id, "params": {k: resolved[k] for k in ("width", "height", "steps", "guidance")},
        **stats,
        "direct_over_bare": _ratio(stats, "direct_task", "bare_pipeline"),
        "http_over_bare": _ratio(stats, "http_api", "bare_pipeline"),
        "api_over_bare": _ratio(stats, "gradio_client", "bare_pipeline"),
        "api_over_direct": _ratio(stats, "gradio_client", "direct_task"),
        "goal": "http_over_bare and api_over_bare <= 1.10 on the embedded diffusion model",
    }


def bench_cpu_dtype(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """fp32 vs bf16 for the same model on the CPU (the dtype policy's evidence)."""
    from dataclasses import replace

    from genimg.models.pool import ModelPool
    from genimg.tasks.generate import GenerateRequest, generate

    spec = catalog[model_id]
    pools = {name: ModelPool({model_id: replace(spec, dtype=name)}) for name in ("fp32", "bf16")}
    request = GenerateRequest(prompt="a small red circle on a blue background", model=model_id, seed=7)
    stats = interleaved({name: (lambda p=p: generate(request, p)) for name, p in pools.items()}, repeats)
    from genimg.models.device import cpu_has_native_bf16

    return {"model": model_id, **stats, "bf16_over_fp32": _ratio(stats, "bf16", "fp32"),
            "cpu_native_bf16": cpu_has_native_bf16()}


def bench_metrics_section(_catalog: dict[str, Any], _model_id: str, repeats: int) -> dict[str, Any]:
    """SSIM/PSNR throughput vs scikit-image on the same arrays (genimg.metrics.bench)."""
    from genimg.metrics.bench import bench_metrics

    return bench_metrics(repeats=repeats)


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
                      "batch1_over_eager": _ratio(b1, p, "eager_fp32"),
                      "batch16_over_eager": _ratio(b16, p, "eager_fp32")}
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


def bench_concurrency(_catalog: dict[str, Any], _model_id: str, _repeats: int, clients: int = 8,
                      requests_per_client: int = 10) -> dict[str, Any]:
    """``clients`` x ``requests_per_client`` concurrent /generate requests vs the same number from one client.

    Runs on the fastest shipped embedded model (genimg-fewstep, else any embedded model whose
    weights are here) through the real app on loopback, twice concurrently: with micro-batching
    (the default, genimg.tasks.batching) and without (GENIMG_MICROBATCH=1). Each concurrent run
    checks every image against a sequential reference run of the same prompt and seed
    (per-seed identity) and counts lost and mismatched answers. Returns the runs' figures and
    the throughput ratios against the one-client run.
    """
    import os

    from genimg.loadtest import run_load
    from genimg.models.catalog import load_catalog
    from genimg.models.pool import ModelPool
    from genimg.ui.app import build_app

    pool = ModelPool(load_catalog())
    candidates = ["genimg-fewstep"] + [m for m, spec in pool.catalog.items() if spec.backend == "embedded"]
    model = next((m for m in candidates if m in pool.catalog and pool.availability(m)[0]), None)
    if model is None:
        return {"model": None, "skipped": "no embedded model weights here"}
    total = clients * requests_per_client
    keep = ("sent", "answered", "rejected", "errors", "lost", "mismatched", "seconds", "requests_per_s")
    runs: dict[str, Any] = {}
    previous = os.environ.get("GENIMG_MICROBATCH")
    try:
        for name, microbatch in (("no_microbatching", "1"), ("microbatching", "")):
            os.environ["GENIMG_MICROBATCH"] = microbatch  # read when the app is built
            app = build_app(pool)
            if not runs:
                runs["sequential_one_client"] = run_load(app, clients=1, requests_per_client=total,
                                                         endpoints=("/generate",), model=model, reference=False)
            runs[f"concurrent_{name}"] = run_load(app, clients=clients, requests_per_client=requests_per_client,
                                                  endpoints=("/generate",), model=model, reference=True)
    finally:
        if previous is None:
            os.environ.pop("GENIMG_MICROBATCH", None)
        else:
            os.environ["GENIMG_MICROBATCH"] = previous
    base = runs["sequential_one_client"]["requests_per_s"]
    return {"model": model, "clients": clients, "requests_per_client": requests_per_client,
            **{name: {k: run.get(k) for k in keep} for name, run in runs.items()},
            "throughput_concurrent_over_sequential": runs["concurrent_no_microbatching"]["requests_per_s"] / base,
            "throughput_microbatched_over_sequential": runs["concurrent_microbatching"]["requests_per_s"] / base,
            "goal": "no request lost, per-seed outputs identical to the sequential run; throughput ratios reported"}


def environment() -> dict[str, Any]:
    import diffusers
    import gradio

    return {"genimg": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "gradio": gradio.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def run_bench(quick: bool = False, repeats: int | None = None, only: list[str] | None = None,
              model: str | None = None) -> dict[str, Any]:
    """Run the benchmark sections; return one JSON-able report."""
    from genimg.errors import GenimgError

    repeats = repeats or (3 if quick else 7)
    sections = only or list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise GenimgError(f"unknown bench section(s) {', '.join(unknown)}: use {', '.join(SECTIONS)}")
    report: dict[str, Any] = {"environment": environment(), "repeats": repeats, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="genimg-bench-") as tmp:
        catalog = _tiny_catalog(Path(tmp))
        model_id = "tiny-sd"
        report["note"] = "tiny-sd is a random-weight SD-shaped pipeline built from configs (plumbing speed only)"
        runners = {"handle_reuse": bench_handle_reuse, "dashboard_overhead": bench_dashboard_overhead,
                   "cpu_dtype": bench_cpu_dtype, "metrics": bench_metrics_section,
                   "embedded": bench_embedded, "concurrency": bench_concurrency}
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
                report["sections"][name] = runners[name](overhead_catalog, overhead_model, repeats)
            else:
                report["sections"][name] = runners[name](catalog, model_id, repeats)
            report["sections"][name]["section_wall_s"] = time.perf_counter() - started
    return report


def format_table(report: dict[str, Any]) -> str:
    """A readable summary of the report's ratios."""
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

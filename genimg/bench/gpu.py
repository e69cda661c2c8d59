"""``python -m genimg bench --random-weights``: GPU speed of full-size SD 1.5 / SD-Turbo / SDXL
architectures with random weights, so timings need no download.

Speed does not depend on weight values, only on shapes, dtypes and kernels, so every model
here is built from its published ``config.json`` (written out in :mod:`genimg.bench.gpu_configs`,
with the reference figures and the counting helpers) and initialised at
random on the GPU. Measured per model: UNet step latency at batch 1 and 2 (2 = classifier-free
guidance) at the model's native size, VAE decode at 512², achieved TFLOP/s against the
device's bf16 dense peak, for the variants fp16 eager / bf16 eager / bf16 channels_last /
bf16 channels_last + torch.compile, each where it runs. FLOPs are counted once with
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (shapes only, no compute):
that part also runs on a CPU (``flops_only=True``). Then an SD-Turbo-shaped pipeline end to end
(1 step, 512², guidance 0): genimg's path (pool + ``genimg.tasks.generate`` over a saved folder,
so the real loader and its fast path run) against the fastest bare diffusers configuration in
the same run.

Timings are medians of ``repeats`` device-synchronised trials after warm-up (CUDA-graph
recording and compilation happen in the warm-up).
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

# The builders read MODELS / SD_VAE / OPENCLIP_H_TEXT through this module's names, so the CPU smoke
# test can swap in tiny configs here.
from genimg.bench.gpu_configs import (DEFAULT_COMPILE_MODE, END_TO_END_GOAL, MODELS, OPENCLIP_H_TEXT,
                                      REFERENCE_TFLOP, SD_TURBO_SCHEDULER, SD_VAE, UNET_PEAK_GOAL,
                                      VAE_PUBLISHED_PARAMS, VARIANTS, count_flops, count_parameters,
                                      device_peak_bf16_tflops)
from genimg.bench.timing import stats as _stats
from genimg.errors import GenimgError


def build_unet(name: str, device: str | torch.device = "meta") -> torch.nn.Module:
    """The full-size UNet of ``name`` (sd15 / sd-turbo / sdxl), random weights, fp32, on ``device``.

    Raises GenimgError for an unknown name.
    """
    from diffusers import UNet2DConditionModel

    if name not in MODELS:
        raise GenimgError(f"unknown random-weights model {name!r}: use one of {', '.join(MODELS)}")
    with torch.device(device):
        return UNet2DConditionModel(**MODELS[name][0])


def build_vae(device: str | torch.device = "meta") -> torch.nn.Module:
    """The full-size SD AutoencoderKL, random weights, fp32, on ``device``."""
    from diffusers import AutoencoderKL

    with torch.device(device):
        return AutoencoderKL(**SD_VAE)


def build_text_encoder(device: str | torch.device = "meta") -> torch.nn.Module:
    """The full-size OpenCLIP-H text encoder of SD 2.x / SD-Turbo, random weights, fp32."""
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device(device):
        return CLIPTextModel(CLIPTextConfig(**OPENCLIP_H_TEXT))


def unet_inputs(name: str, batch: int, device: str | torch.device, dtype: torch.dtype,
                side: int | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments of one UNet step (latents, timestep, text states, SDXL extras)."""
    config, native_side, _ = MODELS[name]
    side = side or native_side
    make = torch.empty if torch.device(device).type == "meta" else torch.randn
    sample = make(batch, 4, side, side, device=device, dtype=dtype)
    timestep = torch.tensor(999.0, device=device)
    context = make(batch, 77, config["cross_attention_dim"], device=device, dtype=dtype)
    kwargs: dict[str, Any] = {"encoder_hidden_states": context, "return_dict": False}
    if config.get("addition_embed_type") == "text_time":
        kwargs["added_cond_kwargs"] = {"text_embeds": make(batch, 1280, device=device, dtype=dtype),
                                       "time_ids": make(batch, 6, device=device, dtype=dtype)}
    return (sample, timestep), kwargs


def unet_flops(name: str, batch: int = 1, side: int | None = None, unet: torch.nn.Module | None = None) -> int:
    """FLOPs of one UNet step of ``name`` at ``batch`` (meta device, no compute; ``unet``: one already built)."""
    unet = unet if unet is not None else build_unet(name, "meta")
    args, kwargs = unet_inputs(name, batch, "meta", torch.float32, side)
    return count_flops(lambda: unet(*args, **kwargs))[0]


def vae_decode_flops(side: int = 512, batch: int = 1, vae: torch.nn.Module | None = None) -> int:
    """FLOPs of decoding one ``side``² image with the SD VAE (meta device; ``vae``: one already built)."""
    vae = vae if vae is not None else build_vae("meta")
    latents = torch.empty(batch, 4, side // 8, side // 8, device="meta")
    return count_flops(lambda: vae.decode(latents))[0]


def text_encoder_flops(encoder: torch.nn.Module | None = None) -> int:
    """FLOPs of one OpenCLIP-H text encoding of 77 tokens (meta device)."""
    encoder = encoder if encoder is not None else build_text_encoder("meta")
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")
    return count_flops(lambda: encoder(ids))[0]


def flops_report(models: tuple[str, ...] = tuple(MODELS)) -> dict[str, Any]:
    """Parameter and FLOP counts of the architectures against the published / reference figures.

    Runs on the meta device (seconds, no weights in memory). Returns a JSON-able dict.
    """
    out: dict[str, Any] = {}
    for name in models:
        unet = build_unet(name, "meta")
        params = count_parameters(unet)
        flops = unet_flops(name, unet=unet)
        del unet
        published = MODELS[name][2]
        side = MODELS[name][1] * 8
        row: dict[str, Any] = {"parameters": params, "published_parameters": published,
                               "parameters_diff_pct": 100.0 * (params - published) / published,
                               "resolution": side, "unet_tflop_per_step_batch1": flops / 1e12}
        if name in REFERENCE_TFLOP:
            ref = REFERENCE_TFLOP[name]
            row["reference_tflop"] = ref
            row["tflop_diff_pct"] = 100.0 * (flops / 1e12 - ref) / ref
        out[name] = row
    vae = build_vae("meta")
    vflops = vae_decode_flops(512, vae=vae)
    vparams = count_parameters(vae)
    out["vae"] = {"parameters": vparams, "published_parameters": VAE_PUBLISHED_PARAMS,
                  "parameters_diff_pct": 100.0 * (vparams - VAE_PUBLISHED_PARAMS) / VAE_PUBLISHED_PARAMS,
                  "decode_tflop_512": vflops / 1e12, "reference_tflop": REFERENCE_TFLOP["vae_decode_512"],
                  "tflop_diff_pct": 100.0 * (vflops / 1e12 - REFERENCE_TFLOP["vae_decode_512"])
                  / REFERENCE_TFLOP["vae_decode_512"]}
    encoder = build_text_encoder("meta")
    out["text_encoder_openclip_h"] = {"parameters": count_parameters(encoder),
                                      "tflop_77_tokens": text_encoder_flops(encoder) / 1e12}
    out["counting"] = ("torch.utils.flop_counter.FlopCounterMode on the meta device: convolutions, matmuls and "
                       "attention as 2 FLOPs per multiply-add; normalisation and pointwise ops are not counted. "
                       "A batch of b costs b times the batch-1 figure.")
    return out


# --- timing -------------------------------------------------------------------------------------
# The timed code runs on CUDA; the CPU smoke test points this at "cpu" with tiny configs.
DEVICE = "cuda"


def _on_cuda() -> bool:
    return torch.device(DEVICE).type == "cuda"


def _sync() -> None:
    if _on_cuda():
        torch.cuda.synchronize()


def _bf16_ok() -> bool:
    return torch.cuda.is_bf16_supported() if _on_cuda() else True


WARMUP = 3  # calls before timing: cuDNN/cuBLAS heuristics, allocator growth, compile + CUDA-graph recording


def cuda_time(fn: Callable[[], Any], repeats: int, warmup: int | None = None) -> dict[str, float]:
    """Median/min/max seconds of ``fn`` over ``repeats`` trials, each between two device syncs.

    ``warmup`` untimed calls first (default :data:`WARMUP`); whatever ``fn`` raises propagates.
    """
    for _ in range(WARMUP if warmup is None else warmup):
        fn()
    _sync()
    samples = []
    for _ in range(repeats):
        _sync()
        started = time.perf_counter()
        fn()
        _sync()
        samples.append(time.perf_counter() - started)
    return _stats(samples)


def _free() -> None:
    gc.collect()
    if _on_cuda():
        torch.cuda.empty_cache()


def _reset_compiler() -> None:
    # Each compiled module instance adds guards to the same code object; reset between models so
    # dynamo's recompile limit (8 per code object) is never what a measurement runs into.
    import torch._dynamo

    torch._dynamo.reset()


def _compile(module: torch.nn.Module, mode: str) -> Callable[..., Any]:
    # dynamic=False: every measured shape gets its own fully specialised graph (dynamo would
    # otherwise switch to a dynamic-batch graph when batch 2 follows batch 1).
    return torch.compile(module, mode=None if mode == "default" else mode, dynamic=False)


def _variant_modules(base: torch.nn.Module, variants: tuple[str, ...], compile_mode: str,
                     notes: list[str]) -> Any:
    """Yield (variant, callable module) for each runnable variant, converting ``base`` in place
    (fp16 -> bf16 -> channels_last) so only one copy of the weights is on the device at a time."""
    bf16_ok = _bf16_ok()
    if "fp16" in variants:
        yield "fp16", base.to(torch.float16), torch.float16
    if not bf16_ok:
        notes.append("bf16 variants skipped: this GPU has no bf16")
        return
    if "bf16" in variants:
        yield "bf16", base.to(torch.bfloat16), torch.bfloat16
    if "bf16_channels_last" in variants or "bf16_compile" in variants:
        base.to(torch.bfloat16).to(memory_format=torch.channels_last)
        if "bf16_channels_last" in variants:
            yield "bf16_channels_last", base, torch.bfloat16
        if "bf16_compile" in variants:
            yield "bf16_compile", _compile(base, compile_mode), torch.bfloat16


def _measure(row: dict[str, Any], key: str, fn: Callable[[], Any], flops: int, peak: float | None,
             repeats: int) -> None:
    try:
        if _on_cuda():
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            stats = cuda_time(fn, repeats)
    except Exception as exc:  # a variant that does not run here (no triton, OOM...) is reported, not fatal
        row[key] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
        _free()
        return
    tflops = flops / stats["median_s"] / 1e12
    row[key] = {**stats, "tflop": flops / 1e12, "achieved_tflops": tflops,
                "pct_of_bf16_peak": None if peak is None else 100.0 * tflops / peak,
                "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if _on_cuda() else None}


def bench_unet(name: str, variants: tuple[str, ...], repeats: int, compile_mode: str,
               peak: float | None) -> dict[str, Any]:
    """UNet step latency at batch 1 and 2 for each variant; TFLOP/s and % of the bf16 peak.

    Takes the model name, the variants, trials per measurement, the torch.compile mode and the
    device's bf16 peak (None: unknown). Returns resolution, TFLOP per step and per variant its
    rows; a variant that fails here (no triton, out of memory...) is a row with its error.
    """
    flops1 = unet_flops(name, 1)
    side = MODELS[name][1] * 8
    notes: list[str] = []
    result: dict[str, Any] = {"resolution": side, "tflop_per_step_batch1": flops1 / 1e12, "variants": {},
                              "notes": notes}
    unet = build_unet(name, DEVICE).eval()
    for variant, module, dtype in _variant_modules(unet, variants, compile_mode, notes):
        row: dict[str, Any] = {}
        for batch in (1, 2):
            args, kwargs = unet_inputs(name, batch, DEVICE, dtype)
            _measure(row, f"batch{batch}", lambda m=module, a=args, k=kwargs: m(*a, **k), flops1 * batch, peak,
                     repeats)
        result["variants"][variant] = row
        del module
    del unet
    _reset_compiler()
    _free()
    return result


def bench_vae(variants: tuple[str, ...], repeats: int, compile_mode: str, peak: float | None) -> dict[str, Any]:
    """VAE decode of one 512² image per variant (the decoder is what a text-to-image call runs).

    Takes what :func:`bench_unet` takes, less the model. Returns TFLOP per decode and per
    variant its row (or its error).
    """
    flops = vae_decode_flops(512)
    notes: list[str] = []
    result: dict[str, Any] = {"resolution": 512, "tflop": flops / 1e12, "variants": {}, "notes": notes}
    vae = build_vae(DEVICE).eval()
    for variant, module, dtype in _variant_modules(vae, variants, compile_mode, notes):
        latents = torch.randn(1, 4, 64, 64, device=DEVICE, dtype=dtype)
        if variant == "bf16_compile":  # compile the decoder (what decode runs), not the whole autoencoder
            decoder, post = _compile(vae.decoder, compile_mode), vae.post_quant_conv
            fn = lambda d=decoder, p=post, z=latents: d(p(z))  # noqa: E731
        else:
            fn = lambda m=module, z=latents: m.decode(z)  # noqa: E731
        row: dict[str, Any] = {}
        _measure(row, "batch1", fn, flops, peak, repeats)
        result["variants"][variant] = row
        del module, fn
    del vae
    _reset_compiler()
    _free()
    return result


# --- end to end: SD-Turbo-shaped, 1 step, 512², guidance 0 ---------------------------------------
def build_sd_turbo_shaped(folder: Path, device: str | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Save a full-size SD-Turbo-shaped pipeline with random weights (safetensors) to ``folder``.

    SD 2.1 UNet + SD VAE + OpenCLIP-H text encoder (23 layers) + the offline tiny CLIP tokenizer
    (77 tokens, so the text encoder does the real amount of work) + SD-Turbo's Euler scheduler.
    """
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from genimg.models.tiny import write_tiny_clip_tokenizer

    device = device or DEVICE
    tok_dir = Path(tempfile.mkdtemp(prefix="genimg-tok-"))
    write_tiny_clip_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer(vocab=str(tok_dir / "vocab.json"), merges=str(tok_dir / "merges.txt"),
                              model_max_length=77)
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        vae=build_vae(device).to(dtype), text_encoder=build_text_encoder(device).to(dtype), tokenizer=tokenizer,
        unet=build_unet("sd-turbo", device).to(dtype), scheduler=EulerDiscreteScheduler.from_config(SD_TURBO_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    import shutil

    shutil.rmtree(tok_dir, ignore_errors=True)
    del pipe
    return Path(folder)


E2E_PROMPT = "a photo of a cat"
E2E_SIDE = 512  # SD-Turbo's native size (the CPU smoke test shrinks it)


def bench_end_to_end(repeats: int, compile_mode: str, workdir: Path) -> dict[str, Any]:
    """genimg's generate (pool + task function + loader fast path) vs bare diffusers configurations,
    interleaved trial by trial, all on the same saved SD-Turbo-shaped pipeline.

    Takes trials per configuration, the torch.compile mode and a scratch folder for the saved
    pipeline. Returns the timings, the errors of configurations that could not load, genimg's
    fast-path notes, the ratios to the fastest bare configuration and the goal.
    """
    from diffusers import StableDiffusionPipeline

    from genimg.models.catalog import ModelSpec
    from genimg.models.pool import ModelPool
    from genimg.tasks.generate import GenerateRequest, generate

    folder = build_sd_turbo_shaped(workdir / "sd-turbo-random")
    _free()
    defaults = {"width": E2E_SIDE, "height": E2E_SIDE, "steps": 1, "guidance": 0.0}

    def bare_pipe(dtype: torch.dtype, channels_last: bool, compiled: bool) -> Any:
        pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype, use_safetensors=True).to(DEVICE)
        pipe.set_progress_bar_config(disable=True)
        if channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        if compiled:
            pipe.unet = _compile(pipe.unet, compile_mode)
        return pipe

    def bare_call(pipe: Any) -> Callable[[], Any]:
        def call() -> Any:
            with torch.inference_mode():
                return pipe(E2E_PROMPT, width=E2E_SIDE, height=E2E_SIDE, num_inference_steps=1, guidance_scale=0.0,
                            generator=torch.Generator("cpu").manual_seed(1), output_type="pil").images[0]
        return call

    calls: dict[str, Callable[[], Any]] = {}
    errors: dict[str, str] = {}
    configs = {"bare_fp16": (torch.float16, False, False), "bare_fp16_channels_last": (torch.float16, True, False),
               "bare_fp16_channels_last_compile": (torch.float16, True, True)}
    if _bf16_ok():
        configs["bare_bf16"] = (torch.bfloat16, False, False)
    for key, cfg in configs.items():
        try:
            calls[key] = bare_call(bare_pipe(*cfg))
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    genimg_specs = {
        "genimg_default": ModelSpec(id="sd-turbo-random", name="SD-Turbo-shaped (random)", backend="diffusers",
                                    source=str(folder), tasks=("text-to-image",), defaults=dict(defaults)),
        "genimg_compile": ModelSpec(id="sd-turbo-random", name="SD-Turbo-shaped (random)", backend="diffusers",
                                    source=str(folder), tasks=("text-to-image",), defaults=dict(defaults),
                                    options={"compile": compile_mode, "channels_last": "on"}),
    }
    pools: dict[str, ModelPool] = {}
    fast_paths: dict[str, Any] = {}
    for key, spec in genimg_specs.items():
        pool = ModelPool({spec.id: spec})
        try:
            with pool.acquire(spec.id) as lease:  # load (and compile + warm up) outside the timed trials
                fast_paths[key] = getattr(lease.model, "genimg_fast_path", None)
            pools[key] = pool
            calls[key] = (lambda p=pool: generate(GenerateRequest(prompt=E2E_PROMPT, model="sd-turbo-random",
                                                                  seed=1), p))
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    # Interleaved (A B C A B C ...) so clock/thermal drift hits every configuration alike.
    for fn in calls.values():
        for _ in range(WARMUP):
            fn()
    samples: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            _sync()
            started = time.perf_counter()
            fn()
            _sync()
            samples[key].append(time.perf_counter() - started)
    stats = {key: _stats(values) for key, values in samples.items()}
    result: dict[str, Any] = {"params": {**defaults, "prompt": E2E_PROMPT}, "timings": stats, "errors": errors,
                              "genimg_fast_path": fast_paths}
    bare = {k: v["median_s"] for k, v in stats.items() if k.startswith("bare_")}
    if bare:
        fastest = min(bare, key=bare.get)
        result["fastest_bare"] = fastest
        for key in ("genimg_default", "genimg_compile"):
            if key in stats:
                result[f"{key}_over_fastest_bare"] = stats[key]["median_s"] / bare[fastest]
        same = {"genimg_default": "bare_fp16_channels_last", "genimg_compile": "bare_fp16_channels_last_compile"}
        for key, twin in same.items():
            if key in stats and twin in stats:  # same configuration: what genimg's own code costs
                result[f"{key}_over_{twin}"] = stats[key]["median_s"] / stats[twin]["median_s"]
        best = min((result.get(f"{k}_over_fastest_bare", float("inf")) for k in genimg_specs), default=float("inf"))
        result["goal"] = f"genimg <= {END_TO_END_GOAL}x the fastest bare diffusers configuration"
        result["goal_met"] = best <= END_TO_END_GOAL
    del calls, pools
    _reset_compiler()
    _free()
    return result


def run_random_weights(models: tuple[str, ...] = ("sd15", "sd-turbo", "sdxl"), variants: tuple[str, ...] = VARIANTS,
                       repeats: int = 20, compile_mode: str = DEFAULT_COMPILE_MODE, flops_only: bool = False,
                       end_to_end: bool = True) -> dict[str, Any]:
    """The ``--random-weights`` benchmark; returns one JSON-able report.

    Takes the models (sd15, sd-turbo, sdxl), variants (fp16, bf16, bf16_channels_last,
    bf16_compile), trials per measurement, the torch.compile mode, ``flops_only`` (parameter and
    FLOP counts on the meta device: works without a GPU) and whether to run the SD-Turbo-shaped
    end-to-end comparison. Raises GenimgError for unknown names or when timing is asked for
    without a CUDA GPU.
    """
    from genimg.models.diffusers_backend import COMPILE_MODES

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise GenimgError(f"unknown random-weights model(s) {', '.join(unknown)}: use {', '.join(MODELS)}")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise GenimgError(f"unknown variant(s) {', '.join(bad)}: use {', '.join(VARIANTS)}")
    if compile_mode not in COMPILE_MODES or compile_mode == "off":
        raise GenimgError(f"unknown compile mode {compile_mode!r}: use one of {', '.join(COMPILE_MODES[1:])} "
                          "(leave bf16_compile out of the variants to skip compiling)")
    if repeats < 1:
        raise GenimgError("repeats must be at least 1")
    if not flops_only and not torch.cuda.is_available():
        raise GenimgError("--random-weights needs a CUDA GPU; torch sees none on this machine "
                          f"(torch {torch.__version__}) — FLOP counts only with --flops-only")
    report: dict[str, Any] = {"mode": "random-weights", "torch": torch.__version__,
                              "flops": flops_report(tuple(models))}
    if flops_only:
        report["device"] = None
        report["note"] = "FLOP and parameter counts only (meta device); no timings"
        return report
    import diffusers

    name = torch.cuda.get_device_name()
    peak = device_peak_bf16_tflops(name)
    report.update({"device": name, "bf16_peak_tflops": peak, "diffusers": diffusers.__version__,
                   "repeats": repeats, "compile_mode": compile_mode, "variants": list(variants),
                   "unet": {}, "goals": {}})
    if peak is None:
        report["note"] = f"bf16 peak of {name!r} unknown: add it to PEAK_BF16_TFLOPS for % of peak"
    for model in models:
        started = time.perf_counter()
        report["unet"][model] = bench_unet(model, tuple(variants), repeats, compile_mode, peak)
        report["unet"][model]["wall_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report["vae_decode"] = bench_vae(tuple(variants), repeats, compile_mode, peak)
    report["vae_decode"]["wall_s"] = time.perf_counter() - started
    best_pct = [row.get("pct_of_bf16_peak") for m in report["unet"].values() for v in m["variants"].values()
                for row in v.values() if isinstance(row, dict) and row.get("pct_of_bf16_peak") is not None]
    if best_pct:
        report["goals"]["unet_best_pct_of_bf16_peak"] = max(best_pct)
        report["goals"]["unet_goal_met"] = max(best_pct) >= 100 * UNET_PEAK_GOAL
    if end_to_end:
        with tempfile.TemporaryDirectory(prefix="genimg-gpu-bench-") as tmp:
            started = time.perf_counter()
            report["end_to_end"] = bench_end_to_end(repeats, compile_mode, Path(tmp))
            report["end_to_end"]["wall_s"] = time.perf_counter() - started
        report["goals"]["end_to_end_goal_met"] = report["end_to_end"].get("goal_met")
    return report


def format_table(report: dict[str, Any]) -> str:
    """A readable summary of a :func:`run_random_weights` report."""
    lines = [f"genimg bench --random-weights — {report.get('device') or 'no GPU (counts only)'}, "
             f"torch {report['torch']}"]
    flops = report["flops"]
    lines.append("\n[architectures] parameters (published) · TFLOP per call (reference)")
    for name, row in flops.items():
        if not isinstance(row, dict):
            continue
        tflop = row.get("unet_tflop_per_step_batch1", row.get("decode_tflop_512", row.get("tflop_77_tokens")))
        ref = f" (ref {row['reference_tflop']:.2f}, {row['tflop_diff_pct']:+.1f}%)" if "reference_tflop" in row else ""
        pub = (f" ({row['published_parameters'] / 1e6:.1f}M, {row['parameters_diff_pct']:+.3f}%)"
               if "published_parameters" in row else "")
        lines.append(f"  {name:<24} {row['parameters'] / 1e6:9.1f}M{pub:<24} {tflop:7.3f} TFLOP{ref}")
    peak = report.get("bf16_peak_tflops")
    for model, section in report.get("unet", {}).items():
        lines.append(f"\n[unet {model} @ {section['resolution']}²] median ms · TFLOP/s · % of bf16 peak ({peak})")
        for variant, row in section["variants"].items():
            for batch, r in row.items():
                lines.append(_row(f"{variant} {batch}", r))
        lines.extend(f"  note: {n}" for n in section.get("notes", []))
    if "vae_decode" in report:
        lines.append("\n[vae decode @ 512²]")
        for variant, row in report["vae_decode"]["variants"].items():
            lines.append(_row(variant, row["batch1"]))
    e2e = report.get("end_to_end")
    if e2e:
        lines.append("\n[end to end: SD-Turbo-shaped, 1 step, 512², guidance 0]")
        for key, r in e2e["timings"].items():
            lines.append(f"  {key:<34} {r['median_s'] * 1000:9.2f} ms  (min {r['min_s'] * 1000:.2f}, "
                         f"max {r['max_s'] * 1000:.2f})")
        lines.append(f"  fastest bare: {e2e.get('fastest_bare')}")
        for key, value in e2e.items():
            if "_over_" in key and isinstance(value, float):
                lines.append(f"  {key:<52} {value:7.3f}")
        for key, err in e2e.get("errors", {}).items():
            lines.append(f"  {key:<34} error: {err}")
    if report.get("goals"):
        lines.append(f"\n[goals] {report['goals']}")
    return "\n".join(lines)


def _row(label: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"  {label:<28} error: {r['error']}"
    pct = "" if r.get("pct_of_bf16_peak") is None else f"{r['pct_of_bf16_peak']:6.1f}%"
    mem = "" if r.get("peak_memory_mb") is None else f", peak mem {r['peak_memory_mb']:.0f} MB"
    return (f"  {label:<28} {r['median_s'] * 1000:9.2f} ms  {r['achieved_tflops']:8.1f} TFLOP/s  {pct}"
            f"  (min {r['min_s'] * 1000:.2f}, max {r['max_s'] * 1000:.2f}{mem})")

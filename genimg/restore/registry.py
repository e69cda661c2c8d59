"""Restoration methods = catalog entries whose tasks include a restore task; how to run each.

Every method is borrowed from the shared pool, so a network (Real-ESRGAN, waifu2x, the
DAE, a diffusion pipeline) is loaded once and shared by the tab, the CLI and benchmarks.

- ``classical`` entries run :mod:`genimg.restore.classical` (float image, grayscale as one channel);
- ``ncnn`` entries run :mod:`genimg.restore.ncnn_models` (tiled, exact output size);
- ``diffusers`` text-to-image entries that list ``inpaint`` inpaint through ``Lease.variant("inpaint")``
  (diffusers ``from_pipe``: no second copy of the weights); a diffusers entry with task
  ``upscale`` is the SD ×4 upscaler pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from PIL import Image

from genimg.errors import GenimgError
from genimg.models.catalog import ModelSpec
from genimg.restore.classical import Context

RESTORE_TASKS = ("denoise", "deblur", "inpaint", "upscale", "face")
MAX_METHODS = 16
ProgressFn = Callable[[int, int], None]


def method_task(spec: ModelSpec) -> str | None:
    """The restore task a catalog entry performs here (None when it restores nothing)."""
    for task in RESTORE_TASKS:
        if task in spec.tasks:
            return task
    return None


def restore_methods(pool: Any, task: str | None = None) -> list[ModelSpec]:
    """Catalog entries usable as restorers (optionally only those of ``task``), in catalog order."""
    specs = [spec for spec in pool.catalog.values() if method_task(spec) is not None]
    return [s for s in specs if task is None or method_task(s) == task]


def check_methods(pool: Any, methods: Any) -> list[ModelSpec]:
    """Validate the requested methods (list, or comma-separated text); returns their specs.

    Raises GenimgError for none, too many, repeats, unknown ids or models that restore nothing.
    """
    if isinstance(methods, str):
        methods = methods.split(",")
    ids = [str(m).strip() for m in (methods or []) if m is not None and str(m).strip()]
    known = ", ".join(s.id for s in restore_methods(pool))
    if not ids:
        raise GenimgError(f"no restoration method chosen: pick one or more of {known}")
    if len(ids) > MAX_METHODS:
        raise GenimgError(f"at most {MAX_METHODS} methods per request, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise GenimgError("the same method was chosen twice: pick each method once")
    specs = []
    for method in ids:
        if method not in pool.catalog:
            raise GenimgError(f"unknown restoration method {method!r}: choose from {known} "
                              "(python -m genimg models lists which can run here)")
        spec = pool.catalog[method]
        if method_task(spec) is None:
            raise GenimgError(f"model {method!r} does not restore images (its tasks: {', '.join(spec.tasks)}); "
                              f"restoration methods: {known}")
        specs.append(spec)
    return specs


@dataclass
class MethodRun:
    """One method's output (uint8 RGB, H·s × W·s) with what it used and how long it took."""

    image: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    load_s: float = 0.0
    warm: bool = True


def target_scale(spec: ModelSpec, task: str, ctx: Context) -> int:
    """The output size factor: the context's scale for upscalers when set, else the method's own."""
    if task != "upscale":
        return 1
    if ctx.scale and ctx.scale > 1:
        return int(ctx.scale)
    return int(spec.options.get("scale", 4 if spec.backend == "diffusers" else 2))


def run_method(pool: Any, spec: ModelSpec, rgb: np.ndarray, ctx: Context, grayscale: bool = False,
               progress: ProgressFn | None = None) -> MethodRun:
    """Run one method on uint8 (H, W, 3) ``rgb``.

    Upscalers return ×scale; other methods return the input's size, then — when the
    degradation downscaled by ``ctx.scale`` — a bicubic ×scale so the result can be scored
    against the original (noted in the params). Raises GenimgError / ModelUnavailableError.
    """
    task = method_task(spec) or ""
    scale = target_scale(spec, task, ctx)
    run_ctx = replace(ctx, scale=scale)
    h, w = rgb.shape[:2]
    load_id = spec.id
    with pool.acquire(load_id) as lease:
        started = time.perf_counter()
        if spec.backend == "classical":
            x = rgb[..., :1] if grayscale else rgb  # the gate's grayscale RGB has R = G = B
            y, params = lease.model.run(x.astype(np.float32) / 255.0, run_ctx, progress)
            out = (np.clip(y, 0, 1) * 255.0 + 0.5).astype(np.uint8)
            out = np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out
        elif spec.backend == "ncnn":
            from genimg.restore.ncnn_models import restore as ncnn_restore

            out, params = ncnn_restore(lease.model, rgb, scale, spec.options, progress)
        elif spec.backend == "diffusers":
            out, params = _run_diffusers(lease, spec, task, rgb, run_ctx, progress)
        else:
            raise GenimgError(f"method {spec.id!r}: backend {spec.backend!r} cannot restore images")
        seconds = time.perf_counter() - started
    if out.shape[:2] != (h * scale, w * scale):
        raise RuntimeError(f"method {spec.id} returned {out.shape[1]}x{out.shape[0]}, expected "
                           f"{w * scale}x{h * scale}")
    if task != "upscale" and ctx.scale > 1:
        started = time.perf_counter()
        out = np.asarray(Image.fromarray(out).resize((w * ctx.scale, h * ctx.scale), Image.Resampling.BICUBIC))
        seconds += time.perf_counter() - started
        params = {**params, "then": f"bicubic ×{ctx.scale} to the original size"}
    if grayscale:
        out = np.repeat(out.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
    return MethodRun(image=out, params=params, seconds=seconds, load_s=lease.load_seconds, warm=not lease.cold)


# -- diffusion ------------------------------------------------------------------------------

def _step_callback(total: int, progress: ProgressFn | None):
    def on_step_end(_pipe, step, _timestep, callback_kwargs):
        if progress is not None:
            progress(min(step + 1, total), total)
        return callback_kwargs

    return on_step_end


def _run_diffusers(lease: Any, spec: ModelSpec, task: str, rgb: np.ndarray, ctx: Context,
                   progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
    import torch

    defaults = spec.defaults
    generator = torch.Generator("cpu").manual_seed(int(ctx.seed))
    h, w = rgb.shape[:2]
    if task == "inpaint":
        if ctx.mask is None:
            raise GenimgError("inpainting needs a mask: use a mask degradation (mask:strokes, mask:box) or paint / "
                              "pass one (--mask)")
        pipe = lease.variant("inpaint")
        # Latent models need sides that are multiples of 8: mirror-pad, then crop back.
        ph, pw = (-h) % 8, (-w) % 8
        image = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        mask = np.pad(ctx.mask, ((0, ph), (0, pw)), mode="constant")
        steps = max(1, int(defaults.get("steps", 25)))
        guidance = float(defaults.get("guidance", 7.5))
        with torch.inference_mode():
            result = pipe(prompt=ctx.prompt or "", image=Image.fromarray(image),
                          mask_image=Image.fromarray(mask.astype(np.uint8) * 255), height=image.shape[0],
                          width=image.shape[1], num_inference_steps=steps, guidance_scale=guidance, strength=1.0,
                          generator=generator, callback_on_step_end=_step_callback(steps, progress),
                          output_type="np")
        generated = (np.clip(result.images[0], 0, 1) * 255 + 0.5).astype(np.uint8)[:h, :w]
        # Known pixels stay exactly as they were; only the holes take generated content.
        out = np.where(ctx.mask[..., None], generated, rgb)
        return out, {"steps": steps, "guidance": guidance, "prompt": ctx.prompt, "seed": ctx.seed,
                     "pipeline": type(pipe).__name__ + " (from_pipe)"}
    if task == "upscale":
        pipe = lease.model
        if type(pipe).__name__ != "StableDiffusionUpscalePipeline":
            raise GenimgError(f"model {spec.id!r} was loaded as {type(pipe).__name__}, not as "
                              "StableDiffusionUpscalePipeline: the diffusers backend must honour options.pipeline")
        steps = int(defaults.get("steps", 20))
        with torch.inference_mode():
            result = pipe(prompt=ctx.prompt or "", image=Image.fromarray(rgb), num_inference_steps=steps,
                          guidance_scale=float(defaults.get("guidance", 0.0)),
                          noise_level=int(defaults.get("noise_level", 20)), generator=generator,
                          callback_on_step_end=_step_callback(steps, progress))
        out = result.images[0].convert("RGB")
        params = {"steps": steps, "noise_level": int(defaults.get("noise_level", 20)), "net_scale": 4}
        if out.size != (w * ctx.scale, h * ctx.scale):
            out = out.resize((w * ctx.scale, h * ctx.scale), Image.Resampling.LANCZOS)
            params["outscale_resize"] = f"lanczos to ×{ctx.scale}"
        return np.asarray(out), params
    raise GenimgError(f"model {spec.id!r} cannot do {task!r} here")

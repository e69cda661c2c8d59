"""Restoration methods = catalog entries whose tasks include a restore task; how to run each.

A user ticks catalog entries (data: ``assets/models.toml``); :func:`restorers` turns a pool's
catalog into :class:`Restorer` objects under the method contract (id, label, task,
availability, run). Every method is borrowed from the shared pool, so a network (Real-ESRGAN,
waifu2x, the DAE, a diffusion pipeline) is loaded once and shared by the tab, the CLI and
benchmarks. How an entry runs depends on what the pool loaded for it — its backend — and each
backend's runner registers itself in :data:`RUNNERS`:

- ``classical``: :mod:`genimg.restore.classical`'s algorithms (float image, grayscale as one channel);
- ``ncnn``: :mod:`genimg.restore.ncnn_models` (tiled, exact output size);
- ``diffusers``: text-to-image entries that list ``inpaint`` inpaint through ``Lease.variant("inpaint")``
  (diffusers ``from_pipe``: no second copy of the weights); an entry with task ``upscale`` is the
  SD ×4 upscaler pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from PIL import Image

from genimg.errors import GenimgError
from genimg.methods import Method, Registry
from genimg.models.catalog import ModelSpec
from genimg.restore.classical import ALGORITHMS, Context

RESTORE_TASKS = ("denoise", "deblur", "inpaint", "upscale", "face")
MAX_METHODS = 16
ProgressFn = Callable[[int, int], None]


def method_task(spec: ModelSpec) -> str | None:
    """The restore task a catalog entry performs here (None when it restores nothing)."""
    for task in RESTORE_TASKS:
        if task in spec.tasks:
            return task
    return None


class Restorer(Method):
    """A restoration method a user ticks: one catalog entry, run through the pool by its backend's runner."""

    def __init__(self, spec: ModelSpec, pool: Any):
        self.spec, self.pool = spec, pool
        self.id, self.label, self.task = spec.id, spec.name, method_task(spec) or ""
        self.description = getattr(spec, "description", "") or ""

    def availability(self) -> tuple[bool, str]:
        return self.pool.availability(self.spec.id)

    def run(self, rgb: np.ndarray, ctx: Context, grayscale: bool = False,
            progress: ProgressFn | None = None) -> "MethodRun":
        """Restore uint8 (H, W, 3) ``rgb``; see :func:`run_method`."""
        return run_method(self.pool, self.spec, rgb, ctx, grayscale, progress)


def restorers(pool: Any, task: str | None = None) -> Registry[Restorer]:
    """The pool's catalog entries usable as restorers (optionally only those of ``task``), in catalog order."""
    registry: Registry[Restorer] = Registry("restoration method",
                                            hint="python -m genimg models lists which can run here")
    for spec in pool.catalog.values():
        if method_task(spec) is not None and (task is None or method_task(spec) == task):
            registry.register(Restorer(spec, pool))
    return registry


def restore_methods(pool: Any, task: str | None = None) -> list[ModelSpec]:
    """Catalog entries usable as restorers (optionally only those of ``task``), in catalog order."""
    return [r.spec for r in restorers(pool, task)]


def check_methods(pool: Any, methods: Any) -> list[ModelSpec]:
    """Validate the requested methods (list, or comma-separated text); returns their specs.

    Raises GenimgError for none, too many, repeats, unknown ids or models that restore nothing.
    """
    known = restorers(pool)
    if isinstance(methods, str):
        methods = methods.split(",")
    for name in methods or []:
        name = str(name).strip() if name is not None else ""
        if name and name not in known and name in pool.catalog:
            spec = pool.catalog[name]
            raise GenimgError(f"model {name!r} does not restore images (its tasks: {', '.join(spec.tasks)}); "
                              f"restoration methods: {', '.join(known.ids())}")
    return [r.spec for r in known.choose(methods, most=MAX_METHODS)]


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
        runner = RUNNERS.canonical(spec.backend)
        if runner is None:
            raise GenimgError(f"method {spec.id!r}: backend {spec.backend!r} cannot restore images")
        out, params = RUNNERS[runner].run(lease, spec, task, rgb, run_ctx, grayscale, progress)
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


# -- runners: one per backend that can restore ---------------------------------------------------

class Runner(Method):
    """How the entries of one backend restore: ``run(lease, spec, task, rgb, ctx, grayscale, progress)
    -> (uint8 RGB, params)``. The id is the backend's name."""

    task = "restore"


RUNNERS: Registry[Runner] = Registry("restoration backend")


@RUNNERS.register
class ClassicalRunner(Runner):
    id, label = "classical", "scikit-image / OpenCV / Pillow algorithms and the DAE"

    def run(self, lease: Any, spec: ModelSpec, task: str, rgb: np.ndarray, ctx: Context, grayscale: bool,
            progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
        algorithm = ALGORITHMS.get(str(spec.options.get("method", "")))
        x = rgb[..., :1] if grayscale else rgb  # the gate's grayscale RGB has R = G = B
        y, params = algorithm.run(x.astype(np.float32) / 255.0, ctx, lease.model, progress)
        out = (np.clip(y, 0, 1) * 255.0 + 0.5).astype(np.uint8)
        return (np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out), params


@RUNNERS.register
class NcnnRunner(Runner):
    id, label = "ncnn", "ncnn networks (Real-ESRGAN, waifu2x), tiled"

    def run(self, lease: Any, spec: ModelSpec, task: str, rgb: np.ndarray, ctx: Context, grayscale: bool,
            progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
        from genimg.restore.ncnn_models import restore as ncnn_restore

        return ncnn_restore(lease.model, rgb, ctx.scale, spec.options, progress)


@RUNNERS.register
class DiffusersRunner(Runner):
    id, label = "diffusers", "diffusion inpainting (from_pipe) and the SD x4 upscaler"

    def run(self, lease: Any, spec: ModelSpec, task: str, rgb: np.ndarray, ctx: Context, grayscale: bool,
            progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
        kinds = {"inpaint": _inpaint, "upscale": _upscale}
        if task not in kinds:
            raise GenimgError(f"model {spec.id!r} cannot do {task!r} here")
        return kinds[task](lease, spec, rgb, ctx, progress)


# -- diffusion ------------------------------------------------------------------------------

def _step_callback(total: int, progress: ProgressFn | None):
    def on_step_end(_pipe, step, _timestep, callback_kwargs):
        if progress is not None:
            progress(min(step + 1, total), total)
        return callback_kwargs

    return on_step_end


def _inpaint(lease: Any, spec: ModelSpec, rgb: np.ndarray, ctx: Context,
             progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
    import torch

    defaults = spec.defaults
    generator = torch.Generator("cpu").manual_seed(int(ctx.seed))
    h, w = rgb.shape[:2]
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

def _upscale(lease: Any, spec: ModelSpec, rgb: np.ndarray, ctx: Context,
             progress: ProgressFn | None) -> tuple[np.ndarray, dict]:
    import torch

    defaults = spec.defaults
    generator = torch.Generator("cpu").manual_seed(int(ctx.seed))
    h, w = rgb.shape[:2]
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

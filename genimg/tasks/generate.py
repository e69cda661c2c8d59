"""Text-to-image: one request on one model, through the shared pool.

The same function serves the UI, the CLI, the API, the tests and the benchmarks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from genimg import __version__
from genimg.config import Limits, settings
from genimg.errors import GenimgError
from genimg.models.catalog import ModelSpec
from genimg.models.diffusers_backend import prepare_decode
from genimg.models.pool import Lease, ModelPool, get_pool
from genimg import params as P
from genimg.params import DEFAULT_SCHEDULER, MAX_SEED, SCHEDULERS, scheduler_names
from genimg.tasks.timing import PeakMemory, StageTimer, Timings


ProgressFn = Callable[[int, int], None]


@dataclass
class GenerateRequest:
    """What a user asks for. ``None`` means "the model's default" (from the catalog)."""

    prompt: str
    model: str
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    seed: int = -1        # -1: a random seed, reported in the result
    batch: int = 1        # images; image i uses seed + i


@dataclass
class GenerateResult:
    """Images with the exact parameters and timings that produced them."""

    images: list[Any]           # PIL images
    seeds: list[int]
    params: dict[str, Any]      # resolved parameters (model defaults filled in)
    timings: Timings
    model: dict[str, Any] = field(default_factory=dict)  # id, name, source, backend, placement
    # The serving replica that made the images (python -m genimg serve --ray): its id, deployment,
    # node and process, read inside the replica. None in the single-process app.
    replica: dict[str, Any] | None = None

    def record(self, index: int) -> dict[str, Any]:
        """The full JSON record of image ``index`` (saved in its PNG)."""
        return {
            "genimg_version": __version__,
            "task": "text-to-image",
            "model": self.model,
            **self.params,
            "seed": self.seeds[index],
            "batch_index": index,
            "batch_size": len(self.images),
            "timings": self.timings.as_dict(),
            **({"replica": self.replica} if self.replica else {}),
        }


def _or(value: Any, default: Any) -> Any:
    """``value`` unless it is unset (None or empty text); 0 stays 0 so it is rejected, not defaulted."""
    return default if value is None or (isinstance(value, str) and not value.strip()) else value


def resolve_request(request: GenerateRequest, spec: ModelSpec, limits: Limits | None = None) -> dict[str, Any]:
    """Fill model defaults into ``request`` and validate everything.

    Returns the resolved parameters (prompt, negative_prompt, width, height, steps,
    guidance, scheduler, seed, batch). Raises GenimgError naming the bad field.
    """
    limits = limits or settings().limits
    d = spec.defaults
    multiple = int(d.get("size_multiple", 8))
    prompt = P.check_prompt(request.prompt, limits)
    negative = P.check_prompt(request.negative_prompt, limits, what="negative prompt", allow_empty=True)
    width, height = P.check_size(_or(request.width, d.get("width", 512)), _or(request.height, d.get("height", 512)),
                                 limits, multiple)
    model_max_steps = int(d.get("max_steps", limits.max_steps))  # e.g. an LCM scheduler's schedule length
    steps = P.check_int(_or(request.steps, d.get("steps", 25)),
                        "steps" if model_max_steps >= limits.max_steps else f"steps for {spec.id}",
                        1, min(limits.max_steps, model_max_steps))
    guidance = P.check_float(_or(request.guidance, d.get("guidance", 7.0)), "guidance", 0.0, 30.0)
    scheduler = (request.scheduler or d.get("scheduler") or DEFAULT_SCHEDULER).strip().lower()
    if scheduler != DEFAULT_SCHEDULER and scheduler not in SCHEDULERS:
        raise GenimgError(f"unknown scheduler {scheduler!r}: use one of {', '.join(scheduler_names())}")
    fixed_steps = d.get("fixed_steps")  # one-step generators (GAN, VAE) take no steps choice
    if fixed_steps:
        steps = int(fixed_steps)
    batch = P.check_int(request.batch, "batch", 1, limits.max_batch)
    seed = P.check_int(request.seed, "seed", -1, MAX_SEED)
    if seed == -1:
        seed = secrets.randbelow(MAX_SEED - limits.max_batch)
    return {"prompt": prompt, "negative_prompt": negative, "width": width, "height": height,
            "steps": steps, "guidance": guidance, "scheduler": scheduler, "seed": seed, "batch": batch}


def _use_scheduler(lease: Lease, pipe: Any, name: str) -> None:
    """Put the named scheduler on the pipeline (cached per handle; restored by name later)."""
    cache = lease.handle.schedulers
    if "default" not in cache:
        cache["default"] = pipe.scheduler
    if name not in cache:
        import diffusers

        cls = getattr(diffusers, SCHEDULERS[name][0])
        cache[name] = cls.from_config(cache["default"].config)
    pipe.scheduler = cache[name]


def pipeline_inputs(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The prompt, negative prompt, image count and generators of one pipeline call serving ``jobs``.

    ``jobs`` are resolved requests that agree on everything but prompt, negative prompt, seed
    and batch (see genimg.tasks.batching). One job keeps diffusers' plain form (a prompt string
    and ``num_images_per_prompt``); several become per-image lists. Either way image i of a job
    is drawn from its own CPU generator seeded ``seed + i``, so it equals what that job alone
    gives.
    """
    generators = [torch.Generator("cpu").manual_seed(job["seed"] + i) for job in jobs for i in range(job["batch"])]
    if len(jobs) == 1:
        job = jobs[0]
        return {"prompt": job["prompt"], "negative_prompt": job["negative_prompt"] or None,
                "num_images_per_prompt": job["batch"], "generator": generators}
    prompts = [job["prompt"] for job in jobs for _ in range(job["batch"])]
    negatives = [job["negative_prompt"] for job in jobs for _ in range(job["batch"])]
    # All or none have a negative prompt (batching key): SDXL zeroes the negative embedding for
    # None but encodes "", so a mix would change the images of the jobs without one.
    return {"prompt": prompts, "negative_prompt": negatives if any(negatives) else None,
            "num_images_per_prompt": 1, "generator": generators}


def run_pipeline_batch(lease: Lease, jobs: list[dict[str, Any]],
                       progress: ProgressFn | None = None) -> tuple[list[list[Any]], Timings]:
    """Run the leased text-to-image pipeline once for one or more compatible resolved requests.

    Returns each job's images (in order) and the call's timings. Size, steps, guidance and
    scheduler come from the first job; the others must agree (genimg.tasks.batching.batch_key).
    """
    pipe = lease.model
    placement = lease.handle.placement
    first = jobs[0]
    if hasattr(pipe, "scheduler"):
        _use_scheduler(lease, pipe, first["scheduler"])
    total_steps = first["steps"]
    prepare_decode(pipe, first["width"], first["height"])  # VAE tiling for large sizes only

    with PeakMemory(placement.device) as memory, StageTimer(pipe, placement.device) as timer:
        def on_step_end(_pipe, step, _timestep, callback_kwargs):
            timer.step()
            if progress is not None:
                progress(min(step + 1, total_steps), total_steps)
            return callback_kwargs

        with torch.inference_mode():
            output = pipe(
                width=first["width"],
                height=first["height"],
                num_inference_steps=total_steps,
                guidance_scale=first["guidance"],
                callback_on_step_end=on_step_end,
                output_type="pil",
                **pipeline_inputs(jobs),
            )
    timings = timer.timings
    timings.peak_memory_bytes = memory.peak_bytes
    timings.memory_kind = memory.kind
    timings.batch_requests = len(jobs)
    timings.batch_images = sum(job["batch"] for job in jobs)
    images, start = [], 0
    for job in jobs:
        images.append(list(output.images[start:start + job["batch"]]))
        start += job["batch"]
    return images, timings


def run_pipeline(lease: Lease, resolved: dict[str, Any], progress: ProgressFn | None = None) -> tuple[list[Any], Timings]:
    """Run the leased text-to-image pipeline with resolved parameters; images and timings.

    Image i is drawn from its own CPU generator seeded ``seed + i``, so every image is
    reproducible on its own, whatever the batch size or device.
    """
    images, timings = run_pipeline_batch(lease, [resolved], progress)
    return images[0], timings


def prepare(request: GenerateRequest, pool: ModelPool) -> tuple[ModelSpec, dict[str, Any]]:
    """Check that ``request.model`` does text-to-image and resolve the request against it.

    Returns (model spec, resolved parameters). Raises GenimgError for unknown models, models
    of another task and bad parameters.
    """
    spec = pool.spec(request.model)
    if "text-to-image" not in spec.tasks:
        raise GenimgError(f"model {spec.id!r} does not do text-to-image (its tasks: {', '.join(spec.tasks)})")
    return spec, resolve_request(request, spec)


def make_result(resolved: dict[str, Any], images: list[Any], timings: Timings, info: dict[str, Any],
                replica: dict[str, Any] | None = None) -> GenerateResult:
    """Package one request's images with its seeds, resolved parameters, timings, model info and
    (when served by a replica) the replica that made them."""
    seeds = [resolved["seed"] + i for i in range(resolved["batch"])]
    params = {k: v for k, v in resolved.items() if k not in ("seed", "batch")}
    return GenerateResult(images=images, seeds=seeds, params=params, timings=timings, model=info, replica=replica)


def generate(request: GenerateRequest, pool: ModelPool | None = None,
             progress: ProgressFn | None = None) -> GenerateResult:
    """Generate ``request.batch`` images for ``request.prompt`` on ``request.model``.

    Returns a GenerateResult (PIL images, seeds, resolved params, timings). A routed model
    (genimg.models.routes) runs this same function in its replica. Raises GenimgError for bad
    parameters, unknown models and missing weights.
    """
    pool = pool or get_pool()
    spec, resolved = prepare(request, pool)  # a bad request fails here, before any forwarding
    route = pool.route(spec.id)
    if route is not None:
        return route.call("generate", {"request": request}, progress)
    with pool.acquire(spec.id) as lease:
        images, timings = run_pipeline(lease, resolved, progress)
        info = lease.model_info()
    timings.load_s = lease.load_seconds
    timings.wait_s = max(0.0, lease.acquire_seconds - lease.load_seconds)
    timings.warm = not lease.cold
    return make_result(resolved, images, timings, info, lease.served_by)


__all__ = ["GenerateRequest", "GenerateResult", "generate", "make_result", "pipeline_inputs", "prepare",
           "resolve_request", "run_pipeline", "run_pipeline_batch"]

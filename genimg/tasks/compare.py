"""Side-by-side comparison: one prompt and seed(s) on 2-4 models, timed fairly.

Fairness rules (also in README):
- models run one after another, never concurrently, so none competes for the device;
- a model loaded by this request is timed apart: its load time is reported, then one
  warm-up call (1 step, same size) runs before the timed call, so first-call costs
  (kernel selection, allocator growth, lazy init) do not count against its speed;
- every model gets the same prompt, negative prompt and seeds; size, steps, guidance
  and scheduler are the user's when given, else each model's own recommended defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from genimg.config import settings
from genimg.models.pool import ModelPool, get_pool
from genimg.models.routes import fan_out_executor
from genimg.runner import ProgressFn, run_cells
from genimg.tasks.generate import GenerateRequest, GenerateResult, resolve_request, run_pipeline


@dataclass
class CompareCell:
    """One model's column: its result, or the error that stopped it."""

    model: str
    result: GenerateResult | None
    error: str | None = None
    warmup_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Numbers shown under the column (and in ``--json``)."""
        if self.result is None:
            return {"model": self.model, "error": self.error}
        t = self.result.timings
        return {"model": self.model, "load_s": round(t.load_s, 4), "warmup_s": round(self.warmup_s, 4),
                "wall_s": round(t.total_s, 4), "steps": t.steps, "steps_per_s": round(t.steps_per_s, 3),
                "text_encode_s": round(t.text_encode_s, 4), "denoise_s": round(t.denoise_s, 4),
                "decode_s": round(t.decode_s, 4), "peak_memory_mb": round(t.peak_memory_bytes / 2**20, 1),
                "memory_kind": t.memory_kind, "width": self.result.params["width"],
                "height": self.result.params["height"], "images": len(self.result.images),
                "images_per_s": round(len(self.result.images) / t.total_s, 3) if t.total_s > 0 else None,
                **({"replica": self.result.replica} if self.result.replica else {})}


@dataclass
class CompareResult:
    cells: list[CompareCell]
    seeds: list[int]


def check_models(models: list[str], pool: ModelPool) -> list[str]:
    """Validate the model list: 2..max distinct known ids. Returns canonical ids."""
    return pool.choose(models, task="text-to-image", least=2, most=settings().limits.max_models_compared,
                       what="compare")


def compare_cell(request: GenerateRequest, model_id: str, seed: int, pool: ModelPool, warmup: bool = True,
                 progress: Any = None) -> CompareCell:
    """One model's column of a comparison: ``request`` on ``model_id`` with the shared ``seed``.

    A model loaded by this call gets one 1-step warm-up first (when ``warmup``), timed apart.
    Runs where the model is: here, or (via its route) inside its serving replica, which calls
    this same function. Returns a CompareCell; raises GenimgError for what stops this model.
    """
    resolved = resolve_request(replace(request, model=model_id, seed=seed), pool.spec(model_id))
    with pool.acquire(model_id) as lease:
        warmup_s = 0.0
        if lease.cold and warmup:
            _, warm = run_pipeline(lease, {**resolved, "steps": 1, "batch": 1})
            warmup_s = warm.total_s
        images, timings = run_pipeline(lease, resolved, progress)
        info = lease.model_info()
    timings.load_s = lease.load_seconds
    timings.warm = not lease.cold
    params = {k: v for k, v in resolved.items() if k not in ("seed", "batch")}
    result = GenerateResult(images=images, seeds=[seed + i for i in range(resolved["batch"])],
                            params=params, timings=timings, model=info, replica=lease.served_by)
    return CompareCell(model=model_id, result=result, warmup_s=warmup_s)


def compare(request: GenerateRequest, models: list[str], pool: ModelPool | None = None,
            progress: ProgressFn | None = None, warmup: bool = True) -> CompareResult:
    """Run ``request`` on each of ``models`` with identical prompt and seeds.

    ``request.model`` is ignored. Models run one after another, here or in their serving replicas;
    in parallel only when each is served on an accelerator of its own (genimg.models.routes).
    ``progress`` receives a genimg.runner.Progress: models done,
    and the running model's own denoising steps. A model that cannot run (missing weights, a
    fault, a size it cannot take) gets an error cell; the others still run. Raises GenimgError
    for bad parameters, unknown or repeated models, or when no model could run.
    """
    pool = pool or get_pool()
    ids = check_models(models, pool)
    # Resolve once for the shared fields so every model gets the same seeds (and the whole
    # request's mistakes, such as an empty prompt, are its error, not every column's).
    first = resolve_request(replace(request, model=ids[0]), pool.spec(ids[0]))
    shared_seed = first["seed"]

    def run_model(model_id: str, step: Any) -> CompareCell:
        route = pool.route(model_id)
        if route is not None:
            return route.call("compare_cell", {"request": request, "model_id": model_id, "seed": shared_seed,
                                               "warmup": warmup}, step)
        return compare_cell(request, model_id, shared_seed, pool, warmup, step)

    routes = [pool.route(model_id) for model_id in ids]
    executor = fan_out_executor(routes)  # parallel only when each model has an accelerator of its own
    try:
        cells = run_cells(ids, run_model, what="model", progress=progress, executor=executor)
    finally:
        if executor is not None:
            executor.shutdown(wait=False)
    return CompareResult(cells=[c.value if c.ok else CompareCell(model=c.key, result=None, error=c.error)
                                for c in cells],
                         seeds=[shared_seed + i for i in range(first["batch"])])

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

import logging
from dataclasses import dataclass, replace
from typing import Any, Callable

from genimg.config import settings
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.pool import ModelPool, get_pool
from genimg.tasks.generate import GenerateRequest, GenerateResult, model_info, resolve_request, run_pipeline

log = logging.getLogger(__name__)


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
                "height": self.result.params["height"]}


@dataclass
class CompareResult:
    cells: list[CompareCell]
    seeds: list[int]


def check_models(models: list[str], pool: ModelPool) -> list[str]:
    """Validate the model list: 2..max distinct known ids. Returns canonical ids."""
    limit = settings().limits.max_models_compared
    ids = [m.strip() for m in models if m and m.strip()]
    if len(ids) < 2:
        raise GenimgError(f"compare needs at least 2 models, got {len(ids)}")
    if len(ids) > limit:
        raise GenimgError(f"compare takes at most {limit} models, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise GenimgError("compare got the same model twice: pick different models")
    return [pool.spec(m).id for m in ids]


def compare(request: GenerateRequest, models: list[str], pool: ModelPool | None = None,
            progress: Callable[[int, int, str], None] | None = None, warmup: bool = True) -> CompareResult:
    """Run ``request`` on each of ``models`` with identical prompt and seeds.

    ``request.model`` is ignored. A model that cannot run (missing weights, a fault)
    gets an error cell; the others still run. Raises GenimgError for bad parameters,
    unknown or repeated models, or when no model could run.
    """
    pool = pool or get_pool()
    ids = check_models(models, pool)
    # Resolve once for the shared fields so every model gets the same seeds.
    first = resolve_request(replace(request, model=ids[0]), pool.spec(ids[0]))
    shared_seed = first["seed"]
    cells: list[CompareCell] = []
    for index, model_id in enumerate(ids):
        spec = pool.spec(model_id)
        try:
            resolved = resolve_request(replace(request, model=model_id, seed=shared_seed), spec)
            with pool.acquire(model_id) as lease:
                warmup_s = 0.0
                if lease.cold and warmup:
                    _, warm = run_pipeline(lease, {**resolved, "steps": 1, "batch": 1})
                    warmup_s = warm.total_s

                def step_progress(step: int, total: int, _i=index, _m=model_id) -> None:
                    if progress is not None:
                        progress(_i * total + step, len(ids) * total, _m)

                images, timings = run_pipeline(lease, resolved, step_progress)
                info = model_info(lease)
            timings.load_s = lease.load_seconds
            timings.warm = not lease.cold
            params = {k: v for k, v in resolved.items() if k not in ("seed", "batch")}
            result = GenerateResult(images=images, seeds=[shared_seed + i for i in range(resolved["batch"])],
                                    params=params, timings=timings, model=info)
            cells.append(CompareCell(model=model_id, result=result, warmup_s=warmup_s))
        except ModelUnavailableError as exc:
            cells.append(CompareCell(model=model_id, result=None, error=str(exc)))
        except GenimgError:
            raise  # a bad parameter concerns the whole request, not one model
        except Exception as exc:  # a model's own fault must not take the other columns down
            log.exception("model %s failed during compare", model_id)
            cells.append(CompareCell(model=model_id, result=None, error=f"model {model_id!r} failed: {type(exc).__name__}: {exc}"))
    if all(cell.result is None for cell in cells):
        raise GenimgError("no model could run: " + "; ".join(f"{c.model}: {c.error}" for c in cells))
    return CompareResult(cells=cells, seeds=[shared_seed + i for i in range(first["batch"])])


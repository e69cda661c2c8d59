"""Evaluate: models × prompts × seeds → images, per-image metrics, per-model summaries.

The one path for the Evaluate tab, ``python -m genimg evaluate``, the API ``/evaluate`` and the
exported report (:mod:`genimg.evaluation.report`).

- **Settings**: by default each model runs at its own recommended settings (its catalog
  defaults: a few-step model at its 4 steps, a diffusion model at its 20), which is how people
  use them and how Compare runs them. ``own_defaults=False`` asks for **identical settings**:
  every model gets the same size, steps, guidance and scheduler, and what is left empty takes
  the *first* model's defaults. Prompts, seeds and negative prompt are always the same.
- **Fair timing** as in Compare: models run one after another (one runner cell each); a model
  loaded by this run gets one warm-up call (1 step) first; each image is batch 1 from its own
  CPU generator seeded with its seed, so a cell is reproducible alone. Latency = the
  device-synchronised wall time of that call.
- **Cache** (:mod:`genimg.evaluation.cache`): a re-run with one more model only generates the
  new model's cells.
- **Metrics and statistics**: :mod:`genimg.evaluation.scoring` and
  :mod:`genimg.evaluation.statistics` (intervals, minimum sample sizes, Pareto fronts).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from genimg import __version__
from genimg.evaluation import cache
from genimg.evaluation.fingerprint import weights_fingerprint
from genimg.evaluation.inputs import (ALL_METRICS, DEFAULT_METRICS, IMAGE_METRICS, LABELS, SET_METRICS,
                                      check_prompts, grammar_prompts, limits, parse_seeds, read_prompts_file,
                                      resolve_metrics)
from genimg.evaluation.results import EvalRow, EvaluateResult
from genimg.evaluation.scoring import (FAITHFULNESS, features_of, image_metrics, pareto, quality_metric, score_rows,
                                       summarize_model)
from genimg.evaluation.statistics import pareto_front, t_interval, wilson_interval
from genimg.errors import GenimgError
from genimg.metrics.registry import METRICS
from genimg.models.catalog import ModelSpec
from genimg.models.pool import ModelPool, get_pool
from genimg.outputs import json_safe
from genimg.runner import run_cells
from genimg.tasks.generate import GenerateRequest, resolve_request, run_pipeline

ProgressFn = Callable[[int, int, str], None]


@dataclass
class EvaluateRequest:
    """What to evaluate. With ``own_defaults`` (the default) each model runs at its own catalog
    defaults; otherwise settings left None take the first model's defaults, for every model."""

    models: list[str]
    prompts: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    own_defaults: bool = True
    metrics: list[str] | None = None         # None: DEFAULT_METRICS
    cache_dir: str | Path | None = None     # None: cache.default_cache_dir()
    use_cache: bool = True
    warmup: bool = True


def check_models(models: list[str] | str, pool: ModelPool) -> list[str]:
    """1..limit distinct catalog text-to-image ids (commas allowed). Raises GenimgError."""
    return pool.choose(models, task="text-to-image", most=limits()["models"], what="an evaluation")


def _resolve_all(request: EvaluateRequest, ids: list[str], pool: ModelPool) -> dict[str, dict[str, Any]]:
    """Resolved generation parameters per model (seed and prompt set per cell later)."""
    base = GenerateRequest(prompt="x", model=ids[0], negative_prompt=request.negative_prompt or "",
                           width=request.width, height=request.height, steps=request.steps,
                           guidance=request.guidance, scheduler=request.scheduler, seed=0, batch=1)
    if not request.own_defaults:
        # Identical settings: whatever is left empty comes from the first model's defaults.
        first = resolve_request(base, pool.spec(ids[0]))
        base = replace(base, width=first["width"], height=first["height"], steps=first["steps"],
                       guidance=first["guidance"], scheduler=first["scheduler"])
    resolved = {}
    for model_id in ids:
        params = resolve_request(replace(base, model=model_id), pool.spec(model_id))
        resolved[model_id] = {k: v for k, v in params.items() if k not in ("prompt", "seed", "batch")}
    return resolved


def _model_record(spec: ModelSpec, pool: ModelPool, params: dict[str, Any]) -> dict[str, Any]:
    try:
        placement = pool.placement_for(spec).describe()
    except GenimgError as exc:
        placement = f"unknown ({exc})"
    return {"id": spec.id, "name": spec.name, "backend": spec.backend, "source": spec.source, "dtype": spec.dtype,
            "options": spec.options, "licence": spec.licence, "fingerprint": weights_fingerprint(spec),
            "placement": placement, "params": params}


def _scheduler_record(pipe: Any) -> dict[str, Any] | None:
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None:
        return None
    return {"class": type(scheduler).__name__, "config": json_safe(dict(getattr(scheduler, "config", {}) or {}))}


class _Counter:
    """Images done across the whole evaluation, for the (done, total, label) progress callback."""

    def __init__(self, total: int, progress: ProgressFn | None):
        self.done, self.total, self.progress = 0, total, progress

    def add(self, n: int, label: str) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total, label)


def _store_row(row: EvalRow, cell: dict[str, Any], image: Any, timings: Any, info: dict[str, Any],
               scheduler: dict[str, Any] | None, record: dict[str, Any], request: EvaluateRequest,
               cache_dir: Path) -> None:
    """Keep one generated image in its row (and the cell cache), with the record that reproduces it."""
    row.image = image.convert("RGB")
    row.latency_s = timings.total_s
    record.update(scheduler_config=scheduler, loaded_placement=info["placement"])
    stored = {"genimg_version": __version__, "task": "text-to-image", "key": row.key,
              "model": {**info, "fingerprint": record["fingerprint"]},
              **{k: v for k, v in cell.items() if k != "batch"}, "latency_s": row.latency_s,
              "timings": timings.as_dict(), "scheduler_config": scheduler,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "hardware": {"host": platform.node(), "machine": platform.machine()}}
    if request.use_cache:
        row.image_path = str(cache.store_cell(cache_dir, row.key, row.image, stored))


def _generate_model(model_id: str, rows: list[EvalRow], params: dict[str, Any], record: dict[str, Any],
                    request: EvaluateRequest, pool: ModelPool, cache_dir: Path, counter: _Counter) -> int:
    """Generate the rows of one model that the cache did not have; returns how many were generated.

    A model served by a deployment (genimg.models.routes) generates each row in its replica (which
    is warm from its start); the images are scored and cached here. Raises what loading or
    generating raises (the runner turns it into this model's error rows).
    """
    generated = 0
    route = pool.route(model_id)
    if route is not None:
        for row in rows:
            cell = {**params, "prompt": row.prompt, "seed": row.seed, "batch": 1}
            ask = GenerateRequest(prompt=row.prompt, model=model_id, negative_prompt=cell["negative_prompt"],
                                  width=cell["width"], height=cell["height"], steps=cell["steps"],
                                  guidance=cell["guidance"], scheduler=cell["scheduler"], seed=row.seed)
            result = route.call("generate", {"request": ask})
            info = {**result.model, **({"replica": result.replica} if result.replica else {})}
            _store_row(row, cell, result.images[0], result.timings, info, None, record, request, cache_dir)
            generated += 1
            counter.add(1, model_id)
        return generated
    with pool.acquire(model_id) as lease:
        info = lease.model_info()
        if lease.cold and request.warmup:
            run_pipeline(lease, {**params, "prompt": rows[0].prompt, "seed": rows[0].seed, "batch": 1, "steps": 1})
        for row in rows:
            cell = {**params, "prompt": row.prompt, "seed": row.seed, "batch": 1}
            images, timings = run_pipeline(lease, cell)
            _store_row(row, cell, images[0], timings, info, _scheduler_record(lease.model), record, request,
                       cache_dir)
            generated += 1
            counter.add(1, model_id)
    return generated


def _from_cache(rows: list[EvalRow], keys: list[str], record: dict[str, Any], cache_dir: Path,
                counter: _Counter) -> list[EvalRow]:
    """Fill the rows the cache holds; return those still to generate."""
    todo = []
    for row in rows:
        found = cache.load_cell(cache_dir, row.key)
        if found is None:
            todo.append(row)
            continue
        row.image, stored = found
        row.latency_s = stored.get("latency_s")
        row.metrics = {k: v for k, v in stored.get("metrics", {}).items() if k in keys}
        row.notes = {k: v for k, v in stored.get("notes", {}).items() if k in row.metrics}
        row.checks = stored.get("checks", {}) if FAITHFULNESS in row.metrics else {}
        row.cached = True
        row.image_path = str(cache.cell_paths(cache_dir, row.key)[0])
        record.setdefault("scheduler_config", stored.get("scheduler_config"))
        counter.add(1, f"{row.model} (cached)")
    return todo


def evaluate(request: EvaluateRequest, pool: ModelPool | None = None,
             progress: ProgressFn | None = None) -> EvaluateResult:
    """Run every (model, prompt, seed) cell, score the images, summarise per model.

    ``progress(done, total, label)`` is called after each image. A model that cannot run
    (missing weights, a fault) gets error rows and an entry in ``errors``; the others still run.
    Returns an EvaluateResult. Raises GenimgError for bad input (models, prompts, seeds,
    settings, metrics) or when no model could run.
    """
    started = time.perf_counter()
    pool = pool or get_pool()
    ids = check_models(request.models, pool)
    prompts = check_prompts(request.prompts)
    seeds = parse_seeds(request.seeds)
    keys = resolve_metrics(request.metrics)
    total = len(ids) * len(prompts) * len(seeds)
    if total > limits()["cells"]:
        raise GenimgError(f"{len(ids)} models × {len(prompts)} prompts × {len(seeds)} seeds = {total} images; "
                          f"the limit here is {limits()['cells']}")
    resolved = _resolve_all(request, ids, pool)
    cache_dir = Path(request.cache_dir).expanduser() if request.cache_dir else cache.default_cache_dir()
    models = {m: _model_record(pool.spec(m), pool, resolved[m]) for m in ids}
    counter = _Counter(total, progress)
    rows_of: dict[str, list[EvalRow]] = {}
    for model_id in ids:
        rows_of[model_id] = [EvalRow(model=model_id, prompt_index=i, prompt=p, seed=s)
                             for i, p in enumerate(prompts) for s in seeds]
        for row in rows_of[model_id]:
            row.key = cache.cell_key(models[model_id], {**resolved[model_id], "prompt": row.prompt}, row.seed)
    counts = {"generated": 0, "hits": 0}

    def run_model(model_id: str, _step: Any) -> int:
        rows = rows_of[model_id]
        todo = (_from_cache(rows, keys, models[model_id], cache_dir, counter) if request.use_cache else rows)
        counts["hits"] += len(rows) - len(todo)
        if not todo:
            return 0
        try:
            generated = _generate_model(model_id, todo, resolved[model_id], models[model_id], request, pool,
                                        cache_dir, counter)
        except BaseException:
            counter.add(sum(1 for r in todo if r.image is None), f"{model_id} (error)")
            raise
        counts["generated"] += generated
        return generated

    t0 = time.perf_counter()
    cells = run_cells(ids, run_model, what="model", unit="image")
    generate_s = time.perf_counter() - t0
    errors = {c.key: c.error for c in cells if not c.ok}
    rows = [row for model_id in ids for row in rows_of[model_id]]
    for row in rows:
        if row.image is None and row.model in errors:
            row.error = errors[row.model]

    t_metrics = time.perf_counter()
    score_rows(rows, keys, cache_dir if request.use_cache else None)
    grammar_ok = {p: METRICS[FAITHFULNESS].applies(p) for p in prompts}
    features = features_of(rows) if any(k in keys for k in SET_METRICS) else {}
    summary: dict[str, dict[str, Any]] = {}
    diversity_rows: list[dict[str, Any]] = []
    for model_id in ids:
        summary[model_id], div_rows = summarize_model(rows_of[model_id], keys, grammar_ok, features,
                                                      errors.get(model_id))
        diversity_rows.extend(div_rows)
    pareto(summary, keys)
    request_record = {"models": ids, "prompts": prompts, "seeds": seeds, "negative_prompt": request.negative_prompt,
                      "width": request.width, "height": request.height, "steps": request.steps,
                      "guidance": request.guidance, "scheduler": request.scheduler,
                      "own_defaults": request.own_defaults, "metrics": keys, "use_cache": request.use_cache}
    timings = {"total_s": time.perf_counter() - started, "generate_s": generate_s,
               "metrics_s": time.perf_counter() - t_metrics}
    return EvaluateResult(rows=rows, summary=summary, diversity=diversity_rows, models=models, errors=errors,
                          metrics=keys, request=request_record, timings=timings, generated=counts["generated"],
                          cache_hits=counts["hits"], cache_dir=str(cache_dir))


__all__ = ["EvaluateRequest", "EvaluateResult", "EvalRow", "evaluate", "check_models", "image_metrics",
           "grammar_prompts", "read_prompts_file", "parse_seeds", "resolve_metrics", "check_prompts", "t_interval",
           "wilson_interval", "pareto_front", "quality_metric", "weights_fingerprint", "ALL_METRICS",
           "DEFAULT_METRICS", "IMAGE_METRICS", "SET_METRICS", "LABELS"]

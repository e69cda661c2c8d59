"""Bench sections ``handle_reuse`` and ``cpu_dtype``: what the model pool and the dtype policy cost.

Both run on ``tiny-sd``, a random-weight SD-shaped pipeline built from configs by
:func:`tiny_catalog`, so they measure plumbing, not a model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from genimg.bench.timing import interleaved, ratio, stats


def tiny_catalog(folder: Path) -> dict[str, Any]:
    """Build the random-weight ``tiny-sd`` pipeline under ``folder``; return a catalog holding only it."""
    from genimg.models.catalog import ModelSpec
    from genimg.models.tiny import build_tiny_sd_pipeline

    path = build_tiny_sd_pipeline(folder / "tiny-sd", seed=0)
    return {"tiny-sd": ModelSpec(id="tiny-sd", name="Tiny SD (random weights)", backend="diffusers",
                                 source=str(path), tasks=("text-to-image", "image-to-image", "inpaint"),
                                 dtype="fp32", defaults={"width": 64, "height": 64, "steps": 4, "guidance": 5.0})}


def bench_handle_reuse(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """Cold load (fresh pool) vs warm acquire (loaded pool) of ``model_id``; from_pipe's extra bytes.

    Takes a catalog (id -> ModelSpec), the model and the number of cold loads (each followed by
    10 warm acquires). Returns the section's JSON-able dict. Loader errors propagate.
    """
    from genimg.models.device import module_nbytes
    from genimg.models.pool import ModelPool

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
    result: dict[str, Any] = {"model": model_id, "cold_load": stats(cold), "warm_acquire": stats(warm)}
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


def bench_cpu_dtype(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """fp32 vs bf16 for the same model on the CPU (the dtype policy's evidence).

    Takes a catalog, the model and the trials per variant. Returns both variants' timings,
    ``bf16_over_fp32`` and whether the CPU has native bf16. Generation errors propagate.
    """
    from dataclasses import replace

    from genimg.models.device import cpu_has_native_bf16
    from genimg.models.pool import ModelPool
    from genimg.tasks.generate import GenerateRequest, generate

    spec = catalog[model_id]
    pools = {name: ModelPool({model_id: replace(spec, dtype=name)}) for name in ("fp32", "bf16")}
    request = GenerateRequest(prompt="a small red circle on a blue background", model=model_id, seed=7)
    timings = interleaved({name: (lambda p=p: generate(request, p)) for name, p in pools.items()}, repeats)
    return {"model": model_id, **timings, "bf16_over_fp32": ratio(timings, "bf16", "fp32"),
            "cpu_native_bf16": cpu_has_native_bf16()}

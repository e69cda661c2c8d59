"""Bench section ``concurrency``: many clients at once against one, with and without micro-batching.

Drives the real dashboard on loopback through the load test (:func:`genimg.bench.load.run_load`),
so every concurrent answer is checked against a sequential run of the same prompt and seed.
"""

from __future__ import annotations

from typing import Any

from genimg.bench.load import run_load


def bench_concurrency(_catalog: dict[str, Any], _model_id: str, _repeats: int, clients: int = 8,
                      requests_per_client: int = 10) -> dict[str, Any]:
    """``clients`` x ``requests_per_client`` concurrent /generate requests vs the same number from one client.

    Runs on the fastest shipped embedded model (genimg-fewstep, else any embedded model whose
    weights are here) through the real app on loopback, twice concurrently: with micro-batching
    (the default, genimg.tasks.batching) and without (GENIMG_MICROBATCH=1). Each concurrent run
    checks every image against a sequential reference run of the same prompt and seed
    (per-seed identity) and counts lost and mismatched answers. Returns the runs' figures and
    the throughput ratios against the one-client run ({"model": None, "skipped": ...} when no
    embedded model's weights are here). The catalog, model and repeats arguments are unused:
    every section takes them. Load-test errors (GenimgError) propagate.
    """
    import os

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

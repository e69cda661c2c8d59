"""``python -m genimg generate`` (one model) and ``compare`` (the same prompt and seeds on 2-4 models)."""

from __future__ import annotations

import argparse
from typing import Any

from genimg.cli.common import (add_generation_args, cells_progress_bar, generation_request, out_dir,
                               progress_bar)
from genimg.errors import GenimgError


def register(subparsers: Any) -> None:
    """Add the ``generate`` and ``compare`` commands."""
    p = subparsers.add_parser("generate", help="text to image on one model")
    p.add_argument("--model", "-m", default=None, help="catalog id (default: the catalog's default model)")
    add_generation_args(p)
    p.set_defaults(func=cmd_generate)

    p = subparsers.add_parser("compare", help="same prompt and seeds on 2-4 models, side by side with timings")
    p.add_argument("--models", nargs="+", required=True, help="2-4 catalog ids")
    p.add_argument("--no-warmup", action="store_true", help="time a freshly loaded model's first call too")
    add_generation_args(p)
    p.set_defaults(func=cmd_compare)


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``generate``; returns the JSON payload (paths, seeds, params, model, timings)."""
    from genimg.models.catalog import default_model
    from genimg.models.pool import get_pool
    from genimg.outputs import save_result
    from genimg.tasks.generate import generate

    pool = get_pool()
    model = args.model or default_model(pool.catalog)
    if model is None:
        raise GenimgError("the catalog has no text-to-image model: add one to assets/models.toml")
    result = generate(generation_request(args, model), pool, progress=progress_bar(not (args.quiet or args.json), model))
    paths = save_result(result, out_dir(args))
    if not args.json:
        for path, seed in zip(paths, result.seeds):
            print(f"{path}  (seed {seed})")
        t = result.timings
        print(f"{model}: {t.total_s:.3f}s ({t.steps_per_s:.2f} steps/s), load {t.load_s:.3f}s")
    return {"command": "generate", "outputs": [str(p) for p in paths], "seeds": result.seeds,
            "params": result.params, "model": result.model, "timings": result.timings.as_dict()}


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``compare``; returns the JSON payload (seeds, one cell per model with its outputs and timings)."""
    from genimg.models.pool import get_pool
    from genimg.outputs import save_result
    from genimg.tasks.compare import compare

    pool = get_pool()
    result = compare(generation_request(args, args.models[0]), args.models, pool,
                     progress=cells_progress_bar(not (args.quiet or args.json), "compare"), warmup=not args.no_warmup)
    cells = []
    for cell in result.cells:
        row = cell.summary()
        if cell.result is not None:
            row["outputs"] = [str(p) for p in save_result(cell.result, out_dir(args))]
            row["params"] = cell.result.params
        cells.append(row)
        if not args.json:
            if cell.result is None:
                print(f"{cell.model}: error: {cell.error}")
            else:
                print(f"{cell.model}: wall {row['wall_s']:.3f}s, {row['steps_per_s']:.2f} steps/s, "
                      f"peak {row['peak_memory_mb']:.0f} MB, load {row['load_s']:.3f}s -> {', '.join(row['outputs'])}")
    return {"command": "compare", "seeds": result.seeds, "cells": cells}

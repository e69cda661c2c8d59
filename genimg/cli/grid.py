"""``python -m genimg grid``: one prompt swept over X/Y/Z axes (A1111's X/Y/Z plot), timed per cell."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from genimg.cli.common import cells_progress_bar, out_dir


def register(subparsers: Any) -> None:
    """Add the ``grid`` command."""
    p = subparsers.add_parser(
        "grid", help="parameter grid: one prompt over up to three axes (model, seed, steps, guidance, ...)",
        description="Every cell is generated with everything but its axis values fixed. Axis kinds: model, seed, "
                    "steps, guidance (cfg), scheduler, size (64x64), negative, prompt (search/replace: the first "
                    "value is the text to replace). Values are comma-separated; quote one that holds a comma.")
    p.add_argument("--prompt", "-p", required=True, help="what to draw")
    p.add_argument("--x", required=True, help='X axis (columns), e.g. "steps=4,8,20"')
    p.add_argument("--y", default=None, help='Y axis (rows), e.g. "model=genimg-diffusion,genimg-fewstep"')
    p.add_argument("--z", default=None, help="Z axis: one grid image per value")
    p.add_argument("--model", "-m", default=None, help="the model when no axis varies it (default: the catalog's)")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--width", type=int, default=None, help="pixels (default: each model's)")
    p.add_argument("--height", type=int, default=None, help="pixels (default: each model's)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: each model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: each model's)")
    p.add_argument("--scheduler", default=None, help="default, euler, euler_a, dpmpp_2m, ddim, unipc, lcm")
    p.add_argument("--seed", type=int, default=-1, help="one seed for every cell; -1 picks a random one (reported)")
    p.add_argument("--no-warmup", action="store_true", help="time a freshly loaded model's first cell too")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: GENIMG_OUTPUT_DIR or ./outputs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_grid)


def cmd_grid(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``grid``; returns the JSON payload: the axes, every cell (parameters, ``image``, ``*_s`` timings)
    and the grid image(s) (``grid``: the first, ``grids``: one per Z value)."""
    from genimg.config import settings
    from genimg.grid import parse_axis
    from genimg.models.pool import get_pool
    from genimg.outputs import output_name, save_grid_png, save_png
    from genimg.tasks.generate import GenerateRequest
    from genimg.tasks.grid import run_grid

    limits = settings().limits
    axes = [parse_axis(text, limits) if text else None for text in (args.x, args.y, args.z)]
    if axes[1] is None and axes[2] is not None:
        axes = [axes[0], axes[2], None]  # a Z without a Y is a Y
    request = GenerateRequest(prompt=args.prompt, model=args.model or "", negative_prompt=args.negative,
                              width=args.width, height=args.height, steps=args.steps, guidance=args.guidance,
                              scheduler=args.scheduler, seed=args.seed)
    pool = get_pool()
    result = run_grid(request, axes, pool, progress=cells_progress_bar(not (args.quiet or args.json), "grid"),
                      warmup=not args.no_warmup)
    folder = out_dir(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for cell in result.cells:
        row = cell.summary()
        if cell.result is not None:
            record = {**cell.result.record(0), "grid": {"index": cell.planned.index, "label": cell.planned.label}}
            name = output_name(cell.result.model["id"], cell.result.seeds[0], cell.planned.index,
                               prefix=f"cell{cell.planned.index:03d}-")
            row["image"] = str(save_png(cell.image, record, folder / name))
        rows.append(row)
    payload = {"command": "grid", "prompt": args.prompt, "seed": result.seed, "axes": result.describe_axes(),
               "cells": rows}
    grids = []
    for z, image in enumerate(result.grids):
        suffix = f"-z{z}" if len(result.grids) > 1 else ""
        grids.append(str(save_grid_png(image, payload, folder / f"{stamp}-grid{suffix}.png")))
    payload.update(grid=grids[0], grids=grids)
    if not args.json:
        for row in rows:
            if "error" in row:
                print(f"{row['label']}: error: {row['error']}")
            else:
                print(f"{row['label']}: {row['wall_s']:.3f}s, {row['steps_per_s']:.2f} steps/s, "
                      f"peak {row['peak_memory_mb']:.0f} MB"
                      + (" (prompt encoding reused)" if row["encode_reused"] else "") + f" -> {row['image']}")
        for path in grids:
            print(f"grid: {path}")
    return payload

"""``python -m genimg style``: style transfer with one or more methods, scored.

    python -m genimg style --content photo.jpg --style painting.jpg --out styled.png
    python -m genimg style --method neural reinhard histogram --content a.jpg --style b.jpg --out results/ --json
    python -m genimg style --method preset --preset 19 --content a.jpg --out a-19.png
    python -m genimg style --method sdedit --model sd-turbo --prompt "an oil painting" --content a.jpg --out s.png
    python -m genimg style --list                  # the methods and what strength means for each

--out is a .png file for one method, else a folder (style-<method>.png in it). Every PNG
carries its parameters and scores. Scores: SSIM of luminance and EfficientNet-Lite0
feature distance to the content; Gram-matrix and colour-histogram distance to the style.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``style`` command to the CLI's subparsers; returns its parser."""
    from genimg.style import DEFAULT_METHODS, STYLES

    p = subparsers.add_parser("style", help="style transfer: neural, classical, Gatys, SDEdit, side by side with scores",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", "-m", nargs="+", default=None,
                   help=f"one or more of {', '.join(STYLES.ids())} (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--content", "-c", default=None, help="the content image")
    p.add_argument("--style", "-s", default=None, help="the style image (neural, reinhard, histogram, gatys)")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="a .png for one method, else a folder (default: GENIMG_OUTPUT_DIR or ./outputs)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = the content .. 1 = full style (default 1)")
    p.add_argument("--preserve-colors", action="store_true", help="keep the content's colours (luminance-only)")
    p.add_argument("--size", type=int, default=512, help="longer side of the working image and outputs (default 512)")
    p.add_argument("--preset", type=int, default=None, help="built-in style 0-25 for the preset method")
    p.add_argument("--prompt", default=None, help="style prompt for sdedit")
    p.add_argument("--negative", default="", help="negative prompt for sdedit")
    p.add_argument("--model", default=None, help="text-to-image catalog id for sdedit (default: the catalog's)")
    p.add_argument("--steps", type=int, default=None, help="sdedit steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="sdedit guidance (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="sdedit seed (default 0)")
    p.add_argument("--iterations", type=int, default=None, help="gatys iterations (default 100)")
    p.add_argument("--content-weight", type=float, default=None, help="gatys content weight (default 1)")
    p.add_argument("--style-weight", type=float, default=None, help="gatys style weight (default 5)")
    p.add_argument("--no-early-stop", action="store_true", help="gatys: run every iteration")
    p.add_argument("--no-scores", action="store_true", help="skip the scores")
    p.add_argument("--list", action="store_true", help="list the methods")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_style)
    return p


def cmd_style(args: argparse.Namespace) -> dict[str, Any]:
    """Run the command; returns the JSON payload (printed by genimg.cli.main with --json)."""
    from genimg.style import STYLES

    if args.list:
        rows = [{"method": m.id, "label": m.label, "needs": m.needs, "strength": m.strength_meaning,
                 "description": m.description} for m in STYLES]
        if not args.json:
            for row in rows:
                print(f"{row['method']:<10} needs {row['needs']:<6} {row['label']}\n{'':<10} strength: {row['strength']}")
        return {"command": "style", "methods": rows}
    if not args.content:
        raise GenimgError("--content is required: the image to stylize")
    from genimg.cli.common import cells_progress_bar
    from genimg.config import settings
    from genimg.models.pool import get_pool
    from genimg.tasks.style import save_result, stylize

    bar = cells_progress_bar(not (args.quiet or args.json), "style")
    result = stylize(args.content, args.style, style_prompt=args.prompt, methods=args.method, strength=args.strength,
                     preserve_colors=args.preserve_colors, size=args.size, preset=args.preset, model=args.model,
                     negative_prompt=args.negative, steps=args.steps, guidance=args.guidance, seed=args.seed,
                     iterations=args.iterations, content_weight=args.content_weight,
                     style_weight=args.style_weight, early_stop=not args.no_early_stop,
                     scores=not args.no_scores, pool=get_pool(),
                     progress=bar)
    paths = iter(save_result(result, args.out or settings().output_dir, stem=Path(args.content).stem[:60]))
    cells = []
    for cell in result.cells:
        row = cell.summary()
        if cell.image is not None:
            row["output"] = str(next(paths))
        cells.append(row)
        if not args.json:
            if cell.error is not None:
                print(f"{cell.method}: error: {cell.error}", file=sys.stderr)
            else:
                s = cell.scores

                def fmt(value: float | None) -> str:
                    return "–" if value is None else f"{value:.3f}"

                score = (f"  SSIM {fmt(s.ssim)}, feature dist. {fmt(s.content_distance)}, Gram dist. "
                         f"{fmt(s.gram_distance)}, colour dist. {fmt(s.color_distance)}") if s is not None else ""
                print(f"{row['output']}  ({cell.method}: {cell.seconds:.2f}s{score})")
    return {"command": "style", "params": result.params,
            "reference": result.reference.as_dict() if result.reference else None, "cells": cells}

"""``python -m genimg evaluate``: models × prompts × seeds → images, metrics, a re-runnable report.

    python -m genimg evaluate --models genimg-diffusion,sd-turbo --grammar-set 16 --seeds 0,1,2 --out report/
    python -m genimg evaluate --models tiny-a,tiny-b --prompts "a red fox" "a lighthouse" --seeds 0-3 --json
    python -m genimg evaluate --models sd-turbo --prompts-file prompts.txt --metrics clip,brisque --own-defaults

Every model gets the same prompts, seeds and settings (empty settings: the first model's
defaults), or with --own-defaults each its catalog defaults. Cells are cached (GENIMG_CACHE_DIR,
default ~/.cache/genimg/evaluate): re-running with one more model generates only its images.
The report folder (and <out>.zip) holds images/, results.csv, results.json, config.json,
reproduce.sh and a static report.html. Metrics: faithfulness (scene-grammar prompts), clip
(with CLIP weights), brisque, niqe, sharpness, colourfulness, entropy; per model fd, kid
(EfficientNet-Lite0 features vs grammar renders) and diversity (across seeds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to the CLI's subparsers; returns its parser."""
    from genimg.tasks.evaluate import ALL_METRICS, DEFAULT_METRICS

    p = subparsers.add_parser("evaluate", help="models x prompts x seeds: metrics, CIs, plots and a re-runnable report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", "-m", nargs="+", required=True, help="catalog ids, comma- or space-separated")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", "-p", nargs="+", default=None, help="one or more prompts (quote each)")
    source.add_argument("--prompts-file", type=Path, default=None, help="a UTF-8 text file, one prompt per line")
    source.add_argument("--grammar-set", type=int, default=None, metavar="N",
                        help="N prompts of the scene grammar's fixed evaluation set (1-64, evenly spaced)")
    p.add_argument("--seeds", "-s", default="0", help="e.g. 0,1,2 or 0-3 (default 0)")
    p.add_argument("--metrics", nargs="+", default=None,
                   help=f"comma- or space-separated, from: {', '.join(ALL_METRICS)} "
                        f"(default: {','.join(DEFAULT_METRICS)})")
    p.add_argument("--negative", default="", help="negative prompt, the same for every model")
    p.add_argument("--width", type=int, default=None,
                   help="pixels, every model (default: each model's own; the first model's with --identical-settings)")
    p.add_argument("--height", type=int, default=None, help="pixels, every model (default: as --width)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps, every model")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance, every model")
    p.add_argument("--scheduler", default=None, help="default, euler, euler_a, dpmpp_2m, ddim, unipc, lcm")
    settings = p.add_mutually_exclusive_group()
    settings.add_argument("--own-defaults", action="store_true",
                          help="each model at its own catalog size/steps/guidance/scheduler, except what you set "
                               "explicitly (the default)")
    settings.add_argument("--identical-settings", action="store_true",
                          help="every model at the same size/steps/guidance/scheduler: what you leave out comes "
                               "from the first model's defaults")
    p.add_argument("--out", type=Path, default=None,
                   help="report folder (default: GENIMG_OUTPUT_DIR/evaluate-<time>); <out>.zip is written beside it")
    p.add_argument("--cache-dir", type=Path, default=None, help="cell cache (default: GENIMG_CACHE_DIR/evaluate)")
    p.add_argument("--no-cache", action="store_true", help="generate every cell again (and do not store them)")
    p.add_argument("--no-zip", action="store_true", help="write the folder only")
    p.add_argument("--no-warmup", action="store_true", help="time a freshly loaded model's first call too")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)
    return p


def request_from_args(args: argparse.Namespace):
    """The EvaluateRequest an argument namespace asks for. Raises GenimgError for bad input."""
    from genimg.tasks.evaluate import EvaluateRequest, grammar_prompts, parse_seeds, read_prompts_file

    if args.prompts_file is not None:
        prompts = read_prompts_file(args.prompts_file)
    elif args.grammar_set is not None:
        if not 1 <= args.grammar_set <= 64:
            raise GenimgError(f"--grammar-set takes 1 to 64 prompts, got {args.grammar_set}")
        prompts = grammar_prompts(args.grammar_set)
    else:
        prompts = list(args.prompts or [])
    return EvaluateRequest(models=list(args.models), prompts=prompts, seeds=parse_seeds(args.seeds),
                           negative_prompt=args.negative, width=args.width, height=args.height, steps=args.steps,
                           guidance=args.guidance, scheduler=args.scheduler,
                           own_defaults=not args.identical_settings,
                           metrics=args.metrics, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           warmup=not args.no_warmup)


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the command; returns the JSON payload (printed by genimg.cli.main with --json)."""
    from genimg.cli.common import progress_bar
    from genimg.config import settings
    from genimg.models.pool import get_pool
    from genimg.evaluation.report import summary_table, write_report
    from genimg.tasks.evaluate import evaluate

    request = request_from_args(args)
    bar = progress_bar(not (args.quiet or args.json), "evaluate")
    result = evaluate(request, get_pool(), progress=(lambda done, total, _label: bar(done, total)) if bar else None)
    out = args.out or settings().output_dir / time.strftime("evaluate-%Y%m%d-%H%M%S")
    paths = write_report(result, out, make_zip=not args.no_zip)
    if not args.json:
        header, rows = summary_table(result)
        for row in rows:
            print(" | ".join(f"{h}: {c}" for h, c in zip(header, row)))
        print(f"{result.generated} generated, {result.cache_hits} from the cache -> {paths.html}"
              + (f" (zip: {paths.zip})" if paths.zip else ""))
    return {"command": "evaluate", "report": str(paths.folder), "zip": str(paths.zip) if paths.zip else None,
            "html": str(paths.html), "csv": str(paths.csv), "results_json": str(paths.json),
            **result.summary_json()}

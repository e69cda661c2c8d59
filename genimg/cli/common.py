"""What every ``python -m genimg`` command shares: the parser, progress bars, generation flags, output folder.

Contract (README, "What it does"): every command has ``--help``; ``--json`` prints one JSON object on stdout with
the outputs' paths, parameters and timings; a user error exits with code 2 and one ``error: ...``
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable


class Parser(argparse.ArgumentParser):
    """argparse, but usage mistakes follow the one-line ``error:`` contract."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def progress_bar(enabled: bool, desc: str) -> Callable[[int, int], None] | None:
    """A per-step progress bar on stderr (stdout stays clean for --json)."""
    if not enabled:
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(step: int, total: int, *_: Any) -> None:
        bar = state.get("bar")
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
        bar.n = step
        bar.refresh()
        if step >= total:
            bar.close()
            state.pop("bar")

    return update


def cells_progress_bar(enabled: bool, desc: str) -> Callable[[Any], None] | None:
    """A progress bar for side-by-side runs (genimg.runner.Progress): cells done, and the running cell's steps."""
    bar = progress_bar(enabled, desc)
    if bar is None:
        return None

    def update(p: Any) -> None:
        bar(round(p.done * 100), p.cells * 100)

    return update


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """The flags of a text-to-image request (prompt, size, steps, guidance, scheduler, seed, batch, output)."""
    p.add_argument("--prompt", "-p", required=True, help="what to draw")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--width", type=int, default=None, help="pixels (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="pixels (default: the model's)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--scheduler", default=None, help="default, euler, euler_a, dpmpp_2m, ddim, unipc, lcm")
    p.add_argument("--seed", type=int, default=-1, help="-1 picks a random seed (reported)")
    p.add_argument("--batch", type=int, default=1, help="images per model; image i uses seed+i")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: GENIMG_OUTPUT_DIR or ./outputs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def generation_request(args: argparse.Namespace, model: str):
    """The GenerateRequest the generation flags ask for, on ``model``."""
    from genimg.tasks.generate import GenerateRequest

    return GenerateRequest(prompt=args.prompt, model=model, negative_prompt=args.negative, width=args.width,
                           height=args.height, steps=args.steps, guidance=args.guidance,
                           scheduler=args.scheduler, seed=args.seed, batch=args.batch)


def out_dir(args: argparse.Namespace) -> Path:
    """``--out``, else GENIMG_OUTPUT_DIR (default ./outputs)."""
    from genimg.config import settings

    return args.out or settings().output_dir

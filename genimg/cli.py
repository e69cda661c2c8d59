"""Command line: ``python -m genimg <command>``, a thin front end over the task functions.

Contract (DESIGN.md): every command has ``--help``; ``--json`` prints one JSON object on
stdout with the outputs' paths, parameters and timings; a user error exits with code 2
and one ``error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

from genimg.errors import GenimgError


# Capabilities that contribute their own command (each module has ``register(subparsers)``).
COMMAND_MODULES = ("genimg.commands.style", "genimg.commands.restore", "genimg.commands.metrics",
                   "genimg.commands.train", "genimg.commands.evaluate")


class _Parser(argparse.ArgumentParser):
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


def _add_generation_args(p: argparse.ArgumentParser) -> None:
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


def _request(args: argparse.Namespace, model: str):
    from genimg.tasks.generate import GenerateRequest

    return GenerateRequest(prompt=args.prompt, model=model, negative_prompt=args.negative, width=args.width,
                           height=args.height, steps=args.steps, guidance=args.guidance,
                           scheduler=args.scheduler, seed=args.seed, batch=args.batch)


def _out_dir(args: argparse.Namespace) -> Path:
    from genimg.config import settings

    return args.out or settings().output_dir


def cmd_models(args: argparse.Namespace) -> dict[str, Any]:
    from genimg.models.catalog import default_model
    from genimg.models.pool import get_pool

    pool = get_pool()
    rows = []
    for spec in pool.catalog.values():
        ok, reason = pool.availability(spec.id)
        rows.append({"id": spec.id, "name": spec.name, "backend": spec.backend, "source": spec.source,
                     "tasks": list(spec.tasks), "licence": spec.licence, "available": ok, "reason": reason})
    if not args.json:
        default = default_model(pool.catalog)
        for row in rows:
            mark = "yes" if row["available"] else "no "
            star = "*" if row["id"] == default else " "
            print(f"{star}{row['id']:<24} {mark}  {row['backend']:<9} {','.join(row['tasks']):<40} {row['reason']}")
        print("(* default text-to-image model; 'no' rows say how to provide the weights)")
    return {"command": "models", "models": rows}


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from genimg.models.catalog import default_model
    from genimg.models.pool import get_pool
    from genimg.outputs import save_result
    from genimg.tasks.generate import generate

    pool = get_pool()
    model = args.model or default_model(pool.catalog)
    if model is None:
        raise GenimgError("the catalog has no text-to-image model: add one to assets/models.toml")
    result = generate(_request(args, model), pool, progress=progress_bar(not (args.quiet or args.json), model))
    paths = save_result(result, _out_dir(args))
    if not args.json:
        for path, seed in zip(paths, result.seeds):
            print(f"{path}  (seed {seed})")
        t = result.timings
        print(f"{model}: {t.total_s:.3f}s ({t.steps_per_s:.2f} steps/s), load {t.load_s:.3f}s")
    return {"command": "generate", "outputs": [str(p) for p in paths], "seeds": result.seeds,
            "params": result.params, "model": result.model, "timings": result.timings.as_dict()}


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    from genimg.models.pool import get_pool
    from genimg.outputs import save_result
    from genimg.tasks.compare import compare

    pool = get_pool()
    result = compare(_request(args, args.models[0]), args.models, pool,
                     progress=cells_progress_bar(not (args.quiet or args.json), "compare"), warmup=not args.no_warmup)
    cells = []
    for cell in result.cells:
        row = cell.summary()
        if cell.result is not None:
            row["outputs"] = [str(p) for p in save_result(cell.result, _out_dir(args))]
            row["params"] = cell.result.params
        cells.append(row)
        if not args.json:
            if cell.result is None:
                print(f"{cell.model}: error: {cell.error}")
            else:
                print(f"{cell.model}: wall {row['wall_s']:.3f}s, {row['steps_per_s']:.2f} steps/s, "
                      f"peak {row['peak_memory_mb']:.0f} MB, load {row['load_s']:.3f}s -> {', '.join(row['outputs'])}")
    return {"command": "compare", "seeds": result.seeds, "cells": cells}


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    if args.random_weights or args.flops_only:  # the GPU suite (genimg/bench/gpu.py, docs/gpu.md)
        from genimg.bench import gpu as gpu_bench

        report = gpu_bench.run_random_weights(
            models=tuple(args.models), variants=tuple(args.variants), repeats=args.repeats or 20,
            compile_mode=args.compile_mode, flops_only=args.flops_only, end_to_end=not args.no_end_to_end)
        if not args.json:
            print(gpu_bench.format_table(report) if args.table else json.dumps(report, indent=2))
        return report
    from genimg.bench import run_bench

    if args.load:
        from genimg.bench.load import bench_load

        report = {"load": bench_load(clients=args.clients, requests_per_client=args.requests)}
        if not args.json:
            print(json.dumps(report, indent=2))
        return report
    report = run_bench(quick=args.quick, repeats=args.repeats, only=args.only)
    if args.table and not args.json:
        from genimg.bench import format_table

        print(format_table(report))
    elif not args.json:
        print(json.dumps(report, indent=2))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m genimg", description="genimg: fast image generation and fair model comparison")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("models", help="list the catalog and whether each model can be loaded here")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("generate", help="text to image on one model")
    p.add_argument("--model", "-m", default=None, help="catalog id (default: the catalog's default model)")
    _add_generation_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("compare", help="same prompt and seeds on 2-4 models, side by side with timings")
    p.add_argument("--models", nargs="+", required=True, help="2-4 catalog ids")
    p.add_argument("--no-warmup", action="store_true", help="time a freshly loaded model's first call too")
    _add_generation_args(p)
    p.set_defaults(func=cmd_compare)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)

    p = sub.add_parser("bench", help="benchmarks as ratios against bare baselines (JSON)")
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="trials per measurement")
    p.add_argument("--only", nargs="*", default=None, help="run only these sections")
    p.add_argument("--table", action="store_true", help="a readable table instead of JSON")
    p.add_argument("--load", action="store_true",
                   help="instead: the load test (concurrent gradio clients on /generate and /metrics, loopback)")
    p.add_argument("--clients", type=int, default=16, help="--load: concurrent clients")
    p.add_argument("--requests", type=int, default=13, help="--load: requests per client")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (the default)")
    g = p.add_argument_group("GPU, full-size architectures with random weights (docs/gpu.md)")
    g.add_argument("--random-weights", action="store_true", help="time SD 1.5 / SD-Turbo / SDXL UNets, the VAE and "
                   "an SD-Turbo-shaped pipeline built from configs (needs CUDA; no downloads)")
    g.add_argument("--flops-only", action="store_true", help="parameter and FLOP counts only (meta device; no GPU)")
    g.add_argument("--models", nargs="+", default=["sd15", "sd-turbo", "sdxl"], choices=["sd15", "sd-turbo", "sdxl"])
    g.add_argument("--variants", nargs="+", default=["fp16", "bf16", "bf16_channels_last", "bf16_compile"],
                   choices=["fp16", "bf16", "bf16_channels_last", "bf16_compile"])
    g.add_argument("--compile-mode", default="reduce-overhead", choices=["default", "reduce-overhead", "max-autotune"])
    g.add_argument("--no-end-to-end", action="store_true", help="skip the SD-Turbo-shaped end-to-end comparison")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 user error, 130 interrupted)."""
    from genimg.quiet import quiet_libraries

    quiet_libraries()
    args = build_parser().parse_args(argv)
    try:
        from genimg.models.device import configure_cpu_threads

        configure_cpu_threads()
        payload = args.func(args)
    except GenimgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        try:
            print(json.dumps(payload, default=str))
        except BrokenPipeError:  # `... --json | head`: the reader left, not an error of ours
            pass
    return 0

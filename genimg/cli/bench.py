"""``python -m genimg bench``: speed as ratios against bare baselines (JSON), the load test, the GPU suite."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``bench`` command."""
    p = subparsers.add_parser("bench", help="benchmarks as ratios against bare baselines (JSON)")
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="trials per measurement")
    p.add_argument("--only", nargs="*", default=None, help="run only these sections")
    p.add_argument("--table", action="store_true", help="a readable table instead of JSON")
    p.add_argument("--load", action="store_true",
                   help="instead: the load test (concurrent gradio clients on /generate and /metrics, loopback)")
    p.add_argument("--ray", action="store_true",
                   help="instead: Ray Serve (requirements-ray.txt) -- ingress overhead vs the single-process app, "
                        "/generate throughput with 1 vs 2 replicas (docs/scale-out.md)")
    p.add_argument("--clients", type=int, default=16, help="--load: concurrent clients (--ray: 4)")
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


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``bench``; prints the report (JSON or a table) and returns it."""
    if args.random_weights or args.flops_only:  # the GPU suite (genimg/bench/gpu.py, docs/gpu.md)
        from genimg.bench import gpu as gpu_bench

        report = gpu_bench.run_random_weights(
            models=tuple(args.models), variants=tuple(args.variants), repeats=args.repeats or 20,
            compile_mode=args.compile_mode, flops_only=args.flops_only, end_to_end=not args.no_end_to_end)
        if not args.json:
            print(gpu_bench.format_table(report) if args.table else json.dumps(report, indent=2))
        return report
    from genimg.bench import run_bench

    if args.ray:
        from genimg.bench.ray import bench_ray

        report = {"ray": bench_ray(clients=4 if args.clients == 16 else args.clients,
                                   requests=8 if args.quick else 32, repeats=args.repeats or (3 if args.quick else 9))}
        if not args.json:
            print(json.dumps(report, indent=2))
        return report
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

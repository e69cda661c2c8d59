"""Command line: ``python -m genimg <command>``, a thin front end over the task functions.

One module per command family, each with ``register(subparsers)``; the shared parts (parser,
progress bars, generation flags) are :mod:`genimg.cli.common`. Contract (README, "What it does"): every command
has ``--help``; ``--json`` prints one JSON object on stdout with the outputs' paths, parameters and
timings; a user error exits with code 2 and one ``error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from genimg.cli import (arena, ask, bench, evaluate, generate, grid, info, metrics, models, restore, runs, serve, style,
                        train)
from genimg.cli.common import Parser
from genimg.errors import GenimgError

# In the order --help lists them.
COMMANDS = (models, generate, grid, style, restore, metrics, ask, train, runs, evaluate, arena, bench, serve, info)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m genimg`` parser with every command registered."""
    parser = Parser(prog="python -m genimg", description="genimg: fast image generation and fair model comparison")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
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

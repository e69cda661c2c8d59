"""``python -m genimg train <model>``: reproduce the weights we ship.

Each trainer owns its options (``python -m genimg train <model> --help``) and returns a
JSON-able summary (printed with ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from genimg.training import TRAINERS


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` command; returns its parser."""
    p = subparsers.add_parser("train", help="train one of the models genimg ships (reproducibly)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=TRAINERS.names(), help="which model to train")
    p.add_argument("--json", action="store_true", help="print the training summary as one JSON object")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the trainer's own options (see train <model> --help)")
    p.set_defaults(func=cmd_train)
    return p


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the trainer of ``args.model`` with ``args.options``; returns {"command", "model", "summary"}.

    A trainer's user error is a GenimgError (the CLI prints it and exits with 2).
    """
    trainer = TRAINERS.get(args.model)
    if args.json:
        # --json promises one JSON object on stdout: the trainer's progress log goes to stderr instead.
        with contextlib.redirect_stdout(sys.stderr):
            summary = trainer(list(args.options))
    else:
        summary = trainer(list(args.options))
    return {"command": "train", "model": args.model, "summary": summary}

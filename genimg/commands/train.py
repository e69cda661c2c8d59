"""``python -m genimg train <model>``: reproduce the weights we ship.

Each trainer owns its options (``python -m genimg train <model> --help``) and returns a
JSON-able summary (printed with ``--json``).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# model name -> "module:function(argv) -> summary" (or an exit code)
TRAINERS = {
    "dae": "genimg.embedded.dae:main",
    "diffusion": "genimg.embedded.train:main",
    "fewstep": "genimg.embedded.fewstep:main",
    "gan": "genimg.embedded.train_onestep:main",
    "vae": "genimg.embedded.train_onestep:main",
}
# Trainers whose main() takes the model name as its first argument (one CLI for several models).
_NAMED = {"diffusion", "gan", "vae"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` command; returns its parser."""
    p = subparsers.add_parser("train", help="train one of the models genimg ships (reproducibly)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=sorted(TRAINERS), help="which model to train")
    p.add_argument("--json", action="store_true", help="print the training summary as one JSON object")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the trainer's own options (see train <model> --help)")
    p.set_defaults(func=cmd_train)
    return p


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    module_name, _, function = TRAINERS[args.model].partition(":")
    trainer = getattr(importlib.import_module(module_name), function)
    argv = ([args.model] if args.model in _NAMED else []) + list(args.options)
    summary = trainer(argv)
    if isinstance(summary, int) and summary != 0:
        raise SystemExit(summary)  # the trainer already printed its one `error:` line
    return {"command": "train", "model": args.model, "summary": summary if isinstance(summary, dict) else {"result": summary}}

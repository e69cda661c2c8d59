"""``python -m genimg ask``: ask a question about an image.

    python -m genimg ask --image scene.png --question "what colour is the circle?"
    python -m genimg ask --image scene.png --question "how many stars are there?" --json
    python -m genimg ask --image photo.jpg --question "what is in the picture?" --model smolvlm-256m

The answer comes from the image's pixels only, never from its metadata. The default answerer,
genimg-scene-qa, answers colour, shape, count, position, background and relation questions about
images of flat shapes on a plain background, and says what it can answer for anything else;
vision-language models (SmolVLM, Qwen2-VL, LLaVA) answer free questions where their weights are
present (`python -m genimg models` lists the answerers).
"""

from __future__ import annotations

import argparse
from typing import Any

from genimg.errors import GenimgError


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ask`` command to the CLI's subparsers; returns its parser."""
    p = subparsers.add_parser("ask", help="visual question answering: ask a question about an image",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", "-i", default=None, help="the image (PNG, JPEG, WebP, BMP, TIFF, GIF)")
    p.add_argument("--question", "-q", default=None, help="the question, e.g. 'what colour is the circle?'")
    p.add_argument("--model", "-m", default=None,
                   help="answerer id (default: the catalog's default answerer, genimg-scene-qa)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_ask)
    return p


def cmd_ask(args: argparse.Namespace) -> dict[str, Any]:
    """Run the command; returns the JSON payload (printed by genimg.cli.main with --json)."""
    if not args.image:
        raise GenimgError("no image given: pass --image PATH")
    if args.question is None:
        raise GenimgError("no question given: pass --question 'what colour is the circle?'")
    from genimg.models.pool import get_pool
    from genimg.outputs import json_safe
    from genimg.tasks.ask import ask

    result = ask(get_pool(), args.image, args.question, model=args.model)
    if not args.json:
        print(result["answer"])
    return json_safe({"command": "ask", "image_path": args.image, **result})

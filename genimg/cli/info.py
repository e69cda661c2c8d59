"""``python -m genimg info IMAGE``: the generation parameters an image carries (A1111, ComfyUI, InvokeAI, ours)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``info`` command."""
    p = subparsers.add_parser("info", help="read the generation parameters of a PNG/JPEG/WebP (PNG Info)")
    p.add_argument("image", type=Path, help="an image written by genimg, AUTOMATIC1111, ComfyUI or InvokeAI")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``info``; returns the JSON payload (source, the shared fields, extra, and the Generate fields).
    Raises GenimgError when the file is not an image the gate accepts or carries no parameters."""
    from PIL import Image

    from genimg.imageio import load_image
    from genimg.pnginfo import read_info

    load_image(args.image, what="image")  # the one image gate: size, format, bombs
    with Image.open(args.image) as image:
        info = read_info(image)
    payload = {"command": "info", "image": str(args.image), **info.as_dict(), "generate": info.generate_fields()}
    if not args.json:
        print(f"written by: {info.source}")
        for key in ("prompt", "negative_prompt", "model", "model_hash", "sampler", "steps", "guidance", "seed"):
            value = getattr(info, key)
            if value not in (None, ""):
                print(f"{key}: {value}")
        if info.width and info.height:
            print(f"size: {info.width}x{info.height}")
        for key, value in info.extra.items():
            print(f"{key}: {value}")
    return payload

"""``python -m genimg metrics``: score one image, optionally against a reference.

    python -m genimg metrics --image out.png --reference original.png
    python -m genimg metrics --image out.png --reference original.png --metrics psnr ssim ms_ssim --json
    python -m genimg metrics --image photo.jpg                      # no-reference metrics only
    python -m genimg metrics --list                                 # metrics and whether each runs here

Sizes must match: nothing is resized unless --resize-to-match is given.
"""

from __future__ import annotations

import argparse
from typing import Any

from genimg.errors import GenimgError


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``metrics`` command to the CLI's subparsers; returns its parser."""
    p = subparsers.add_parser("metrics", help="image quality metrics: PSNR, SSIM, MS-SSIM, BRISQUE, NIQE, ...",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", "-i", default=None, help="the image to score (PNG, JPEG, WebP, BMP, TIFF, GIF)")
    p.add_argument("--reference", "-r", default=None, help="reference image for full-reference metrics")
    p.add_argument("--metrics", "-m", nargs="+", default=None,
                   help="metric names (default: every one that applies and can run here); see --list")
    p.add_argument("--resize-to-match", action="store_true",
                   help="resize the image (bicubic) to the reference's size instead of refusing a mismatch")
    p.add_argument("--list", action="store_true", help="list the metrics and whether each can run here")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_metrics)
    return p


def cmd_metrics(args: argparse.Namespace) -> dict[str, Any]:
    """Run the command; returns the JSON payload (printed by genimg.cli.main with --json)."""
    if args.list:
        from genimg.metrics.registry import metric_table

        rows = metric_table()
        if not args.json:
            for row in rows:
                kind = "full-ref" if row["needs_reference"] else "no-ref  "
                state = "yes" if row["available"] else "no "
                print(f"{row['key']:<16} {kind} {state} {row['better']:<6} {row['label']}"
                      + (f"  ({row['reason']})" if not row["available"] else ""))
        return {"command": "metrics", "metrics": rows}
    if not args.image:
        raise GenimgError("no image given: pass --image PATH (and --reference PATH for full-reference metrics)")
    from genimg.outputs import json_safe
    from genimg.tasks.metrics import compute_metrics, rows_for_table

    result = compute_metrics(args.image, args.reference, metrics=args.metrics, resize_to_match=args.resize_to_match)
    if not args.json:
        rows = rows_for_table(result)
        width = max(len(r[0]) for r in rows)
        for label, value, better, _meaning in rows:
            print(f"{label:<{width}}  {value:<14}  ({better})")
    # JSON has no infinity: identical images' PSNR goes out as the string "inf" (display "∞").
    return json_safe({"command": "metrics", "image_path": args.image, "reference_path": args.reference, **result})

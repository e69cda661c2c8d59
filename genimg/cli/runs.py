"""``python -m genimg runs``: every training run with its last metrics, whatever its ``--out`` folder."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``runs`` command."""
    p = subparsers.add_parser("runs", help="list training runs (every python -m genimg train ...) with their last metrics")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_runs)


def _f(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def cmd_runs(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``runs``; prints a table (unless --json) and returns {"command", "index", "runs"}."""
    from genimg.training.runs import HEADLINE_LABELS, index_path, list_runs

    rows = list_runs()
    if not args.json:
        if not rows:
            print(f"no training runs recorded yet in {index_path()} (python -m genimg train <model> records each run)")
        for row in rows:
            ev = row.get("eval", {})
            alarm = f"  {row['alerts']} alarm(s)" if row.get("alerts") else ""
            where = row["dir"] if row["exists"] else f"{row['dir']} (folder gone)"
            headline = row.get("headline") or "single_colour_bg_shape"
            print(f"{row.get('name', '?'):<28} {row.get('model', '?'):<9} {row.get('status', '?'):<9} "
                  f"step {_f(row.get('step')):>6}  {HEADLINE_LABELS.get(headline, headline)} {_f(ev.get(headline))}  "
                  f"diversity {_f(ev.get('diversity'))}{alarm}  {where}")
    return {"command": "runs", "index": str(index_path()), "runs": rows}

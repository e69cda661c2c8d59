"""``python -m genimg models``: the catalog, and whether each model can be loaded here (and if not, how)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``models`` command."""
    p = subparsers.add_parser("models", help="list the catalog and whether each model can be loaded here")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``models``; prints the table (unless --json) and returns the rows."""
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
            print(f"{star}{row['id']:<24} {mark}  {row['backend']:<12} {','.join(row['tasks']):<40} {row['reason']}")
        print("(* default text-to-image model; 'no' rows say how to provide the weights)")
    return {"command": "models", "models": rows}

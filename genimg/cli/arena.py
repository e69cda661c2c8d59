"""``python -m genimg arena``: blind battles, votes and the leaderboard from the command line.

    python -m genimg arena battle --suite grammar --out battle/     # two anonymous images + a battle id
    python -m genimg arena vote <battle-id> A                         # A, B, tie or both_bad: reveals the models
    python -m genimg arena leaderboard --json                         # Bradley–Terry ratings, 95 % intervals
    python -m genimg arena export --format csv --out arena-export/    # leaderboard and every vote

The database is a SQLite file in GENIMG_DATA_DIR (default ./data), or GENIMG_DB_URL.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genimg.cli.common import Parser, cells_progress_bar


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``arena`` command and its subcommands; returns its parser."""
    p = subparsers.add_parser("arena", help="blind battles between models, votes, the Bradley–Terry leaderboard",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="arena_command", required=True, parser_class=Parser)

    board = sub.add_parser("leaderboard", help="ratings with bootstrap 95 %% intervals, battles and wins per model")
    board.add_argument("--category", default=None, help="only battles whose prompt has this category")
    board.add_argument("--rounds", type=int, default=200, help="bootstrap resamples (default 200; 0: no intervals)")
    board.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    board.set_defaults(func=cmd_leaderboard)

    export = sub.add_parser("export", help="write the leaderboard and the vote log as CSV or JSON files")
    export.add_argument("--format", choices=("csv", "json"), default="json", help="file format (default json)")
    export.add_argument("--out", type=Path, default=Path("arena-export"), help="folder (default ./arena-export)")
    export.add_argument("--rounds", type=int, default=200, help="bootstrap resamples for the leaderboard")
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    export.set_defaults(func=cmd_export)

    battle = sub.add_parser("battle", help="generate a blind battle: anonymous images A, B (...) and its id")
    source = battle.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", "-p", default=None, help="what to draw")
    source.add_argument("--suite", default=None, help="draw the prompt from 'grammar' or a prompt file")
    battle.add_argument("--models", "-m", default=None, help="comma-separated ids (default: drawn at random)")
    battle.add_argument("--k", type=int, default=2, help="images in the battle, 2-4 (default 2)")
    battle.add_argument("--seed", type=int, default=-1, help="the same seed for every model (-1: random)")
    battle.add_argument("--out", type=Path, default=Path("arena-battle"), help="folder for A.png, B.png, ...")
    battle.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    battle.add_argument("--quiet", action="store_true", help="no progress bar")
    battle.set_defaults(func=cmd_battle)

    vote = sub.add_parser("vote", help="vote on a battle and reveal its models")
    vote.add_argument("battle_id", help="the id `arena battle` printed")
    vote.add_argument("choice", help="A, B, tie or both_bad (a ranking such as C>A>B for 3-4 images)")
    vote.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    vote.set_defaults(func=cmd_vote)
    return p


def _print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<26} {'rating':>7} {'95% interval':>17} {'battles':>8} {'wins':>5} {'ties':>5} {'both bad':>8}")
    for r in rows:
        print(f"{r['model']:<26} {r['rating']:>7.1f} {r['ci_low']:>8.1f}-{r['ci_high']:<8.1f} {r['battles']:>8} "
              f"{r['wins']:>5} {r['ties']:>5} {r['both_bad']:>8}")


def cmd_leaderboard(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``arena leaderboard``; prints the table (unless --json) and returns it."""
    from genimg.tasks.arena import leaderboard
    from genimg import params as P

    board = leaderboard(category=args.category, rounds=P.check_int(args.rounds, "rounds", 0, 10_000))
    if not args.json:
        if not board["rows"]:
            print("no votes yet: start a battle in the dashboard's Arena tab or with `python -m genimg arena battle`")
        _print_rows(board["rows"])
        for category, rows in board["categories"].items():
            print(f"\ncategory: {category}")
            _print_rows(rows)
    return {"command": "arena leaderboard", **board}


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``arena export``: write leaderboard.<fmt> and votes.<fmt> into --out; return their paths."""
    from genimg.tasks.arena import export
    from genimg import params as P

    files = export(args.format, rounds=P.check_int(args.rounds, "rounds", 0, 10_000))
    args.out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = args.out / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    if not args.json:
        print("\n".join(paths))
    return {"command": "arena export", "format": args.format, "paths": paths}


def cmd_battle(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``arena battle``: save the anonymous images as A.png, B.png, ...; return the battle id and paths."""
    from genimg.tasks.arena import start_battle

    result = start_battle(args.prompt, args.models, k=args.k, seed=args.seed, suite=args.suite,
                          session="cli", progress=cells_progress_bar(not args.quiet and not args.json, "battle"))
    args.out.mkdir(parents=True, exist_ok=True)
    paths = []
    for letter, image in zip("ABCD", result.images):
        path = args.out / f"{letter}.png"
        image.save(path, format="PNG")  # no metadata: nothing may name the model before the vote
        paths.append(str(path))
    if not args.json:
        print(f"battle {result.battle_id}: {result.prompt!r}")
        print("\n".join(paths))
        print(f"vote with: python -m genimg arena vote {result.battle_id} A|B|tie|both_bad")
    return {"command": "arena battle", "battle_id": result.battle_id, "prompt": result.prompt,
            "category": result.category, "seed": result.seed, "paths": paths}


def cmd_vote(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``arena vote``: count the vote, print the revealed models, return them."""
    from genimg.tasks.arena import vote

    reveal = vote(args.battle_id, args.choice, session="cli")
    if not args.json:
        for letter in "abcd":
            if letter in reveal:
                cell = reveal[letter]
                print(f"{letter.upper()}: {cell['model']} ({cell['wall_s']:.3f} s)")
        print(f"your vote: {reveal['choice']}")
    return {"command": "arena vote", **reveal}

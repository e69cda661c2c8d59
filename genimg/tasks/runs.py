"""Training runs as the dashboard shows them: the runs table, curves, sample grids, alarms, the card.

Plain functions over :mod:`genimg.training.runs` (the index and the run folders), shaped for the
Training tab and ``python -m genimg runs``; nothing here trains or loads a model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from genimg.training.runs import HEADLINE_LABELS, SUMMARY_METRICS, list_runs, run_view

TABLE_COLUMNS = ["run", "model", "status", "step", "faithfulness", "measured as", "diversity", "alarms", "updated",
                 "folder"]
EVAL_SERIES = SUMMARY_METRICS


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def runs_table() -> tuple[list[list[Any]], list[tuple[str, str]]]:
    """(rows in TABLE_COLUMNS order, (label, run folder) choices), newest run first."""
    rows, choices = [], []
    for run in list_runs():
        ev = run.get("eval", {})
        headline = run.get("headline") or "single_colour_bg_shape"
        rows.append([run.get("name"), run.get("model"), run.get("status") if run["exists"] else "folder gone",
                     run.get("step"), _round(ev.get(headline)), HEADLINE_LABELS.get(headline, headline),
                     _round(ev.get("diversity")), run.get("alerts", 0), run.get("updated"), run["dir"]])
        if run["exists"]:
            choices.append((f"{run.get('name')} ({run.get('model')}, {run.get('status')})", run["dir"]))
    return rows, choices


def _label(view: dict[str, Any]) -> str:
    return Path(view["dir"]).name


def curve_points(run_dirs: list[str], kind: str) -> list[dict[str, Any]]:
    """Long-form points {"step", "value", "series"} of the runs' losses (``kind="loss"``) or evaluation
    figures (``kind="eval"``); with two runs each series is prefixed by its run folder's name."""
    points: list[dict[str, Any]] = []
    several = len(run_dirs) > 1
    for run_dir in run_dirs:
        view = run_view(run_dir)
        prefix = f"{_label(view)}: " if several else ""
        if kind == "loss":
            for row in view["scalars"]:
                for key, value in row.items():
                    if key.startswith("loss/"):
                        points.append({"step": row["step"], "value": value, "series": prefix + key.removeprefix("loss/")})
        else:
            for row in view["evals"]:
                for key in EVAL_SERIES:
                    if isinstance(row.get(key), (int, float)):
                        points.append({"step": row["step"], "value": row[key], "series": prefix + key})
    return points


def sample_steps(run_dir: str) -> list[tuple[int, str]]:
    """(step, PNG path) of a run's sample grids, oldest first."""
    out = []
    for path in run_view(run_dir)["samples"]:
        match = re.search(r"step-(\d+)\.png$", path)
        if match:
            out.append((int(match.group(1)), path))
    return sorted(out)


def nearest_sample(grids: list[tuple[int, str]], step: int) -> tuple[int, str] | None:
    """The (step, path) of ``grids`` whose step is nearest ``step`` (the earlier one on a tie); None if empty.

    Two runs checkpoint at different steps (another cadence, a resumed run): side by side, a grid is
    paired with the other run's grid of the nearest step, not with its N-th one.
    """
    if not grids:
        return None
    return min(grids, key=lambda grid: (abs(grid[0] - step), grid[0]))


def run_card(run_dir: str) -> dict[str, Any]:
    """The run's card: its settings, best checkpoint, last evaluation and alarms (JSON-able)."""
    view = run_view(run_dir)
    card_file = Path(run_dir) / "best" / "model_card.json"
    return {"folder": run_dir, "config": view["config"], "best_checkpoint": view["best"],
            "last_evaluation": view["evals"][-1] if view["evals"] else None, "alarms": view["alerts"],
            "model_card": json.loads(card_file.read_text()) if card_file.exists() else None}


def alarms_markdown(run_dirs: list[str]) -> str:
    """The runs' alarms as a short warning (empty when there is none)."""
    lines = []
    for run_dir in run_dirs:
        for alert in run_view(run_dir)["alerts"][-3:]:
            lines.append(f"- **{Path(run_dir).name}, step {alert['step']}: {alert['title']}** — {alert['text']}")
    return ("### ⚠ Alarms\n" + "\n".join(lines)) if lines else ""

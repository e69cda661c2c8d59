"""The index of training runs, and what a run folder says about its run.

Every run of :func:`genimg.training.loop.fit` is recorded in ``$GENIMG_DATA_DIR/training-runs.json``
(run folder -> model, name, times, status), whatever its ``--out`` folder, so ``python -m genimg
runs`` and the Training tab find every run. A run's curves, evaluations, sample grids and alarms
are read from its own folder (written by :mod:`genimg.training.tracking` and the loop), so the
index stays small and a folder copied elsewhere still shows everything.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genimg.training.tracking import data_dir

INDEX_NAME = "training-runs.json"


def index_path() -> Path:
    """Where the index lives: ``$GENIMG_DATA_DIR/training-runs.json``."""
    return data_dir() / INDEX_NAME


@contextmanager
def _locked_index() -> Iterator[dict[str, Any]]:
    # Several trainers may start or finish at once: one writer at a time (flock), written whole
    # to a temporary file and renamed, so a reader never sees half an index.
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            index = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except json.JSONDecodeError:
            index = {}
        yield index
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)


def record_run(run_dir: Path | str, **fields: Any) -> None:
    """Add or update the index entry of ``run_dir`` with ``fields`` (model, name, status, step, ...)."""
    key = str(Path(run_dir).resolve())
    with _locked_index() as index:
        entry = index.setdefault(key, {"created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        entry.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written right now
            continue
    return rows


def run_view(run_dir: Path | str) -> dict[str, Any]:
    """Everything a run folder says: scalars, evaluations, sample grids, alarms, best checkpoint, config."""
    run_dir = Path(run_dir)
    best = run_dir / "best" / "best.json"
    config = run_dir / "train_config.json"
    return {"dir": str(run_dir), "scalars": _read_jsonl(run_dir / "scalars.jsonl"),
            "evals": _read_jsonl(run_dir / "eval.jsonl"), "alerts": _read_jsonl(run_dir / "alerts.jsonl"),
            "samples": sorted(str(p) for p in (run_dir / "samples").glob("*.png")),
            "best": json.loads(best.read_text()) if best.exists() else None,
            "config": json.loads(config.read_text()) if config.exists() else None}


# The evaluation figures a run's summary keeps: the shapes world's, then the emoji world's headline rates.
SUMMARY_METRICS = ("single_colour_bg", "single_colour_bg_shape", "relation", "all", "diversity", "near_duplicates",
                   "single_emoji", "single_background", "relation_all", "faces_emoji_tone")
# Readable names of the metrics that pick a run's best checkpoint (its "headline").
HEADLINE_LABELS = {"single_colour_bg_shape": "colour+bg+shape", "single_emoji": "right emoji"}


def this_host() -> str:
    """The machine name recorded with a run's process id."""
    return socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def last_metrics(view: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a run: its last step, losses and evaluation (faithfulness, diversity)."""
    with_losses = [row for row in view["scalars"] if any(k.startswith("loss/") for k in row)]
    last_scalars = with_losses[-1] if with_losses else {}
    last_eval = view["evals"][-1] if view["evals"] else {}
    keep = SUMMARY_METRICS
    steps = [row.get("step", 0) for row in view["scalars"][-1:] + view["evals"][-1:]]
    return {"step": max(steps, default=0),
            "losses": {k.removeprefix("loss/"): v for k, v in last_scalars.items() if k.startswith("loss/")},
            "eval": {k: last_eval[k] for k in keep if k in last_eval}}


def list_runs() -> list[dict[str, Any]]:
    """Every indexed run, newest first, with its last metrics; runs whose folder is gone say so."""
    path = index_path()
    index = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    rows = []
    for run_dir, entry in index.items():
        row = {"dir": run_dir, **entry, "exists": Path(run_dir).is_dir()}
        # A trainer killed outright (SIGKILL, a lost machine) cannot say it stopped: a "running" run whose
        # process is gone from this machine is shown as stopped.
        if (row.get("status") == "running" and row.get("pid") and row.get("host") == this_host()
                and not _alive(int(row["pid"]))):
            row["status"] = "stopped"
        row.setdefault("headline", "single_colour_bg_shape")
        if row["exists"]:
            view = run_view(run_dir)
            row.update(last_metrics(view), alerts=len(view["alerts"]),
                       best=view["best"], samples=len(view["samples"]))
        rows.append(row)
    return sorted(rows, key=lambda r: r.get("updated", ""), reverse=True)

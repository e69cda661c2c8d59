"""Watching training: one logging module for every trainer, to every tracker at once.

:func:`open_run` gives the training loop (:func:`genimg.training.loop.fit`) a :class:`RunLog`
that sends each record to the run's trackers:

- ``files`` (always): ``scalars.jsonl``, ``alerts.jsonl`` and ``samples/step-<n>.png`` in the
  run folder -- what the dashboard's Training tab and ``python -m genimg runs`` read;
- ``tensorboard``: event files in ``<run>/tensorboard`` (``torch.utils.tensorboard``;
  ``tensorboard --logdir <run>/tensorboard``);
- ``trackio``: a run in the local trackio project ``genimg`` (SQLite under
  ``$GENIMG_DATA_DIR/trackio`` unless ``TRACKIO_DIR`` says otherwise; nothing leaves the
  machine; ``trackio show --project genimg``).

``GENIMG_TRACKERS`` picks them (default ``files,tensorboard,trackio``). Each tracker registers
itself by name with :func:`register_tracker`; registering a name twice is an error. Every run is
also recorded in the index of training runs (:mod:`genimg.training.runs`), whatever its folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from genimg.errors import GenimgError

log = logging.getLogger("genimg.training")
DEFAULT_TRACKERS = ("files", "tensorboard", "trackio")
TRACKIO_PROJECT = "genimg"

TrackerFactory = Callable[[Path, str, dict[str, Any]], "Tracker"]
_TRACKERS: dict[str, TrackerFactory] = {}


def register_tracker(name: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """A decorator registering a tracker factory ``(run_dir, run_name, config) -> Tracker`` under ``name``.

    Raises ValueError when ``name`` is taken.
    """
    def decorate(factory: TrackerFactory) -> TrackerFactory:
        if name in _TRACKERS:
            raise ValueError(f"tracker {name!r} is registered twice")
        _TRACKERS[name] = factory
        return factory

    return decorate


def tracker_names() -> list[str]:
    """The registered trackers, in registration order."""
    return list(_TRACKERS)


class Tracker:
    """Where a run's records go. Every method may be left as is (a tracker ignores what it cannot show)."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Numbers at ``step`` by name ("loss/d", "eval/single_colour_bg", ...)."""

    def image(self, step: int, tag: str, image: Any) -> None:
        """A PIL image (a sample grid) at ``step``."""

    def alert(self, step: int, title: str, text: str) -> None:
        """Something a person should look at now (e.g. mode collapse)."""

    def close(self) -> None:
        """Flush and release."""


def flatten_numbers(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every int/float in a nested dict as ``{"a/b": value}`` (bools and None skipped)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_numbers(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


@register_tracker("files")
class FilesTracker(Tracker):
    """JSON lines and PNGs in the run folder (read by the Training tab and ``runs``)."""

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        self.run_dir = run_dir
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, record: dict[str, Any]) -> None:
        with (self.run_dir / name).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._append("scalars.jsonl", {"step": step, "time": round(time.time(), 3), **values})

    def image(self, step: int, tag: str, image: Any) -> None:
        image.save(self.run_dir / "samples" / f"{tag}-step-{step:07d}.png")

    def alert(self, step: int, title: str, text: str) -> None:
        self._append("alerts.jsonl", {"step": step, "time": round(time.time(), 3), "title": title, "text": text})


@register_tracker("tensorboard")
class TensorBoardTracker(Tracker):
    """TensorBoard event files in ``<run>/tensorboard``."""

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1, default=str) + "\n```", 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def image(self, step: int, tag: str, image: Any) -> None:
        import numpy as np

        self.writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def alert(self, step: int, title: str, text: str) -> None:
        self.writer.add_text("alerts", f"**{title}**: {text}", step)

    def close(self) -> None:
        self.writer.close()


@register_tracker("trackio")
class TrackioTracker(Tracker):
    """A run in the local trackio project ``genimg`` (SQLite; no network)."""

    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any]):
        # trackio reads its folder once, at its first import in the process: later runs in this process
        # share that folder whatever GENIMG_DATA_DIR says by then.
        os.environ.setdefault("TRACKIO_DIR", str(data_dir() / "trackio"))
        import trackio

        self.trackio = trackio
        with contextlib.redirect_stdout(sys.stderr):  # trackio prints its banner on stdout (train --json owns it)
            self.run = trackio.init(project=TRACKIO_PROJECT, name=run_name,
                                    config=json.loads(json.dumps(config, default=str)), resume="allow", embed=False,
                                    auto_log_cpu=False, auto_log_gpu=False)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def image(self, step: int, tag: str, image: Any) -> None:
        self.run.log({tag: self.trackio.Image(image)}, step=step)

    def alert(self, step: int, title: str, text: str) -> None:
        self.run.alert(title, text, level=self.trackio.AlertLevel.WARN)

    def close(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.run.finish()
        # Finished here: without this, trackio's atexit hook finishes it again and prints on stdout after
        # train --json's one JSON object.
        self.trackio.context_vars.current_run.set(None)


def data_dir() -> Path:
    """genimg's data folder (``GENIMG_DATA_DIR``, default ``./data``): trackio's database and the run index."""
    from genimg.config import settings

    return settings().data_dir


class RunLog:
    """One run's trackers behind one interface (see module docstring). A tracker that fails is
    dropped with a log line: watching must never stop a training run."""

    def __init__(self, trackers: dict[str, Tracker], say: Callable[[str], Any] = print):
        self.trackers = trackers
        self.say = say

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # a full disk or a broken tracker: keep training, say so once
                self.say(f"tracker {name} failed ({type(exc).__name__}: {exc}); it is off for the rest of the run")
                self.trackers.pop(name, None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Numbers at ``step`` to every tracker."""
        if values:
            self._each("scalars", step, values)

    def image(self, step: int, tag: str, image: Any) -> None:
        """A sample grid at ``step`` to every tracker."""
        if image is not None:
            self._each("image", step, tag, image)

    def alert(self, step: int, title: str, text: str) -> None:
        """An alarm: in the training log and in every tracker."""
        self.say(f"ALARM at step {step}: {title}: {text}")
        self._each("alert", step, title, text)

    def close(self) -> None:
        """Flush and release every tracker."""
        self._each("close")


def open_run(run_dir: Path, run_name: str, config: dict[str, Any], names: list[str] | None = None,
             say: Callable[[str], Any] = print) -> RunLog:
    """The RunLog of a run: ``names`` (default ``GENIMG_TRACKERS``, else files, tensorboard, trackio).

    Raises GenimgError for an unknown tracker name. A tracker whose library is missing is left
    out with a log line saying how to install it (``files`` always works).
    """
    if names is None:
        raw = os.environ.get("GENIMG_TRACKERS", "").strip()
        names = [n.strip() for n in raw.split(",") if n.strip()] if raw else list(DEFAULT_TRACKERS)
    unknown = [n for n in names if n not in _TRACKERS]
    if unknown:
        raise GenimgError(f"unknown tracker {', '.join(unknown)}: use {', '.join(_TRACKERS)} (GENIMG_TRACKERS)")
    trackers: dict[str, Tracker] = {}
    for name in dict.fromkeys(["files", *names]):
        try:
            trackers[name] = _TRACKERS[name](run_dir, run_name, config)
        except ImportError as exc:
            say(f"tracker {name} is off: {exc} (pip install -r requirements.txt)")
    return RunLog(trackers, say)

"""The one training loop every trainer runs in.

A trainer (:class:`Trainer`) says what is particular to its model: how to set up data and
networks, one optimisation step, what a checkpoint holds, how to evaluate, how to export.
:func:`fit` does everything else, once for all of them:

* resume from the latest checkpoint of the run folder (or start over: ``resume=False``);
* thread tuning (:class:`~genimg.training.threads.ThreadTuner`) around the steps;
* the cadence (:class:`Cadence`): a checkpoint every few minutes, an evaluation every N
  steps and/or minutes (each evaluation also checkpoints, and appends a JSON line to
  ``eval.jsonl``), optionally a baseline evaluation before the first step;
* logging: losses every ``log_every`` steps, each evaluation, the resume and the end -- to the
  log and, through :mod:`genimg.training.tracking`, to TensorBoard, trackio and the run folder's
  own files (scalars, evaluations, sample grids from :meth:`Trainer.samples`, alarms a trainer's
  evaluation raises); the run is recorded in the index of runs (:mod:`genimg.training.runs`);
* the best checkpoint by evaluation (:attr:`Trainer.best_metric`) kept in ``<run>/best``;
* the final checkpoint, then the export hook (``export_to``; ``export_best`` exports the best).

It returns a :class:`RunResult`, whose :meth:`~RunResult.summary` is what every trainer's
``main(argv)`` returns (``python -m genimg train <model> --json`` prints it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from genimg.training.checkpoints import (append_eval, latest_checkpoint, read_state, remove_checkpoints,
                                         save_checkpoint)
from genimg.training.runs import record_run, this_host
from genimg.training.threads import ThreadTuner
from genimg.training.tracking import RunLog, flatten_numbers, open_run

Log = Callable[[str], Any]


@dataclass(frozen=True)
class Cadence:
    """When the loop stops, evaluates, checkpoints and logs.

    ``steps``: the total step count (a resumed run continues up to it). ``eval_every``:
    evaluate when this many steps passed since the last evaluation (0: not by steps).
    ``eval_seconds``: ... or this much time (None: not by time; 0: every step). Either one
    set also evaluates at the last step. ``ckpt_seconds``: checkpoint when this much time
    passed since the last checkpoint (None: only at evaluations and the end).
    ``budget_seconds``: stop after this much time in the loop even before ``steps``.
    ``keep``: how many checkpoints stay on disk. ``track_every``: how often the trackers get the losses.
    """

    steps: int
    eval_every: int = 0
    eval_seconds: float | None = None
    ckpt_seconds: float | None = 300.0
    log_every: int = 50
    track_every: int = 10   # losses and speed to the trackers every this many steps (and at the last)
    budget_seconds: float | None = None
    keep: int = 2

    @property
    def evaluates(self) -> bool:
        """Whether this cadence evaluates at all."""
        return self.eval_every > 0 or self.eval_seconds is not None


class Trainer:
    """One model's training as the loop sees it; subclasses override the methods below.

    Subclasses call ``super().__init__(cadence, threads=..., log=...)`` after checking their
    options (cheaply: :func:`fit` has not touched the run folder yet), and set ``name``.
    ``checkpointed = False`` (a model trained in minutes) means no checkpoints and no
    resume: :meth:`export` receives no checkpoint and writes the trained model from memory.
    ``evaluate_at_start``: evaluate once before the first step of a fresh run (a baseline).
    """

    name: str = ""
    checkpointed: bool = True
    evaluate_at_start: bool = False
    # The evaluation figure that picks the best checkpoint, and whether higher ("max") or lower is better.
    best_metric: tuple[str, str] | None = None

    def __init__(self, cadence: Cadence, *, threads: int | str | None = None, log: Log = print):
        self.cadence = cadence
        self.threads = threads  # a number, "auto" (measured), or None (leave torch's setting)
        self.log = log

    def setup(self, out_dir: Path, resume_from: Path | None) -> None:
        """Write ``train_config.json``, prepare the data, build networks and optimizers (train mode).

        ``resume_from`` is the checkpoint the run will resume from (loaded afterwards with
        :meth:`load_checkpoint`), or None for a fresh start. Raises GenimgError when an input
        (data, teacher, ...) is missing.
        """
        raise NotImplementedError

    def step(self, step: int) -> dict[str, float]:
        """One optimisation step; ``step`` counts the steps done before it. Returns its losses by name."""
        raise NotImplementedError

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        """What a checkpoint holds: file name (``<name>.safetensors``) -> tensors."""
        raise NotImplementedError

    def load_checkpoint(self, checkpoint: Path) -> None:
        """Restore the networks and optimizers from ``checkpoint`` (what :meth:`checkpoint_tensors` saved)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """JSON-able entries for a checkpoint's ``state.json`` beside ``step`` and ``train_seconds``."""
        return {}

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the current weights (JSON-able), leaving the networks in training mode."""
        raise NotImplementedError

    def export(self, result: RunResult, assets: Path) -> dict[str, Any]:
        """Write the shipped model of a finished run to ``assets``; returns entries for the summary."""
        raise NotImplementedError

    def samples(self) -> Any:
        """A sample grid (PIL image) of the current weights for the trackers, or None (the default)."""
        return None

    def scalars(self) -> dict[str, float]:
        """Extra numbers to track beside the losses (learning rate, ...); none by default."""
        return {}


@dataclass
class RunResult:
    """What :func:`fit` did.

    ``checkpoint``: the final checkpoint (None for a trainer without checkpoints);
    ``steps``: the step count reached; ``train_seconds``: time spent in steps, over every
    session of the run; ``loop_seconds``: this session's time in the loop; ``history``:
    this session's losses per step; ``exported``: what the export hook returned.
    """

    checkpoint: Path | None
    steps: int
    train_seconds: float
    loop_seconds: float
    history: dict[str, list[float]]
    exported: dict[str, Any] = field(default_factory=dict)
    best: Path | None = None   # the best checkpoint by evaluation (a copy in <run>/best), if any

    def mean(self, name: str, last: int = 100) -> float | None:
        """The mean of loss ``name`` over the last ``last`` steps of this session, or None before any step."""
        values = self.history.get(name)
        return float(np.mean(values[-last:])) if values else None

    def means(self, last: int = 100) -> dict[str, float]:
        """Every loss's mean over the last ``last`` steps, rounded to 4 decimals."""
        return {k: round(float(np.mean(v[-last:])), 4) for k, v in self.history.items() if v}

    def summary(self) -> dict[str, Any]:
        """The JSON-able summary a trainer's ``main`` returns: checkpoint, steps, train seconds + export's entries."""
        out: dict[str, Any] = {"checkpoint": str(self.checkpoint)} if self.checkpoint is not None else {}
        out.update(steps=self.steps, train_seconds=round(self.train_seconds, 1))
        if self.best is not None:
            out["best_checkpoint"] = str(self.best)
        return {**out, **self.exported}


def _f3(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def describe_eval(rec: dict[str, Any]) -> str:
    """One log line for an evaluation record (the scene-grammar faithfulness figures when present)."""
    if "single_colour_bg" not in rec:
        return f"eval step {rec['step']}: {json.dumps({k: v for k, v in rec.items() if k != 'step'}, default=str)}"
    checks = {k: (None if v is None else round(v, 3)) for k, v in (rec.get("checks") or {}).items()}
    return (f"eval step {rec['step']}: single colour+bg {_f3(rec['single_colour_bg'])} "
            f"+shape {_f3(rec['single_colour_bg_shape'])} relation {_f3(rec['relation'])} all {_f3(rec['all'])} "
            f"checks {json.dumps(checks)} ({rec['eval_seconds']:.0f}s)")


def run_name(model: str, out_dir: Path) -> str:
    """A run's name in the trackers: the model, the folder and a hash of its full path (unique per folder)."""
    digest = hashlib.sha1(str(out_dir.resolve()).encode()).hexdigest()[:6]
    return f"{model}-{out_dir.resolve().name}-{digest}"


def keep_best(out_dir: Path, checkpoint: Path, step: int, metric: str, value: float) -> Path:
    """Copy ``checkpoint`` to ``<run>/best`` (replacing the previous best) with a ``best.json``; returns it."""
    best, tmp = out_dir / "best", out_dir / "best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    (tmp / "best.json").write_text(json.dumps({"step": step, "metric": metric, "value": value,
                                               "copied_from": checkpoint.name}))
    shutil.rmtree(best, ignore_errors=True)
    tmp.rename(best)
    return best


def fit(trainer: Trainer, out_dir: Path | str, *, resume: bool = True, export_to: Path | str | None = None,
        export_best: bool = False) -> RunResult:
    """Run ``trainer`` in the run folder ``out_dir`` up to ``trainer.cadence.steps``; returns the :class:`RunResult`.

    ``resume``: continue from the latest checkpoint (else checkpoints there are removed once
    the trainer is set up). ``export_to``: after the final checkpoint, call the trainer's
    export hook with this folder (``export_best``: with the best checkpoint by evaluation
    instead of the last, when there is one). Raises GenimgError from the trainer (missing
    data or teacher, bad options).
    """
    cadence, log = trainer.cadence, trainer.log
    tuner = ThreadTuner(trainer.threads, log=log) if trainer.threads is not None else None
    if tuner is not None:
        tuner.probe()
    wall0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_from = latest_checkpoint(out_dir) if resume and trainer.checkpointed else None
    trainer.setup(out_dir, resume_from)
    if not resume and trainer.checkpointed:
        remove_checkpoints(out_dir)
    step, train_seconds = 0, 0.0
    if resume_from is not None:
        trainer.load_checkpoint(resume_from)
        st = read_state(resume_from)
        step, train_seconds = int(st["step"]), float(st.get("train_seconds", 0.0))
        log(f"resumed from {resume_from} at step {step}")
    history: dict[str, list[float]] = {}
    result = RunResult(None, step, train_seconds, 0.0, history)
    config_file = out_dir / "train_config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    name = run_name(trainer.name or "run", out_dir)
    track: RunLog = open_run(out_dir, name, config, say=log)
    record_run(out_dir, model=trainer.name, name=name, status="running", pid=os.getpid(), host=this_host(),
               steps_planned=cadence.steps, headline=trainer.best_metric[0] if trainer.best_metric else None)
    best_file = out_dir / "best" / "best.json"
    best_value = json.loads(best_file.read_text())["value"] if resume and best_file.exists() else None
    if best_value is not None:
        result.best = out_dir / "best"

    def checkpoint() -> Path:
        return save_checkpoint(out_dir, step, trainer.checkpoint_tensors(),
                               {"train_seconds": train_seconds, **trainer.state()}, keep=cadence.keep)

    def evaluate(checkpoint_path: Path | None = None) -> None:
        nonlocal best_value
        if tuner is not None:
            tuner.probe()  # evaluation is another workload than a training step
        t0 = time.perf_counter()
        metrics = trainer.evaluate()
        alerts = metrics.pop("alerts", [])
        result.steps = step
        losses = result.means()
        rec = {"step": step, "train_seconds": round(train_seconds, 1), "wall": time.strftime("%Y-%m-%d %H:%M:%S"),
               **({"loss": result.mean("loss")} if "loss" in history else {}),
               **({"losses": losses} if losses else {}),
               "eval_seconds": round(time.perf_counter() - t0, 1), **metrics}
        append_eval(out_dir, rec)
        log(describe_eval(rec))
        track.scalars(step, flatten_numbers({k: v for k, v in metrics.items()}, "eval/"))
        track.image(step, "samples", trainer.samples())
        for alert in alerts:
            track.alert(step, alert["title"], alert["text"])
        record_run(out_dir, step=step, status="running")
        if trainer.best_metric is not None and checkpoint_path is not None:
            key, mode = trainer.best_metric
            value = metrics.get(key)
            better = value is not None and (best_value is None or (value > best_value if mode == "max"
                                                                   else value < best_value))
            if better:
                best_value = value
                result.best = keep_best(out_dir, checkpoint_path, step, key, value)
                log(f"best checkpoint so far: step {step}, {key} {value:.4g} (kept in {result.best})")

    def _loop() -> None:
        nonlocal step, train_seconds
        if (trainer.evaluate_at_start and step == 0 and cadence.evaluates
                and not (out_dir / "eval.jsonl").exists()):
            evaluate()
        started = last_ckpt = last_eval = t_log = t_track = time.perf_counter()
        last_eval_step = s_log = s_track = step
        while step < cadence.steps and (cadence.budget_seconds is None
                                        or time.perf_counter() - started < cadence.budget_seconds):
            t_step = time.perf_counter()
            losses = trainer.step(step)
            step += 1
            dt = time.perf_counter() - t_step
            train_seconds += dt
            for k, v in losses.items():
                history.setdefault(k, []).append(float(v))
            if tuner is not None:
                tuner.after_step(step, dt)
            if step % cadence.log_every == 0:
                now = time.perf_counter()
                shown = " ".join(f"{k} {v:.5g}" for k, v in result.means(cadence.log_every).items())
                log(f"step {step} {shown} ({(now - t_log) / max(1, step - s_log):.2f}s/step, "
                    f"{torch.get_num_threads()} threads, {train_seconds / 60:.1f} train-min)")
                t_log, s_log = now, step
            if step % cadence.track_every == 0 or step >= cadence.steps:
                now = time.perf_counter()
                seconds_per_step = (now - t_track) / max(1, step - s_track)
                batch = getattr(trainer, "batch_size", None)
                track.scalars(step, {**{f"loss/{k}": v for k, v in result.means(step - s_track).items()},
                                     "time/step_seconds": seconds_per_step,
                                     **({"time/images_per_s": batch / seconds_per_step} if batch else {}),
                                     **trainer.scalars()})
                t_track, s_track = now, step
            now = time.perf_counter()
            due_eval = cadence.evaluates and (
                step >= cadence.steps
                or (cadence.eval_every > 0 and step - last_eval_step >= cadence.eval_every)
                or (cadence.eval_seconds is not None and now - last_eval >= cadence.eval_seconds))
            if due_eval:
                saved = None
                if trainer.checkpointed:
                    saved = checkpoint()
                    last_ckpt = time.perf_counter()
                evaluate(saved)
                last_eval, last_eval_step = time.perf_counter(), step
            elif (trainer.checkpointed and cadence.ckpt_seconds is not None
                  and now - last_ckpt >= cadence.ckpt_seconds):
                checkpoint()
                last_ckpt = time.perf_counter()
        result.loop_seconds = time.perf_counter() - started
        result.steps, result.train_seconds = step, train_seconds
        if trainer.checkpointed:
            latest = latest_checkpoint(out_dir)
            # The last evaluation may have checkpointed this very step already.
            result.checkpoint = latest if latest is not None and int(read_state(latest)["step"]) == step else checkpoint()
        log(f"done: {step} steps, {train_seconds / 60:.1f} train-min, wall {(time.perf_counter() - wall0) / 60:.1f} min")

    try:
        _loop()
    except BaseException:
        record_run(out_dir, status="stopped", step=result.steps)
        track.close()
        raise
    track.close()
    record_run(out_dir, status="finished", step=result.steps,
               best=str(result.best) if result.best is not None else None)
    if export_to is not None:
        if export_best and result.best is not None:
            log(f"exporting the best checkpoint ({result.best}) instead of the last")
            result.checkpoint = result.best
        result.exported = trainer.export(result, Path(export_to))
    return result

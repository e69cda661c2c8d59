"""What an evaluation produces: one row per (model, prompt, seed) cell, per-model summaries, the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genimg.outputs import json_safe


@dataclass
class EvalRow:
    """One cell (model, prompt, seed): its image, metric values and latency, or its error."""

    model: str
    prompt_index: int
    prompt: str
    seed: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)        # why a metric is None
    checks: dict[str, bool | None] = field(default_factory=dict)  # the grammar evaluator's checks
    answers: dict[str, list[int]] = field(default_factory=dict)   # VQA: {question type: [correct, answered]}
    latency_s: float | None = None
    cached: bool = False
    key: str = ""
    image: Any = None                                           # PIL image (None on error)
    image_path: str | None = None                               # the cached PNG
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row without its image, JSON-safe."""
        return {"model": self.model, "prompt_index": self.prompt_index, "prompt": self.prompt, "seed": self.seed,
                "latency_s": self.latency_s, "cached": self.cached, "key": self.key, "error": self.error,
                "metrics": json_safe(self.metrics), "notes": dict(self.notes), "checks": dict(self.checks),
                "answers": dict(self.answers)}


@dataclass
class EvaluateResult:
    """Every cell's row plus the per-model summary, diversity rows, model records and errors."""

    rows: list[EvalRow]
    summary: dict[str, dict[str, Any]]              # model -> {"metrics": {key: stats}, "latency": ..., ...}
    diversity: list[dict[str, Any]]                  # per (model, prompt) diversity across seeds
    models: dict[str, dict[str, Any]]                # model -> id, source, backend, fingerprint, params, ...
    errors: dict[str, str]                           # model -> why it produced nothing
    metrics: list[str]
    request: dict[str, Any]
    timings: dict[str, float]
    generated: int = 0
    cache_hits: int = 0
    cache_dir: str = ""

    def images(self) -> list[tuple[EvalRow, Any]]:
        """(row, PIL image) for every cell that has an image, in row order."""
        return [(row, row.image) for row in self.rows if row.image is not None]

    def summary_json(self) -> dict[str, Any]:
        """Everything but the images, JSON-safe (used by the CLI, the API and results.json)."""
        return {"metrics": self.metrics, "summary": json_safe(self.summary), "errors": self.errors,
                "diversity": json_safe(self.diversity), "models": json_safe(self.models),
                "cells": {"total": len(self.rows), "generated": self.generated, "cached": self.cache_hits,
                          "errors": sum(1 for r in self.rows if r.error)},
                "request": json_safe(self.request), "timings": self.timings, "cache_dir": self.cache_dir}

"""What an evaluation may be asked: its metric vocabulary, prompts, seeds and size limits.

Every parser here takes what a person typed (UI, CLI or API) and returns clean values, or
raises GenimgError with one sentence naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genimg import params as P
from genimg.config import settings
from genimg.errors import GenimgError
from genimg.metrics.registry import METRICS, NO_REFERENCE, SET, TEXT_IMAGE, canonical

# Per-image metrics (text-image first) and per-model set metrics, in the order tables show them.
IMAGE_METRICS = tuple(m.id for kind in (TEXT_IMAGE, NO_REFERENCE) for m in METRICS.where(lambda m: m.task == kind))
SET_METRICS = tuple(m.id for m in METRICS.where(lambda m: m.task == SET))
ALL_METRICS = (*IMAGE_METRICS, *SET_METRICS)
DEFAULT_METRICS = ("faithfulness", "vqa", "clip", "sharpness", "colourfulness", "entropy", "brisque", "fd", "kid", "diversity")
LABELS = {**{k: METRICS[k].label for k in ALL_METRICS}, "latency": "Latency (s/image)"}
BETTER = {**{k: METRICS[k].better for k in ALL_METRICS}, "latency": "lower"}
MEANING = {k: METRICS[k].meaning for k in ALL_METRICS}

MAX_PROMPT_FILE_BYTES = 1 << 20


def limits() -> dict[str, int]:
    """How much one evaluation may ask for (hosted mode: a demo, not a benchmark farm)."""
    env = settings()
    if env.hosted:
        return {"models": env.limits.max_models_compared, "prompts": 16, "seeds": env.limits.max_batch, "cells": 64}
    return {"models": 8, "prompts": 256, "seeds": 32, "cells": 2048}


def resolve_metrics(names: list[str] | None) -> list[str]:
    """Canonical metric keys (DEFAULT_METRICS when None/empty). Raises GenimgError for unknown
    names or a full-reference metric (an evaluation has no reference images)."""
    if not names:
        return list(DEFAULT_METRICS)
    keys: list[str] = []
    for name in names:
        for part in str(name).split(","):
            if not part.strip():
                continue
            key = canonical(part)
            if key in METRICS and METRICS[key].needs_reference:
                raise GenimgError(f"{METRICS[key].label} needs a reference image, which an evaluation does not have: "
                                  f"pick from {', '.join(ALL_METRICS)}")
            if key not in ALL_METRICS:
                raise GenimgError(f"unknown metric {part.strip()!r}: choose from {', '.join(ALL_METRICS)}")
            if key not in keys:
                keys.append(key)
    if not keys:
        raise GenimgError(f"no metric chosen: pick from {', '.join(ALL_METRICS)}")
    return keys


def check_prompts(prompts: list[str] | None) -> list[str]:
    """Validate the prompt list: 1..limit prompts, each a valid prompt. Returns them stripped."""
    cleaned = [p for p in (str(x).strip() for x in (prompts or []) if x is not None) if p]
    if not cleaned:
        raise GenimgError("no prompts given: type one or more prompts (one per line), give a prompts file, "
                          "or use the grammar evaluation set")
    limit = limits()["prompts"]
    if len(cleaned) > limit:
        raise GenimgError(f"{len(cleaned)} prompts is too many for one evaluation here; the limit is {limit}")
    return [P.check_prompt(p, settings().limits) for p in cleaned]


def read_prompts_file(path: str | Path) -> list[str]:
    """Prompts from a UTF-8 text file, one per line (blank lines skipped).

    Raises GenimgError for a missing, binary, too large or empty file, or too many prompts.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise GenimgError(f"prompts file {path.name!r} not found") from None
    if size > MAX_PROMPT_FILE_BYTES:
        raise GenimgError(f"prompts file {path.name} is {size} bytes; the limit is {MAX_PROMPT_FILE_BYTES} "
                          "(one prompt per line)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GenimgError(f"prompts file {path.name} is not UTF-8 text: give one prompt per line") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise GenimgError(f"prompts file {path.name} holds no prompts: write one prompt per line")
    return check_prompts(prompts)


def grammar_prompts(n: int | None = None) -> list[str]:
    """Captions of the grammar's fixed evaluation set (64); ``n`` < 64 takes an evenly spaced,
    deterministic subset, so every scene kind (single, position, count, relation) stays in."""
    from genimg.scenes.grammar import eval_prompt_set

    scenes = eval_prompt_set()
    if n is None or n >= len(scenes):
        return [s.caption for s in scenes]
    n = P.check_int(n, "grammar set size", 1, len(scenes))
    picks = np.unique(np.round(np.linspace(0, len(scenes) - 1, n)).astype(int))
    return [scenes[i].caption for i in picks]


def parse_seeds(text: Any) -> list[int]:
    """Seeds from "0,1,2", "0-3" (inclusive range), a list, or one number. Raises GenimgError."""
    if isinstance(text, (list, tuple)):
        parts: list[Any] = list(text)
    else:
        parts = [p for p in str(text if text is not None else "").replace(" ", ",").split(",") if p.strip()]
    seeds: list[int] = []
    for part in parts:
        if isinstance(part, str) and "-" in part.strip()[1:]:
            lo, _, hi = part.strip().partition("-")
            a, b = P.check_int(lo, "seed", 0, P.MAX_SEED), P.check_int(hi, "seed", 0, P.MAX_SEED)
            if b < a or b - a >= 10_000:
                raise GenimgError(f"seed range {part.strip()!r} must go upwards and span at most 10000 seeds")
            seeds.extend(range(a, b + 1))
        else:
            seeds.append(P.check_int(part, "seed", 0, P.MAX_SEED))
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise GenimgError("no seeds given: e.g. 0,1,2 (or 0-3)")
    limit = limits()["seeds"]
    if len(seeds) > limit:
        raise GenimgError(f"{len(seeds)} seeds is too many for one evaluation here; the limit is {limit}")
    return seeds

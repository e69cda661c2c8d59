"""Comparison runner: models × prompts × seeds → images, per-image metrics, per-model summaries.

The one path for the Evaluate tab, ``python -m genimg evaluate``, the API ``/evaluate`` and the
exported report (:mod:`genimg.report`).

- **Identical settings**: every model gets the same prompts, seeds, negative prompt and
  (unless "each model's own defaults" is asked) the same size, steps, guidance and scheduler;
  settings left empty take the *first* model's catalog defaults, for every model.
- **Fair timing** as in Compare: models run one after another; a model loaded by this run gets
  one warm-up call (1 step) first; each cell is one image (batch 1) from its own CPU generator
  seeded with its seed, so a cell is reproducible alone. Latency = the device-synchronised wall
  time of that call.
- **Cache**: each cell (model id + weights fingerprint + placement + every resolved parameter +
  prompt + seed) is stored as PNG + JSON under the cache folder; a re-run with one more model
  only generates the new model's cells. A cached cell keeps the latency measured when it was
  generated (its JSON says when and where).
- **Metrics** per image: the registry's no-reference metrics, "faithfulness" (the scene grammar's
  evaluator: 1 = every asked check passes; a prompt outside the grammar gets None and a note),
  "clip" (CLIPScore where CLIP weights are present). Per model: set-level FD/KID-EffNetLite0
  against grammar renders of the same prompts (when the prompts are grammar prompts) and
  diversity across seeds per prompt.
- **Uncertainty**: per-model means carry a 95% interval — Student's t-interval for continuous
  metrics and latency, the Wilson score interval for the faithfulness pass rate (a proportion;
  the t-interval is degenerate at 0 % and 100 %). Images are treated as independent samples,
  although images of one prompt are correlated: with few prompts the intervals are optimistic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from genimg import __version__
from genimg.config import settings
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.metrics.registry import METRICS
from genimg.models.catalog import ModelSpec
from genimg.models.pool import ModelPool, get_pool
from genimg.tasks import params as P
from genimg.tasks.generate import GenerateRequest, model_info, resolve_request, run_pipeline

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the cell record or the generation path changes meaning
CONFIDENCE = 0.95

# Per-image metrics beyond the registry's no-reference ones, and the per-model set metrics.
FAITHFULNESS = "faithfulness"
CLIP = "clip"
FD = "fd"
KID = "kid"
DIVERSITY = "diversity"
NO_REFERENCE = tuple(k for k, m in METRICS.items() if not m.needs_reference)
IMAGE_METRICS = (FAITHFULNESS, CLIP, *NO_REFERENCE)
SET_METRICS = (FD, KID, DIVERSITY)
ALL_METRICS = (*IMAGE_METRICS, *SET_METRICS)
DEFAULT_METRICS = (FAITHFULNESS, CLIP, "sharpness", "colourfulness", "entropy", "brisque", FD, KID, DIVERSITY)

LABELS = {FAITHFULNESS: "Faithfulness (grammar)", CLIP: "CLIP score", FD: "FD-EffNetLite0", KID: "KID-EffNetLite0",
          DIVERSITY: "Diversity (EffNetLite0)", "latency": "Latency (s/image)",
          **{k: METRICS[k].label for k in NO_REFERENCE}}
BETTER = {FAITHFULNESS: "higher", CLIP: "higher", FD: "lower", KID: "lower", DIVERSITY: "higher", "latency": "lower",
          **{k: METRICS[k].better for k in NO_REFERENCE}}
MEANING = {
    FAITHFULNESS: "share of images passing every check the prompt asks (scene grammar's evaluator; 1 = all)",
    CLIP: "CLIPScore 100·max(cos(image, text), 0); only comparable within one CLIP model",
    FD: "Fréchet distance to grammar renders of the same prompts, EfficientNet-Lite0 features (not Inception FID)",
    KID: "kernel inception-style distance to grammar renders, EfficientNet-Lite0 features (not Inception KID)",
    DIVERSITY: "mean pairwise cosine distance of EffNetLite0 features across seeds of one prompt (0 = identical)",
    **{k: METRICS[k].meaning for k in NO_REFERENCE},
}
ALIASES = {"faithful": FAITHFULNESS, "grammar": FAITHFULNESS, "clipscore": CLIP, "clip_score": CLIP,
           "fid": FD, "fd-effnet": FD, "fd_effnet": FD, "kid-effnet": KID, "kid_effnet": KID,
           "colorfulness": "colourfulness", "laplacian": "sharpness"}


def _limits() -> dict[str, int]:
    """How much one evaluation may ask for (hosted mode: a demo, not a benchmark farm)."""
    env = settings()
    if env.hosted:
        return {"models": env.limits.max_models_compared, "prompts": 16, "seeds": env.limits.max_batch, "cells": 64}
    return {"models": 8, "prompts": 256, "seeds": 32, "cells": 2048}


MAX_PROMPT_FILE_BYTES = 1 << 20
ProgressFn = Callable[[int, int, str], None]


# ---------------------------------------------------------------------------- request / result


@dataclass
class EvaluateRequest:
    """What to evaluate. Settings left None take the first model's defaults (for every model),
    unless ``own_defaults`` gives each model its own catalog defaults."""

    models: list[str]
    prompts: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    own_defaults: bool = False
    metrics: list[str] | None = None         # None: DEFAULT_METRICS
    cache_dir: str | Path | None = None     # None: default_cache_dir()
    use_cache: bool = True
    warmup: bool = True


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
    latency_s: float | None = None
    cached: bool = False
    key: str = ""
    image: Any = None                                           # PIL image (None on error)
    image_path: str | None = None                               # the cached PNG
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "prompt_index": self.prompt_index, "prompt": self.prompt, "seed": self.seed,
                "latency_s": self.latency_s, "cached": self.cached, "key": self.key, "error": self.error,
                "metrics": {k: _json_number(v) for k, v in self.metrics.items()}, "notes": dict(self.notes),
                "checks": dict(self.checks)}


@dataclass
class EvaluateResult:
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
        return {"metrics": self.metrics, "summary": _json_safe(self.summary), "errors": self.errors,
                "diversity": _json_safe(self.diversity), "models": _json_safe(self.models),
                "cells": {"total": len(self.rows), "generated": self.generated, "cached": self.cache_hits,
                          "errors": sum(1 for r in self.rows if r.error)},
                "request": _json_safe(self.request), "timings": self.timings, "cache_dir": self.cache_dir}


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return _json_number(obj)


# ---------------------------------------------------------------------------- inputs


def resolve_metrics(names: list[str] | None) -> list[str]:
    """Canonical metric keys (DEFAULT_METRICS when None/empty). Raises GenimgError for unknown
    names or a full-reference metric (the runner has no reference images)."""
    if not names:
        return list(DEFAULT_METRICS)
    keys: list[str] = []
    for name in names:
        for part in str(name).split(","):
            raw = part.strip().lower()
            if not raw:
                continue
            key = ALIASES.get(raw, raw).replace("-", "_")
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
    limits = settings().limits
    cleaned = [p for p in (str(x).strip() for x in (prompts or []) if x is not None) if p]
    if not cleaned:
        raise GenimgError("no prompts given: type one or more prompts (one per line), give a prompts file, "
                          "or use the grammar evaluation set")
    limit = _limits()["prompts"]
    if len(cleaned) > limit:
        raise GenimgError(f"{len(cleaned)} prompts is too many for one evaluation here; the limit is {limit}")
    return [P.check_prompt(p, limits) for p in cleaned]


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
    from genimg.tasks.generate import MAX_SEED

    if isinstance(text, (list, tuple)):
        parts: list[Any] = list(text)
    else:
        parts = [p for p in str(text if text is not None else "").replace(" ", ",").split(",") if p.strip()]
    seeds: list[int] = []
    for part in parts:
        if isinstance(part, str) and "-" in part.strip()[1:]:
            lo, _, hi = part.strip().partition("-")
            a, b = P.check_int(lo, "seed", 0, MAX_SEED), P.check_int(hi, "seed", 0, MAX_SEED)
            if b < a or b - a >= 10_000:
                raise GenimgError(f"seed range {part.strip()!r} must go upwards and span at most 10000 seeds")
            seeds.extend(range(a, b + 1))
        else:
            seeds.append(P.check_int(part, "seed", 0, MAX_SEED))
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise GenimgError("no seeds given: e.g. 0,1,2 (or 0-3)")
    limit = _limits()["seeds"]
    if len(seeds) > limit:
        raise GenimgError(f"{len(seeds)} seeds is too many for one evaluation here; the limit is {limit}")
    return seeds


def check_models(models: list[str] | str, pool: ModelPool) -> list[str]:
    """1..limit distinct catalog text-to-image ids (commas allowed). Raises GenimgError."""
    if isinstance(models, str):
        models = [models]
    ids = [m.strip() for item in (models or []) for m in str(item).split(",") if m.strip()]
    if not ids:
        raise GenimgError("no model chosen: pick one or more text-to-image models (python -m genimg models lists them)")
    limit = _limits()["models"]
    if len(ids) > limit:
        raise GenimgError(f"{len(ids)} models is too many for one evaluation here; the limit is {limit}")
    ids = list(dict.fromkeys(ids))
    out = []
    for model_id in ids:
        spec = pool.spec(model_id)
        if "text-to-image" not in spec.tasks:
            raise GenimgError(f"model {spec.id!r} does not do text-to-image (its tasks: {', '.join(spec.tasks)})")
        out.append(spec.id)
    return out


def default_cache_dir() -> Path:
    """``$GENIMG_CACHE_DIR/evaluate``, else ``$XDG_CACHE_HOME`` or ``~/.cache`` ``/genimg/evaluate``;
    in hosted mode a private temporary folder per process (visitors share no cache)."""
    if settings().hosted:
        global _HOSTED_CACHE
        if _HOSTED_CACHE is None:
            _HOSTED_CACHE = Path(tempfile.mkdtemp(prefix="genimg-evaluate-cache-"))
        return _HOSTED_CACHE
    override = os.environ.get("GENIMG_CACHE_DIR", "").strip()
    if override:
        return Path(override).expanduser() / "evaluate"
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "genimg" / "evaluate"


_HOSTED_CACHE: Path | None = None


# ---------------------------------------------------------------------------- weights fingerprint

_FINGERPRINTS: dict[tuple, dict[str, Any]] = {}
HASH_LIMIT_BYTES = 1 << 30  # hash weight files' contents up to 1 GiB; above that, sizes + mtimes


def weights_fingerprint(spec: ModelSpec) -> dict[str, Any]:
    """What identifies the weights of ``spec`` without loading them.

    Local folder: sha256 over every file's relative path and contents (``kind`` "sha256"), or,
    above HASH_LIMIT_BYTES, over paths, sizes and modification times ("stat"). Hub id: the
    cached snapshot's commit ("hub-revision"), else just the id ("hub-id"). Cached per process
    while the files' sizes and mtimes stay the same.
    """
    folder = spec.local_path()
    if folder is None:
        revision = None
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(spec.source, "model_index.json")
            if isinstance(found, str):
                revision = Path(found).parent.name  # .../snapshots/<commit>/model_index.json
        except Exception:  # no cache or an unreadable one: the id alone is what we know
            revision = None
        return {"kind": "hub-revision" if revision else "hub-id", "value": revision or spec.source}
    if not folder.exists():
        return {"kind": "missing", "value": str(folder)}
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    stats = tuple((str(p.relative_to(folder) if folder.is_dir() else p.name), p.stat().st_size,
                   p.stat().st_mtime_ns) for p in files)
    key = (str(folder), stats)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    digest = hashlib.sha256()
    total = sum(s[1] for s in stats)
    if total <= HASH_LIMIT_BYTES:
        for (name, _size, _mtime), path in zip(stats, files):
            digest.update(name.encode() + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        result = {"kind": "sha256", "value": digest.hexdigest(), "bytes": total, "files": len(files)}
    else:
        digest.update(json.dumps(stats).encode())
        result = {"kind": "stat", "value": digest.hexdigest(), "bytes": total, "files": len(files)}
    _FINGERPRINTS[key] = result
    return result


def _placement(spec: ModelSpec, pool: ModelPool) -> str:
    # The pool decides placement; without loading, ask the same policy it uses.
    try:
        return pool._placement_for(spec).describe()  # noqa: SLF001 - the pool's own policy, no load
    except GenimgError as exc:
        return f"unknown ({exc})"


def cell_key(model: dict[str, Any], params: dict[str, Any], seed: int) -> str:
    """The cache key of one cell: sha256 of the model identity, every parameter and the seed."""
    record = {"format": CACHE_FORMAT, "model": {k: model[k] for k in ("id", "backend", "source", "dtype", "options",
                                                                     "fingerprint", "placement")},
              "params": params, "seed": int(seed)}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------- per-image metrics


def _faithfulness(image: Any, prompt: str) -> tuple[float | None, str, dict[str, bool | None]]:
    from genimg.scenes.evaluator import score_image
    from genimg.scenes.prompts import parse_prompt

    try:
        parse_prompt(prompt)
    except GenimgError:
        return None, "prompt is outside the scene grammar (faithfulness applies to grammar prompts only)", {}
    try:
        checks = score_image(image, prompt)
    except GenimgError as exc:
        return None, str(exc), {}
    return (1.0 if checks["all"] else 0.0), "", checks


def image_metrics(image: Any, prompt: str, keys: list[str]) -> tuple[dict[str, float | None], dict[str, str],
                                                                       dict[str, bool | None]]:
    """Per-image metrics of one generated image: (values, notes for None values, grammar checks).

    ``keys``: any of IMAGE_METRICS except "clip" (batched in :func:`evaluate`); set metrics are
    ignored. A metric that does not apply (prompt outside the grammar, image too small, no
    weights) is None with a note, never an error.
    """
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    values: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    checks: dict[str, bool | None] = {}
    for key in keys:
        if key == FAITHFULNESS:
            values[key], note, checks = _faithfulness(rgb, prompt)
            if note:
                notes[key] = note
        elif key in NO_REFERENCE:
            info = METRICS[key]
            ok, reason = info.available()
            if not ok:
                values[key], notes[key] = None, f"unavailable: {reason}"
            elif min(rgb.shape[:2]) < info.min_side:
                values[key], notes[key] = None, (f"{info.label} needs images at least {info.min_side}x{info.min_side}, "
                                                 f"got {rgb.shape[1]}x{rgb.shape[0]}")
            else:
                try:
                    values[key] = float(info.fn(rgb))
                except GenimgError as exc:  # includes ModelUnavailableError
                    values[key], notes[key] = None, str(exc)
    return values, notes, checks


def _add_clip(rows: list[EvalRow], todo: list[EvalRow]) -> None:
    from genimg.metrics.clip_score import clip_available, clip_score

    ok, reason = clip_available()
    if not ok:
        for row in rows:
            row.metrics[CLIP], row.notes[CLIP] = None, f"unavailable: {reason}"
        return
    for start in range(0, len(todo), 32):
        batch = todo[start:start + 32]
        try:
            scores = clip_score([r.image for r in batch], [r.prompt for r in batch])
        except GenimgError as exc:
            for row in batch:
                row.metrics[CLIP], row.notes[CLIP] = None, str(exc)
            continue
        for row, value in zip(batch, scores):
            row.metrics[CLIP] = float(value)


# ---------------------------------------------------------------------------- statistics


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(mean, low, high): Student's t-interval for the mean; no interval below 2 values."""
    from scipy import stats

    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(a) == 0:
        return float("nan"), None, None
    mean = float(a.mean())
    if len(a) < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return mean, mean - half, mean + half


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(proportion, low, high): the Wilson score interval for a pass rate (Wilson 1927)."""
    from scipy import stats

    if n == 0:
        return float("nan"), None, None
    p = successes / n
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _stats(key: str, values: list[float | None]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if key == FAITHFULNESS:
        mean, low, high = wilson_interval(int(round(sum(finite))), len(finite))
        method = "wilson"
    else:
        mean, low, high = t_interval(finite)
        method = "t"
    return {"mean": None if math.isnan(mean) else mean, "ci_low": low, "ci_high": high, "n": len(finite),
            "missing": len(values) - len(finite), "ci_method": method, "confidence": CONFIDENCE,
            "label": LABELS.get(key, key), "better": BETTER.get(key, "")}


# ---------------------------------------------------------------------------- grammar references


def reference_scene(prompt: str, seed: int):
    """A grammar scene that the (grammar) prompt describes, sampled with the grammar's own
    layout rules from a generator seeded by (seed, crc32(prompt)): the "ideal model" output
    for FD/KID references. Raises GenimgError for a prompt outside the grammar."""
    from genimg.scenes import grammar
    from genimg.scenes.prompts import parse_prompt

    spec = parse_prompt(prompt)
    rng = np.random.default_rng([int(seed), zlib.crc32(prompt.encode("utf-8"))])
    a = spec.objects[0]
    # The grammar's sampler pins shape, colour, position, relation and count; sizes are drawn,
    # so resample until they match the prompt (at most 1 in 4 tries fails), then set the
    # second object's shape/colour and the background, which do not change the layout.
    # grammar._sample is the grammar's own sampler: reusing it keeps its placement rules.
    for _ in range(200):
        scene = grammar._sample(rng, spec.kind, shape=a.shape, colour=a.colour, position=spec.position,  # noqa: SLF001
                                relation=spec.relation, count=a.count if spec.kind == "count" else None)
        sizes_ok = a.size is None or scene.objects[0].size == a.size
        if spec.kind == "relation" and spec.objects[1].size is not None:
            sizes_ok = sizes_ok and scene.objects[1].size == spec.objects[1].size
        if sizes_ok:
            break
    objects = list(scene.objects)
    if spec.kind == "relation":
        b = spec.objects[1]
        objects[1] = replace(objects[1], shape=b.shape, colour=b.colour)
    used = {o.colour for o in objects}
    background = spec.background or scene.background
    if background in used:
        free = [c for c in grammar.COLOUR_NAMES if c not in used]
        background = free[int(rng.integers(0, len(free)))]
    return grammar.Scene(tuple(objects), background, spec.kind, prompt, spec.position, spec.relation)


def _is_grammar_prompt(prompt: str) -> bool:
    from genimg.scenes.prompts import parse_prompt

    try:
        parse_prompt(prompt)
    except GenimgError:
        return False
    return True


def _set_metrics(model_rows: list[EvalRow], keys: list[str], grammar_ok: dict[str, bool],
                 features: dict[str, np.ndarray]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """FD/KID against grammar renders and per-prompt diversity for one model's rows."""
    from genimg.scenes.grammar import render
    from genimg.metrics.diversity import diversity_from_features
    from genimg.metrics.set_level import fd_result, kid_result

    out: dict[str, Any] = {}
    diversity_rows: list[dict[str, Any]] = []
    ok_rows = [r for r in model_rows if r.image is not None]
    wanted = [k for k in (FD, KID) if k in keys]
    if wanted:
        grammar_rows = [r for r in ok_rows if grammar_ok[r.prompt]]
        if len(grammar_rows) < 2:
            note = ("needs grammar prompts (FD/KID compare with grammar renders of the same prompts): "
                    f"{len(grammar_rows)} grammar cell(s), at least 2 needed")
            for k in wanted:
                out[k] = {"value": None, "note": note, "label": LABELS[k], "better": BETTER[k]}
        else:
            from genimg.metrics.features import effnet_lite0

            extractor = effnet_lite0()
            refs = [render(reference_scene(r.prompt, r.seed), max(16, r.image.size[0])) for r in grammar_rows]
            ref_feats = extractor.pooled([np.asarray(i) for i in refs])
            gen_feats = np.stack([features[r.key] for r in grammar_rows])
            skipped = len(ok_rows) - len(grammar_rows)
            for k in wanted:
                fn = fd_result if k == FD else kid_result
                result = fn(gen_feats, ref_feats, name=LABELS[k], confidence=CONFIDENCE).as_dict()
                result.update(label=LABELS[k], better=BETTER[k], ci_method="bootstrap percentile")
                if skipped:
                    result["note"] = f"{skipped} cell(s) with prompts outside the grammar left out"
                out[k] = result
    if DIVERSITY in keys:
        by_prompt: dict[int, list[EvalRow]] = {}
        for r in ok_rows:
            by_prompt.setdefault(r.prompt_index, []).append(r)
        per_prompt = []
        for index, rows in sorted(by_prompt.items()):
            if len(rows) < 2:
                continue
            d = diversity_from_features(np.stack([features[r.key] for r in rows]))
            row = {"model": rows[0].model, "prompt_index": index, "prompt": rows[0].prompt, "n_seeds": d.n,
                   "mean_pairwise_distance": d.mean_pairwise_distance, "near_duplicate_rate": d.near_duplicate_rate}
            diversity_rows.append(row)
            per_prompt.append(row)
        if per_prompt:
            stats = _stats(DIVERSITY, [p["mean_pairwise_distance"] for p in per_prompt])
            dup = float(np.mean([p["near_duplicate_rate"] for p in per_prompt]))
            out[DIVERSITY] = {**stats, "near_duplicate_rate": dup, "per": "prompt"}
        else:
            out[DIVERSITY] = {"mean": None, "note": "needs at least 2 seeds per prompt", "label": LABELS[DIVERSITY],
                              "better": BETTER[DIVERSITY]}
    return out, diversity_rows


def pareto_front(points: dict[str, tuple[float, float]], higher_is_better: bool = True) -> list[str]:
    """Names of the points no other point dominates, for (latency: lower better, quality).

    A point is dominated when another is at least as good on both axes and better on one.
    """
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for name, (lat, q) in points.items():
        if not (math.isfinite(lat) and math.isfinite(q)):
            continue
        dominated = any(
            (l2 <= lat and sign * q2 >= sign * q) and (l2 < lat or sign * q2 > sign * q)
            for other, (l2, q2) in points.items() if other != name and math.isfinite(l2) and math.isfinite(q2))
        if not dominated:
            front.append(name)
    return front


# ---------------------------------------------------------------------------- the runner


def _resolve_all(request: EvaluateRequest, ids: list[str], pool: ModelPool) -> dict[str, dict[str, Any]]:
    """Resolved generation parameters per model (seed and prompt set per cell later)."""
    base = GenerateRequest(prompt="x", model=ids[0], negative_prompt=request.negative_prompt or "",
                           width=request.width, height=request.height, steps=request.steps,
                           guidance=request.guidance, scheduler=request.scheduler, seed=0, batch=1)
    if request.own_defaults:
        base = replace(base, width=None, height=None, steps=None, guidance=None, scheduler=None)
    else:
        # Identical settings: whatever is left empty comes from the first model's defaults.
        first = resolve_request(base, pool.spec(ids[0]))
        base = replace(base, width=first["width"], height=first["height"], steps=first["steps"],
                       guidance=first["guidance"], scheduler=first["scheduler"])
    resolved = {}
    for model_id in ids:
        params = resolve_request(replace(base, model=model_id), pool.spec(model_id))
        resolved[model_id] = {k: v for k, v in params.items() if k not in ("prompt", "seed", "batch")}
    return resolved


def _model_record(spec: ModelSpec, pool: ModelPool, params: dict[str, Any]) -> dict[str, Any]:
    return {"id": spec.id, "name": spec.name, "backend": spec.backend, "source": spec.source, "dtype": spec.dtype,
            "options": spec.options, "licence": spec.licence, "fingerprint": weights_fingerprint(spec),
            "placement": _placement(spec, pool), "params": params}


def _cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    folder = cache_dir / key[:2]
    return folder / f"{key}.png", folder / f"{key}.json"


def _load_cell(cache_dir: Path, key: str) -> tuple[Image.Image, dict[str, Any]] | None:
    png, meta = _cache_paths(cache_dir, key)
    if not (png.is_file() and meta.is_file()):
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
        with Image.open(png) as im:
            image = im.convert("RGB")
            image.load()
    except (OSError, ValueError):  # a half-written or damaged entry is a miss, regenerated below
        return None
    if record.get("key") != key:
        return None
    return image, record


def _store_cell(cache_dir: Path, key: str, image: Image.Image, record: dict[str, Any]) -> Path:
    from genimg.outputs import save_png

    png, meta = _cache_paths(cache_dir, key)
    png.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file (two runs may share the cache).
    tmp_png = png.with_suffix(f".{os.getpid()}.tmp.png")
    save_png(image, record, tmp_png)
    os.replace(tmp_png, png)
    tmp_meta = meta.with_suffix(f".{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps(_json_safe(record), sort_keys=True), encoding="utf-8")
    os.replace(tmp_meta, meta)
    return png


def _hardware_brief() -> dict[str, Any]:
    import platform

    return {"host": platform.node(), "machine": platform.machine()}


def evaluate(request: EvaluateRequest, pool: ModelPool | None = None,
             progress: ProgressFn | None = None) -> EvaluateResult:
    """Run every (model, prompt, seed) cell, score the images, summarise per model.

    ``progress(done, total, label)`` is called after each cell. A model that cannot run
    (missing weights, a fault) gets error rows and an entry in ``errors``; the others still run.
    Returns an EvaluateResult. Raises GenimgError for bad input (models, prompts, seeds,
    settings, metrics) or when no model could run.
    """
    started = time.perf_counter()
    pool = pool or get_pool()
    ids = check_models(request.models, pool)
    prompts = check_prompts(request.prompts)
    seeds = parse_seeds(request.seeds)
    keys = resolve_metrics(request.metrics)
    total = len(ids) * len(prompts) * len(seeds)
    if total > _limits()["cells"]:
        raise GenimgError(f"{len(ids)} models × {len(prompts)} prompts × {len(seeds)} seeds = {total} images; "
                          f"the limit here is {_limits()['cells']}")
    resolved = _resolve_all(request, ids, pool)
    cache_dir = Path(request.cache_dir).expanduser() if request.cache_dir else default_cache_dir()
    models = {m: _model_record(pool.spec(m), pool, resolved[m]) for m in ids}

    rows: list[EvalRow] = []
    errors: dict[str, str] = {}
    generated = hits = done = 0
    generate_s = 0.0
    for model_id in ids:
        params = resolved[model_id]
        cells = [EvalRow(model=model_id, prompt_index=i, prompt=p, seed=s) for i, p in enumerate(prompts) for s in seeds]
        todo = []
        for row in cells:
            row.key = cell_key(models[model_id], {**params, "prompt": row.prompt}, row.seed)
            found = _load_cell(cache_dir, row.key) if request.use_cache else None
            if found is None:
                todo.append(row)
                continue
            row.image, record = found
            row.latency_s = record.get("latency_s")
            row.metrics = {k: v for k, v in record.get("metrics", {}).items() if k in keys}
            row.notes = {k: v for k, v in record.get("notes", {}).items() if k in row.metrics}
            row.checks = record.get("checks", {}) if FAITHFULNESS in row.metrics else {}
            row.cached = True
            row.image_path = str(_cache_paths(cache_dir, row.key)[0])
            models[model_id].setdefault("scheduler_config", record.get("scheduler_config"))
            hits += 1
            done += 1
            if progress is not None:
                progress(done, total, f"{model_id} (cached)")
        if todo:
            t0 = time.perf_counter()
            try:
                with pool.acquire(model_id) as lease:
                    info = model_info(lease)
                    if lease.cold and request.warmup:
                        run_pipeline(lease, {**params, "prompt": todo[0].prompt, "seed": todo[0].seed,
                                             "batch": 1, "steps": 1})
                    for row in todo:
                        cell = {**params, "prompt": row.prompt, "seed": row.seed, "batch": 1}
                        images, timings = run_pipeline(lease, cell)
                        row.image = images[0].convert("RGB")
                        row.latency_s = timings.total_s
                        scheduler = _scheduler_record(lease.model)
                        models[model_id]["scheduler_config"] = scheduler
                        models[model_id]["loaded_placement"] = info["placement"]
                        record = {"genimg_version": __version__, "task": "text-to-image", "key": row.key,
                                  "model": {**info, "fingerprint": models[model_id]["fingerprint"]},
                                  **{k: v for k, v in cell.items() if k != "batch"}, "latency_s": row.latency_s,
                                  "timings": timings.as_dict(), "scheduler_config": scheduler,
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hardware": _hardware_brief()}
                        if request.use_cache:
                            row.image_path = str(_store_cell(cache_dir, row.key, row.image, record))
                        generated += 1
                        done += 1
                        if progress is not None:
                            progress(done, total, model_id)
            except ModelUnavailableError as exc:
                errors[model_id] = str(exc)
            except GenimgError:
                raise  # a bad parameter concerns the whole request
            except Exception as exc:  # one model's fault must not take the others down
                log.exception("model %s failed during evaluate", model_id)
                errors[model_id] = f"model {model_id!r} failed: {type(exc).__name__}: {exc}"
            generate_s += time.perf_counter() - t0
            if model_id in errors:
                for row in todo:
                    if row.image is None:
                        row.error = errors[model_id]
                        done += 1
                if progress is not None:
                    progress(done, total, f"{model_id} (error)")
        rows.extend(cells)
    if all(r.image is None for r in rows):
        raise GenimgError("no model could run: " + "; ".join(f"{m}: {e}" for m, e in errors.items()))

    t_metrics = time.perf_counter()
    _score_rows(rows, keys, cache_dir if request.use_cache else None)
    grammar_ok = {p: _is_grammar_prompt(p) for p in prompts}
    features: dict[str, np.ndarray] = {}
    if any(k in keys for k in (FD, KID, DIVERSITY)):
        from genimg.metrics.features import effnet_lite0

        ok_rows = [r for r in rows if r.image is not None]
        feats = effnet_lite0().pooled([np.asarray(r.image) for r in ok_rows])
        features = {r.key: f for r, f in zip(ok_rows, feats)}
    summary: dict[str, dict[str, Any]] = {}
    diversity_rows: list[dict[str, Any]] = []
    image_keys = [k for k in keys if k in IMAGE_METRICS]
    for model_id in ids:
        model_rows = [r for r in rows if r.model == model_id]
        ok_rows = [r for r in model_rows if r.image is not None]
        if not ok_rows:
            summary[model_id] = {"error": errors.get(model_id), "n_images": 0, "metrics": {}}
            continue
        entry = {"n_images": len(ok_rows), "metrics": {k: _stats(k, [r.metrics.get(k) for r in ok_rows])
                                                       for k in image_keys}}
        notes = sorted({r.notes[k] for r in ok_rows for k in image_keys if k in r.notes})
        for k, stats in entry["metrics"].items():
            if stats["n"] == 0:
                stats["note"] = next((r.notes[k] for r in ok_rows if k in r.notes), "no values")
        latencies = [r.latency_s for r in ok_rows if r.latency_s is not None]
        lat_mean, lat_low, lat_high = t_interval(latencies)
        entry["latency"] = {"median_s": float(np.median(latencies)) if latencies else None,
                            "mean_s": lat_mean if latencies else None, "ci_low": lat_low, "ci_high": lat_high,
                            "ci_method": "t", "images_per_s": (len(latencies) / sum(latencies)) if latencies else None,
                            "n": len(latencies), "cached": sum(1 for r in ok_rows if r.cached)}
        checked = [r.checks for r in ok_rows if r.checks]
        if checked:  # per-category accuracy of the grammar evaluator (checks that apply to the prompt)
            entry["faithfulness_checks"] = {
                name: {"accuracy": float(np.mean([bool(c[name]) for c in checked if c.get(name) is not None])),
                       "n": sum(1 for c in checked if c.get(name) is not None)}
                for name in sorted({k for c in checked for k, v in c.items() if v is not None})}
        set_stats, div_rows = _set_metrics(model_rows, keys, grammar_ok, features)
        entry["set_metrics"] = set_stats
        entry["notes"] = notes
        if model_id in errors:
            entry["error"] = errors[model_id]
        diversity_rows.extend(div_rows)
        summary[model_id] = entry
    _mark_pareto(summary, keys)
    request_record = {"models": ids, "prompts": prompts, "seeds": seeds, "negative_prompt": request.negative_prompt,
                      "width": request.width, "height": request.height, "steps": request.steps,
                      "guidance": request.guidance, "scheduler": request.scheduler,
                      "own_defaults": request.own_defaults, "metrics": keys, "use_cache": request.use_cache}
    timings = {"total_s": time.perf_counter() - started, "generate_s": generate_s,
               "metrics_s": time.perf_counter() - t_metrics}
    return EvaluateResult(rows=rows, summary=summary, diversity=diversity_rows, models=models, errors=errors,
                          metrics=keys, request=request_record, timings=timings, generated=generated,
                          cache_hits=hits, cache_dir=str(cache_dir))


def _scheduler_record(pipe: Any) -> dict[str, Any] | None:
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None:
        return None
    config = dict(getattr(scheduler, "config", {}) or {})
    return {"class": type(scheduler).__name__, "config": _json_safe(config)}


def _score_rows(rows: list[EvalRow], keys: list[str], cache_dir: Path | None) -> None:
    """Fill per-image metrics that a cached row does not carry yet; store them back in the cache."""
    per_image = [k for k in keys if k in IMAGE_METRICS and k != CLIP]
    clip_todo = []
    for row in rows:
        if row.image is None:
            continue
        missing = [k for k in per_image if k not in row.metrics]
        changed = False
        if missing:
            values, notes, checks = image_metrics(row.image, row.prompt, missing)
            row.metrics.update(values)
            row.notes.update(notes)
            if checks:
                row.checks = checks
            changed = True
        if CLIP in keys and CLIP not in row.metrics:
            clip_todo.append(row)
        if changed and cache_dir is not None:
            _update_cached_metrics(cache_dir, row)
    if clip_todo:
        _add_clip(rows=[r for r in rows if r.image is not None and CLIP not in r.metrics], todo=clip_todo)
        if cache_dir is not None:
            for row in clip_todo:
                if row.metrics.get(CLIP) is not None:  # "unavailable" is not cached: weights may appear later
                    _update_cached_metrics(cache_dir, row)
    # Rows keep metrics in the order asked.
    for row in rows:
        if row.image is not None:
            row.metrics = {k: row.metrics.get(k) for k in keys if k in IMAGE_METRICS}


def _update_cached_metrics(cache_dir: Path, row: EvalRow) -> None:
    """Keep computed metric values next to the cached image (metrics are deterministic in the
    image and prompt); values that are None because something is missing here are not kept."""
    _png, meta = _cache_paths(cache_dir, row.key)
    if not meta.is_file():
        return
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    keep = {k: v for k, v in row.metrics.items() if v is not None or not row.notes.get(k, "").startswith("unavailable")}
    record.setdefault("metrics", {}).update(_json_safe(keep))
    record.setdefault("notes", {}).update({k: v for k, v in row.notes.items() if k in keep})
    if row.checks:
        record["checks"] = row.checks
    tmp = meta.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    os.replace(tmp, meta)


def quality_metric(keys: list[str], summary: dict[str, dict[str, Any]]) -> str | None:
    """The metric the Pareto plot uses by default: faithfulness, then CLIP, then the first with values."""
    for k in (FAITHFULNESS, CLIP, *keys):
        if k in IMAGE_METRICS and k in keys and any(
                (s.get("metrics", {}).get(k) or {}).get("mean") is not None for s in summary.values()):
            return k
    return None


def _mark_pareto(summary: dict[str, dict[str, Any]], keys: list[str]) -> None:
    """Mark, per image metric, which models are on the latency–quality Pareto front."""
    for k in keys:
        if k not in IMAGE_METRICS:
            continue
        points = {}
        for model_id, s in summary.items():
            stats = s.get("metrics", {}).get(k)
            lat = (s.get("latency") or {}).get("median_s")
            if stats and stats.get("mean") is not None and lat is not None:
                points[model_id] = (lat, stats["mean"])
        front = set(pareto_front(points, BETTER.get(k, "higher") == "higher"))
        for model_id in points:
            summary[model_id]["metrics"][k]["pareto"] = model_id in front


__all__ = ["EvaluateRequest", "EvaluateResult", "EvalRow", "evaluate", "image_metrics", "grammar_prompts",
           "read_prompts_file", "parse_seeds", "resolve_metrics", "check_prompts", "t_interval", "wilson_interval",
           "pareto_front", "reference_scene", "default_cache_dir", "weights_fingerprint", "cell_key",
           "quality_metric", "ALL_METRICS", "DEFAULT_METRICS", "IMAGE_METRICS", "SET_METRICS", "LABELS"]

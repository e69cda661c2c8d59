"""Scoring an evaluation: per-image metrics of every cell, then per-model summaries and set metrics.

Every metric comes from the one registry (:data:`genimg.metrics.registry.METRICS`). A metric that
does not apply to a cell (a prompt outside the grammar, an image too small, no weights here) is
None with a note, never an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genimg.errors import GenimgError
from genimg.evaluation import cache
from genimg.evaluation.inputs import BETTER, IMAGE_METRICS, LABELS
from genimg.evaluation.references import render_references
from genimg.evaluation.results import EvalRow
from genimg.evaluation.statistics import CONFIDENCE, mark_pareto, summarize, t_interval
from genimg.metrics.diversity import pixel_near_duplicate_rate
from genimg.metrics.registry import METRICS, TEXT_IMAGE

FAITHFULNESS, CLIP, FD, KID, DIVERSITY, VQA = "faithfulness", "clip", "fd", "kid", "diversity", "vqa"


def image_metrics(image: Any, prompt: str, keys: list[str]) -> tuple[dict[str, float | None], dict[str, str],
                                                                       dict[str, bool | None]]:
    """Per-image metrics of one generated image: (values, notes for None values, grammar checks).

    ``keys``: any of IMAGE_METRICS (set metrics are ignored). A metric that does not apply is None
    with a note, never an error.
    """
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    values: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    checks: dict[str, bool | None] = {}
    for key in keys:
        if key not in IMAGE_METRICS:
            continue
        metric = METRICS[key]
        ok, reason = metric.availability()
        if not ok:
            values[key], notes[key] = None, f"unavailable: {reason}"
            continue
        if metric.task == TEXT_IMAGE:
            score = metric.run_batch([rgb], [prompt])[0]
            values[key] = score.value
            if score.note:
                notes[key] = score.note
            if key == FAITHFULNESS:
                checks = score.details
            continue
        too_small = metric.too_small(rgb)
        if too_small:
            values[key], notes[key] = None, too_small
            continue
        try:
            values[key] = metric.run(rgb)
        except GenimgError as exc:  # includes ModelUnavailableError
            values[key], notes[key] = None, str(exc)
    return values, notes, checks


def score_rows(rows: list[EvalRow], keys: list[str], cache_dir: Path | None) -> None:
    """Fill the per-image metrics a row does not carry yet (cached rows may); store them back in the cache.

    Batched metrics (CLIP) run over every row that needs them at once.
    """
    per_image = [k for k in keys if k in IMAGE_METRICS and k not in (CLIP, VQA)]
    clip_todo = []
    for row in rows:
        if row.image is None:
            continue
        missing = [k for k in per_image if k not in row.metrics]
        if missing:
            values, notes, checks = image_metrics(row.image, row.prompt, missing)
            row.metrics.update(values)
            row.notes.update(notes)
            if checks:
                row.checks = checks
            if cache_dir is not None:
                cache.update_metrics(cache_dir, row.key, row.metrics, row.notes, row.checks)
        if VQA in keys and (VQA not in row.metrics or (row.metrics[VQA] is not None and not row.answers)):
            # Run here, not in image_metrics, to keep the per-type tallies; cached rows recompute them
            # (the answerer is classical vision, and deterministic).
            score = METRICS[VQA].run(row.image, row.prompt)
            row.metrics[VQA], row.answers = score.value, dict(score.details.get("types", {}))
            if score.note:
                row.notes[VQA] = score.note
            if cache_dir is not None:
                cache.update_metrics(cache_dir, row.key, row.metrics, row.notes, row.checks)
        if CLIP in keys and CLIP not in row.metrics:
            clip_todo.append(row)
    if clip_todo:
        clip = METRICS[CLIP]
        ok, reason = clip.availability()
        scores = (clip.run_batch([r.image for r in clip_todo], [r.prompt for r in clip_todo]) if ok else
                  [None] * len(clip_todo))
        for row, score in zip(clip_todo, scores):
            if score is None:
                row.metrics[CLIP], row.notes[CLIP] = None, f"unavailable: {reason}"
                continue
            row.metrics[CLIP] = score.value
            if score.note:
                row.notes[CLIP] = score.note
            if cache_dir is not None and score.value is not None:
                cache.update_metrics(cache_dir, row.key, row.metrics, row.notes, row.checks)
    for row in rows:  # rows keep metrics in the order asked
        if row.image is not None:
            row.metrics = {k: row.metrics.get(k) for k in keys if k in IMAGE_METRICS}


def features_of(rows: list[EvalRow]) -> dict[str, np.ndarray]:
    """EfficientNet-Lite0 pooled features of every row with an image, by cell key."""
    from genimg.metrics.features import effnet_lite0

    done = [r for r in rows if r.image is not None]
    feats = effnet_lite0().pooled([np.asarray(r.image) for r in done]) if done else []
    return {r.key: f for r, f in zip(done, feats)}


def _distances(rows: list[EvalRow], keys: list[str], grammar_ok: dict[str, bool],
               features: dict[str, np.ndarray]) -> dict[str, Any]:
    """FD / KID of one model's grammar cells against grammar renders of the same prompts."""
    from genimg.metrics.features import effnet_lite0

    out: dict[str, Any] = {}
    wanted = [k for k in (FD, KID) if k in keys]
    if not wanted:
        return out
    grammar_rows = [r for r in rows if grammar_ok[r.prompt]]
    if len(grammar_rows) < 2:
        note = ("needs grammar prompts (FD/KID compare with grammar renders of the same prompts): "
                f"{len(grammar_rows)} grammar cell(s), at least 2 needed")
        return {k: {"value": None, "note": note, "label": LABELS[k], "better": BETTER[k]} for k in wanted}
    renders = render_references([r.prompt for r in grammar_rows], [r.seed for r in grammar_rows],
                                max(16, grammar_rows[0].image.size[0]))
    references = effnet_lite0().pooled(renders)
    generated = np.stack([features[r.key] for r in grammar_rows])
    skipped = len(rows) - len(grammar_rows)
    for k in wanted:
        result = METRICS[k].run(generated, references, confidence=CONFIDENCE)
        if skipped:
            result["note"] = f"{skipped} cell(s) with prompts outside the grammar left out"
        out[k] = result
    return out


def _diversity(rows: list[EvalRow], features: dict[str, np.ndarray]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Diversity across the seeds of each prompt of one model: (summary, one row per prompt)."""
    by_prompt: dict[int, list[EvalRow]] = {}
    for r in rows:
        by_prompt.setdefault(r.prompt_index, []).append(r)
    per_prompt = []
    for index, group in sorted(by_prompt.items()):
        if len(group) < 2:
            continue
        d = METRICS[DIVERSITY].run(np.stack([features[r.key] for r in group]))
        # Beside the feature rate (calibrated on photos), the pixel rate (calibrated on the flat synthetic
        # scenes, where the features call distinct renders near-duplicates): the same picture drawn twice.
        pixels = [np.asarray(r.image.convert("RGB"), dtype=np.float32) / 255.0 for r in group]
        per_prompt.append({"model": group[0].model, "prompt_index": index, "prompt": group[0].prompt, "n_seeds": d.n,
                           "mean_pairwise_distance": d.mean_pairwise_distance,
                           "near_duplicate_rate": d.near_duplicate_rate,
                           "pixel_near_duplicate_rate": pixel_near_duplicate_rate(pixels)})
    if not per_prompt:
        return {"mean": None, "note": "needs at least 2 seeds per prompt", "label": LABELS[DIVERSITY],
                "better": BETTER[DIVERSITY]}, []
    stats = summarize([p["mean_pairwise_distance"] for p in per_prompt], label=LABELS[DIVERSITY],
                      better=BETTER[DIVERSITY])
    stats.update(near_duplicate_rate=float(np.mean([p["near_duplicate_rate"] for p in per_prompt])),
                 pixel_near_duplicate_rate=float(np.mean([p["pixel_near_duplicate_rate"] for p in per_prompt])),
                 per="prompt")
    return stats, per_prompt


def summarize_model(rows: list[EvalRow], keys: list[str], grammar_ok: dict[str, bool],
                    features: dict[str, np.ndarray], error: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One model's summary (metrics with intervals, latency, grammar checks, set metrics) and its diversity rows."""
    done = [r for r in rows if r.image is not None]
    if not done:
        return {"error": error, "n_images": 0, "metrics": {}}, []
    image_keys = [k for k in keys if k in IMAGE_METRICS]
    entry: dict[str, Any] = {"n_images": len(done), "metrics": {
        k: summarize([r.metrics.get(k) for r in done], proportion=(k == FAITHFULNESS), label=LABELS.get(k, k),
                     better=BETTER.get(k, "")) for k in image_keys}}
    for k, stats in entry["metrics"].items():
        if stats["n"] == 0:
            stats["note"] = next((r.notes[k] for r in done if k in r.notes), "no values")
    if VQA in entry["metrics"]:  # accuracy per question type, pooled over every answered question
        stats = entry["metrics"][VQA]
        stats["types"] = vqa_types([r.answers for r in done])
        for bound in ("ci_low", "ci_high"):  # an accuracy: the t-interval is clipped to [0, 1]
            if stats.get(bound) is not None:
                stats[bound] = min(1.0, max(0.0, stats[bound]))
    latencies = [r.latency_s for r in done if r.latency_s is not None]
    lat_mean, lat_low, lat_high = t_interval(latencies)
    entry["latency"] = {"median_s": float(np.median(latencies)) if latencies else None,
                        "mean_s": lat_mean if latencies else None, "ci_low": lat_low, "ci_high": lat_high,
                        "ci_method": "t", "images_per_s": (len(latencies) / sum(latencies)) if latencies else None,
                        "n": len(latencies), "cached": sum(1 for r in done if r.cached)}
    checked = [r.checks for r in done if r.checks]
    if checked:  # per-category accuracy of the grammar evaluator (checks that apply to the prompt)
        entry["faithfulness_checks"] = {
            name: {"accuracy": float(np.mean([bool(c[name]) for c in checked if c.get(name) is not None])),
                   "n": sum(1 for c in checked if c.get(name) is not None)}
            for name in sorted({k for c in checked for k, v in c.items() if v is not None})}
    entry["set_metrics"] = _distances(done, keys, grammar_ok, features)
    diversity_rows: list[dict[str, Any]] = []
    if DIVERSITY in keys:
        entry["set_metrics"][DIVERSITY], diversity_rows = _diversity(done, features)
    entry["notes"] = sorted({r.notes[k] for r in done for k in image_keys if k in r.notes})
    if error:
        entry["error"] = error
    return entry, diversity_rows


def vqa_types(tallies: list[dict[str, list[int]]]) -> dict[str, dict[str, Any]]:
    """Accuracy per question type over many images' ``{type: [correct, answered]}`` tallies:
    ``{type: {"accuracy", "correct", "n"}}`` in the order of genimg.vqa.questions.QUESTION_TYPES."""
    from genimg.vqa.questions import QUESTION_TYPES

    out: dict[str, dict[str, Any]] = {}
    for kind in QUESTION_TYPES:
        correct = sum(t[kind][0] for t in tallies if kind in t)
        n = sum(t[kind][1] for t in tallies if kind in t)
        if n:
            out[kind] = {"accuracy": correct / n, "correct": correct, "n": n}
    return out


def pareto(summary: dict[str, dict[str, Any]], keys: list[str]) -> None:
    """Mark the latency–quality Pareto front per per-image metric (in place)."""
    mark_pareto(summary, [k for k in keys if k in IMAGE_METRICS], BETTER)


def quality_metric(keys: list[str], summary: dict[str, dict[str, Any]]) -> str | None:
    """The metric the Pareto plot uses by default: faithfulness, then CLIP, then the first with values."""
    for k in (FAITHFULNESS, CLIP, *keys):
        if k in IMAGE_METRICS and k in keys and any(
                (s.get("metrics", {}).get(k) or {}).get("mean") is not None for s in summary.values()):
            return k
    return None

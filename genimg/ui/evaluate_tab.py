"""Evaluate tab: models × prompts × seeds → image grid, per-model table (mean [95% CI]),
quality-vs-latency Pareto scatter, per-metric bars, and a downloadable report.

Thin: the work happens in :func:`genimg.tasks.evaluate.evaluate` and :mod:`genimg.evaluation.report`.
API name ``/evaluate``: inputs (models, prompts text, prompts file, grammar-set size, seeds,
own-defaults flag, width, height, steps, guidance, scheduler, metrics, use-cache) → (gallery,
summary rows, plot-metric choice, scatter, bars, report zip, report.html, HTML preview, JSON).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from genimg.domains import can_draw
from genimg.errors import GenimgError
from genimg.evaluation.report import (mean_ci_text, report_fragment, summary_table, unavailable_metrics,
                                      vqa_types_table, write_report)
from genimg.evaluation.inputs import (ALL_METRICS, BETTER, DEFAULT_METRICS, IMAGE_METRICS, LABELS, grammar_prompts,
                                      parse_seeds, read_prompts_file)
from genimg.evaluation.scoring import quality_metric
from genimg.tasks.evaluate import EvaluateRequest, evaluate
from genimg.params import scheduler_names
from genimg.ui.common import RESULTS_TABLE_HEIGHT, model_choices, user_errors
from genimg.ui.uploads import GatedTextFile, refuse_at_upload

SCATTER_COLUMNS = ["model", "latency_s", "value", "front"]
BAR_COLUMNS = ["model", "mean", "ci_low", "ci_high", "ci"]


def metric_choices() -> list[tuple[str, str]]:
    return [(LABELS.get(k, k) + (" (per model)" if k not in IMAGE_METRICS else ""), k) for k in ALL_METRICS]


def collect_prompts(text: str | None, file_path: str | None, grammar_n: Any) -> list[str]:
    """Prompts from the textbox (one per line), the uploaded file and the grammar set, in that order."""
    prompts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if file_path:
        prompts += read_prompts_file(file_path)
    n = int(grammar_n or 0)
    if n < 0 or n > 64:
        raise GenimgError(f"grammar set size must be 0 (off) to 64, got {n}")
    if n:
        prompts += grammar_prompts(n)
    return prompts


def plot_frames(summary: dict[str, Any], metric: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scatter, bars) DataFrames for one per-image metric from a summary_json()["summary"]."""
    points, bars = [], []
    for model, s in (summary or {}).items():
        stats = (s.get("metrics") or {}).get(metric or "")
        if not stats or stats.get("mean") is None:
            continue
        latency = (s.get("latency") or {}).get("median_s")
        if latency is not None:
            points.append([model, float(latency), float(stats["mean"]),
                           "Pareto front" if stats.get("pareto") else "dominated"])
        bars.append([model, float(stats["mean"]), stats.get("ci_low"), stats.get("ci_high"), mean_ci_text(stats)])
    return pd.DataFrame(points, columns=SCATTER_COLUMNS), pd.DataFrame(bars, columns=BAR_COLUMNS)


def _plots(summary: dict[str, Any], metric: str | None) -> tuple[Any, Any]:
    scatter_df, bars_df = plot_frames(summary, metric)
    label = LABELS.get(metric or "", metric or "")
    better = BETTER.get(metric or "", "")
    scatter = gr.ScatterPlot(value=scatter_df, x="latency_s", y="value", color="front", tooltip="all",
                             x_title="latency, median s/image (lower is better)",
                             y_title=f"{label} ({better} is better)" if metric else "quality",
                             title=f"{label} vs latency" if metric else None,
                             color_map={"Pareto front": "#e45756", "dominated": "#4c78a8"})
    # Bars start at 0 for non-negative metrics: a cut axis makes small differences look large.
    y_lim = [0, None] if len(bars_df) and (bars_df["mean"] >= 0).all() else None
    bars = gr.BarPlot(value=bars_df, x="model", y="mean", color="model", tooltip=["ci"], y_lim=y_lim,
                      y_title=f"{label}: mean" if metric else "mean", title=f"{label}: mean [95% CI]" if metric else None,
                      caption="95% interval in the tooltip, the table and the report's error bars")
    return scatter, bars


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    choices = model_choices(pool, "text-to-image")
    runnable = [value for label, value in choices if "weights missing" not in label]
    # The project's own (embedded) models are what this dashboard can always evaluate offline - those that can
    # draw the default prompts, the grammar set (genimg-emoji draws another world: unfair here).
    default_prompt = grammar_prompts(1)[0]
    default_models = [m for m in runnable if (m.startswith("genimg-") or pool.spec(m).backend == "embedded")
                      and can_draw(pool.spec(m), default_prompt)]
    with gr.Row():
        with gr.Column(scale=3):
            prompts = gr.Textbox(label="Prompts (one per line)", lines=3, max_lines=12, elem_id="evaluate-prompts")
            with gr.Row():
                prompts_file = GatedTextFile(label="…or a prompts file (.txt, one per line)", file_types=[".txt"],
                                       type="filepath", height=100, elem_id="evaluate-prompts-file")
                grammar_n = gr.Number(label="…and/or N prompts of the grammar eval set (0 = off, max 64)", value=4,
                                      precision=0, minimum=0, maximum=64, elem_id="evaluate-grammar")
        with gr.Column(scale=2):
            models = gr.CheckboxGroup(choices=choices, value=default_models, label="Models", elem_id="evaluate-models")
            seeds = gr.Textbox(label="Seeds (e.g. 0,1,2 or 0-3)", value="0,1", elem_id="evaluate-seeds")
            run = gr.Button("Evaluate", variant="primary", elem_id="evaluate-button")
    with gr.Accordion("Settings and metrics", open=False):
        own = gr.Checkbox(label="Each model at its own recommended settings (untick for identical settings: "
                                "empty fields then take the first model's defaults)", value=True)
        with gr.Row():
            # Text, not gr.Number: a browser Number field cannot be empty (it sends 0), and empty
            # here means "the first model's default" (guidance 0 is a real choice for turbo models).
            width = gr.Textbox(label="Width", placeholder="first model's default", max_lines=1,
                               interactive=False)
            height = gr.Textbox(label="Height", placeholder="first model's default", max_lines=1,
                               interactive=False)
            steps = gr.Textbox(label="Steps", placeholder="first model's default", max_lines=1,
                               interactive=False)
            guidance = gr.Textbox(label="Guidance", placeholder="first model's default", max_lines=1,
                               interactive=False)
            scheduler = gr.Dropdown(choices=scheduler_names(), value="default", label="Scheduler", interactive=False)
        metrics = gr.CheckboxGroup(choices=metric_choices(), value=list(DEFAULT_METRICS), label="Metrics",
                                   elem_id="evaluate-metrics")
        use_cache = gr.Checkbox(label="Reuse cached cells (same model weights, settings, prompt and seed)", value=True)
    gallery = gr.Gallery(label="Images: one column per model", columns=max(1, len(default_models)), height="auto",
                         format="png", elem_id="evaluate-gallery", object_fit="contain",
                         elem_classes=["model-columns"])
    missing = gr.Markdown(elem_id="evaluate-unavailable", elem_classes=["footnote"])
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, label="Per model: mean [95% CI] (★ = on the latency–quality Pareto front)",
                         interactive=False, wrap=True, elem_id="evaluate-table")
    by_type = gr.Markdown(elem_id="evaluate-vqa-types")
    plot_metric = gr.Dropdown(choices=[], value=None, label="Metric to plot", elem_id="evaluate-plot-metric")
    with gr.Row():
        scatter = gr.ScatterPlot(x="latency_s", y="value", color="front", label="Quality vs latency",
                                 show_label=True, elem_id="evaluate-scatter", height=320)
        bars = gr.BarPlot(x="model", y="mean", color="model", label="Mean per model", show_label=True,
                          elem_id="evaluate-bars", height=320)
    with gr.Row():
        report_zip = gr.File(label="Report (zip: images, CSV, JSON, config, reproduce.sh, report.html)",
                             elem_id="evaluate-report")
        report_html = gr.File(label="report.html (static, self-contained)", elem_id="evaluate-report-html")
    with gr.Accordion("Report preview", open=False):
        preview = gr.HTML(elem_id="evaluate-preview")
    with gr.Accordion("All numbers (JSON)", open=False):
        record = gr.JSON(show_label=False)
    summary_state = gr.State({})

    refuse_at_upload(prompts_file)

    @user_errors
    def on_evaluate(model_ids, prompts_text, file_path, n_grammar, seeds_text, use_own, w, h, n_steps, cfg, sched,
                    metric_keys, cache_flag, progress=gr.Progress()):
        request = EvaluateRequest(
            models=list(model_ids or []), prompts=collect_prompts(prompts_text, file_path, n_grammar),
            seeds=parse_seeds(seeds_text), own_defaults=bool(use_own),
            width=None if use_own else w, height=None if use_own else h, steps=None if use_own else n_steps,
            guidance=None if use_own else cfg,
            scheduler=None if use_own or not sched or sched == "default" else sched,
            metrics=list(metric_keys or []) or None, use_cache=bool(cache_flag))

        def report_progress(done: int, total: int, label: str) -> None:
            progress((done, total), desc=f"image {done}/{total}: {label}", unit="images")

        result = evaluate(request, pool, progress=report_progress)
        folder = Path(tempfile.mkdtemp(prefix="genimg-evaluate-")) / "report"
        paths = write_report(result, folder)
        payload = result.summary_json()
        header, rows = summary_table(result, skip=unavailable_metrics(result.metrics, result.summary))
        items = [(row.image, f"{row.model} · p{row.prompt_index} · seed {row.seed}") for row in _grid_order(result)]
        plotted = [k for k in result.metrics if k in IMAGE_METRICS]
        metric = quality_metric(result.metrics, payload["summary"])
        scatter_plot, bar_plot = _plots(payload["summary"], metric)
        columns = max(1, len(result.summary))
        return (gr.Gallery(value=items, columns=columns), pd.DataFrame(rows, columns=header),
                gr.Dropdown(choices=[(LABELS.get(k, k), k) for k in plotted], value=metric),
                scatter_plot, bar_plot, str(paths.zip), str(paths.html), report_fragment(result), payload,
                payload["summary"])

    def notes(summary, keys):
        """The notes around the table: metrics not measured here (above) and VQA per question type (below)."""
        gone = unavailable_metrics(list(keys or []), summary or {})
        header, rows = vqa_types_table(summary or {})
        table = ("**VQA accuracy by question type** (questions asked)\n\n| " + " | ".join(header) + " |\n|"
                 + "---|" * len(header) + "\n" + "\n".join("| " + " | ".join(row) + " |" for row in rows)
                 if rows else "")
        return ("Not measured on this machine: " + "; ".join(f"**{LABELS.get(k, k)}** — {why}" for k, why in gone.items())
                if gone else ""), table

    def on_plot_metric(summary, metric):
        return _plots(summary, metric)

    run.click(on_evaluate, [models, prompts, prompts_file, grammar_n, seeds, own, width, height, steps, guidance,
                            scheduler, metrics, use_cache],
              [gallery, table, plot_metric, scatter, bars, report_zip, report_html, preview, record, summary_state],
              api_name="evaluate").then(notes, [summary_state, metrics], [missing, by_type], api_name=False,
                                        show_progress="hidden")
    plot_metric.input(on_plot_metric, [summary_state, plot_metric], [scatter, bars], api_name=False, queue=False)
    own.change(lambda on: [gr.update(interactive=not on)] * 5, [own], [width, height, steps, guidance, scheduler],
               api_name=False, queue=False)
    return {"models": models, "prompts": prompts, "gallery": gallery, "table": table, "scatter": scatter,
            "bars": bars, "report": report_zip}


def _grid_order(result: Any) -> list[Any]:
    """Rows with images, row-major: one gallery row per (prompt, seed), one column per model."""
    models = list(result.summary)
    by_cell = {(r.model, r.prompt_index, r.seed): r for r in result.rows}
    order = []
    for index, seed in sorted({(r.prompt_index, r.seed) for r in result.rows}):
        for m in models:
            r = by_cell.get((m, index, seed))
            if r is not None and r.image is not None:
                order.append(r)
    return order

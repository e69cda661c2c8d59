"""Grid tab: one prompt swept over up to three axes (A1111's X/Y/Z plot), every cell timed."""

from __future__ import annotations

from typing import Any

import gradio as gr

from genimg.grid import AXIS_KINDS, make_axis
from genimg.models.catalog import default_model
from genimg.outputs import attach_metadata
from genimg.tasks.generate import GenerateRequest
from genimg.tasks.grid import run_grid
from genimg.ui.common import RESULTS_TABLE_HEIGHT, cells_progress, model_choices, user_errors
from genimg.ui.compare_tab import runs_on, speed

NONE = "none"
AXIS_CHOICES = [("—", NONE)] + [(label, kind) for kind, (label, _field) in AXIS_KINDS.items()]
# After one column per axis (its name, e.g. "Steps", "Model"): the cell's numbers. Decode time and where each
# cell ran are in the JSON below the table (the table must fit the page).
TABLE_COLUMNS = ["sampler", "warm s", "speed", "text s", "denoise s", "peak MB", "first load s", "prompt encoding",
                 "error"]
HELP = ("Values are comma-separated (quote one that holds a comma). **Size**: `64x64`. **Prompt S/R**: the first "
        "value is the text to find in the prompt; each value replaces it in one column. Every other setting is "
        "fixed: each model's own defaults, one seed for every cell. **warm s** is the timed call after a 1-step "
        "warm-up of each freshly loaded model; **prompt encoding** says when a cell reused an earlier cell's "
        "(same model, prompt and negative prompt) instead of encoding again.")


def axis_from_inputs(kind: Any, values: Any, limits: Any) -> Any:
    """An Axis from a picker value and its text, or None when the picker says "—"."""
    if not kind or kind == NONE:
        return None
    return make_axis(kind, values or "", limits)


def table_headers(result: Any) -> list[str]:
    """The table's headers: one per axis of ``result`` (X, Y, Z), then TABLE_COLUMNS."""
    return [a.label for a in result.axes if a is not None] + TABLE_COLUMNS


def table_rows(result: Any) -> list[list[Any]]:
    """One row per cell in grid order: its axis values, then TABLE_COLUMNS."""
    rows = []
    for cell in result.cells:
        s = cell.summary()
        position = [a.value_label(i) for a, i in zip(result.axes, (cell.planned.x, cell.planned.y, cell.planned.z))
                    if a is not None]
        if cell.result is None:
            rows.append(position + [None] * (len(TABLE_COLUMNS) - 1) + [s["error"]])
            continue
        rows.append(position + [s["sampler"], round(s["wall_s"], 3), speed({**s, "images": 1}),
                                round(s["text_encode_s"], 3), round(s["denoise_s"], 3),
                                round(s["peak_memory_mb"]) if s["peak_memory_mb"] >= 1 else "–",
                                round(s["load_s"], 2) or None, "reused" if s["encode_reused"] else "encoded", ""])
    return rows


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    choices = model_choices(pool, "text-to-image")
    runnable = [value for label, value in choices if "weights missing" not in label]
    start_models = [m for m in ("genimg-diffusion", "genimg-fewstep") if m in runnable] or runnable[:2]
    default = default_model(pool.catalog)
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=1, max_lines=6, elem_id="grid-prompt",
                                value="a red circle on a yellow background")
            negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="grid-negative")
        with gr.Column(scale=1, min_width=220):
            model = gr.Dropdown(choices=choices, value=default, label="Model (when no axis varies it)",
                                allow_custom_value=True, elem_id="grid-model")
            seed = gr.Number(label="Seed for every cell (-1 = random)", value=-1, precision=0, elem_id="grid-seed")
            run = gr.Button("Run grid", variant="primary", elem_id="grid-button")
    axes = []
    starts = [("steps", "4,8,20"), ("model", ",".join(start_models)) if len(start_models) > 1 else (NONE, ""),
              (NONE, "")]
    for name, (kind, values) in zip(("X", "Y", "Z"), starts):
        with gr.Row(equal_height=True):
            picker = gr.Dropdown(choices=AXIS_CHOICES, value=kind, label=f"{name} axis", scale=1, min_width=160,
                                 elem_id=f"grid-{name.lower()}-type")
            text = gr.Textbox(value=values, label=f"{name} values", scale=4, elem_id=f"grid-{name.lower()}-values",
                              placeholder="e.g. 4,8,20")
        axes += [picker, text]
    gr.Markdown(HELP, elem_classes=["footnote"])
    with gr.Accordion("Settings", open=False):
        warmup = gr.Checkbox(label="Warm-up run for freshly loaded models", value=True)
    grids = gr.Gallery(label="Grid (one image per Z value)", columns=1, height="auto", format="png",
                       elem_id="grid-images", object_fit="contain", elem_classes=["grid-pages"])
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, headers=["X", *TABLE_COLUMNS], label="Cells (warm timings)",
                         interactive=False, wrap=True, elem_id="grid-table")
    with gr.Accordion("Cell images (PNG with full parameters)", open=False):
        cells = gr.Gallery(show_label=False, columns=6, height="auto", format="png", elem_id="grid-cells",
                           object_fit="contain", elem_classes=["results-grid"])
    with gr.Accordion("All numbers (JSON)", open=False):
        record = gr.JSON(show_label=False)

    @user_errors
    def on_grid(prompt, negative_prompt, model, x_axis, x_values, y_axis, y_values, z_axis, z_values, seed,
                warmup=True, progress=gr.Progress()):
        """The /grid API: parameter names are a contract (add, never rename)."""
        limits = settings.limits
        chosen = [axis_from_inputs(x_axis, x_values, limits), axis_from_inputs(y_axis, y_values, limits),
                  axis_from_inputs(z_axis, z_values, limits)]
        if chosen[0] is None:
            chosen = [a for a in chosen if a is not None] or [None]
        request = GenerateRequest(prompt=prompt or "", model=model or "", negative_prompt=negative_prompt or "",
                                  seed=-1 if seed is None else seed)
        result = run_grid(request, chosen, pool, progress=cells_progress(progress), warmup=bool(warmup))
        pictures = [(image, f"Z: {result.axes[2].value_label(z)}" if result.axes[2] is not None else "grid")
                    for z, image in enumerate(result.grids)]
        items = [(attach_metadata(c.image, c.result.record(0)), c.planned.label) for c in result.cells
                 if c.result is not None]
        payload = {"seed": result.seed, "axes": result.describe_axes(),
                   "cells": [{**c.summary(), "runs_on": runs_on(c.result.model)} if c.result else c.summary()
                             for c in result.cells]}
        return pictures, gr.Dataframe(value=table_rows(result), headers=table_headers(result)), items, payload

    run.click(on_grid, [prompt, negative, model, *axes, seed, warmup], [grids, table, cells, record], api_name="grid")
    return {"prompt": prompt, "grids": grids, "table": table}

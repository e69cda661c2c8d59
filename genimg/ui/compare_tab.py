"""Compare tab: the same prompt and seeds on 2-4 models, one column per model, timed fairly."""

from __future__ import annotations

from typing import Any

import gradio as gr

from genimg.tasks.compare import compare
from genimg.params import scheduler_names
from genimg.tasks.generate import GenerateRequest
from genimg.ui.ask_tab import ask_box
from genimg.ui.common import (RESULTS_TABLE_HEIGHT, cells_progress, example_prompts, model_choices, prompt_note,
                              user_errors)
from genimg.ui.generate_tab import gallery_items, replica_text
from genimg.ui.preview import add_share_button

TABLE_COLUMNS = ["model", "runs on", "wall s", "speed", "denoise s", "decode s", "peak MB", "first load s", "error"]
MEMORY_NOTE = ("**peak MB** — on a GPU, the allocator's peak during the timed call; on the CPU, how much the "
               "process's resident memory grew during it (sampled every 50 ms). \"–\" means it did not grow "
               "measurably: the model reused memory it already held, not that it needed none. **speed** — "
               "denoising steps per second for multi-step models; images per second for one-step models "
               "(a GAN or VAE has no steps to count).")


def runs_on(model_info: dict[str, Any], replica: dict[str, Any] | None = None) -> str:
    """Where and how a model ran, e.g. "cpu/float32 · onnxruntime" (a fair comparison shows it), and
    under ``serve --ray`` the replica that ran it."""
    parts = [str(model_info[k]) for k in ("placement", "runtime") if model_info.get(k)]
    return " · ".join(parts + ([replica_text(replica)] if replica else []))


def speed(summary: dict[str, Any]) -> str:
    """Steps/s for a multi-step model; images/s for a one-step one (whose "steps" mean nothing)."""
    if summary.get("steps", 0) <= 1:
        images = summary.get("images", 1)
        return f"{images / summary['wall_s']:.1f} images/s" if summary["wall_s"] > 0 else "–"
    return f"{summary['steps_per_s']:.2f} steps/s"


def table_rows(result: Any) -> list[list[Any]]:
    """One row per model of a CompareResult, in TABLE_COLUMNS order."""
    rows = []
    for cell in result.cells:
        s = cell.summary()
        if cell.result is None:
            rows.append([cell.model, None, None, None, None, None, None, None, cell.error])
        else:
            rows.append([cell.model, runs_on(cell.result.model, cell.result.replica), round(s["wall_s"], 3), speed(s),
                         round(s["denoise_s"], 3), round(s["decode_s"], 3),
                         round(s["peak_memory_mb"]) if s["peak_memory_mb"] >= 1 else "–",
                         round(s["load_s"], 2) or None, ""])
    return rows


def grid(result: Any) -> list[tuple[Any, str]]:
    """Row-major grid: one row per seed, one column per model (errors leave a caption-only gap)."""
    per_model = {cell.model: gallery_items(cell.result, f"{cell.model} · ") if cell.result else [] for cell in result.cells}
    items = []
    for row in range(len(result.seeds)):
        for cell in result.cells:
            if row < len(per_model[cell.model]):
                items.append(per_model[cell.model][row])
    return items


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    choices = model_choices(pool, "text-to-image")
    # Start on up to four models that can run here (embedded first), so Compare works at once.
    runnable = [value for label, value in choices if "weights missing" not in label]
    embedded = [m for m in runnable if pool.spec(m).backend == "embedded"]
    default = (embedded + [m for m in runnable if m not in embedded])[:4]
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=1, max_lines=6, elem_id="compare-prompt",
                                placeholder="a blue circle above a small yellow square on a black background")
            note = gr.Markdown(elem_id="compare-note")
            examples = gr.Dataset(components=[prompt], samples=example_prompts(pool, default),
                                  label="Examples (click one)", elem_id="compare-examples")
            negative = gr.Textbox(label="Negative prompt", lines=1)
        with gr.Column(scale=2):
            models = gr.CheckboxGroup(choices=choices, value=default, label="Models (2-4)",
                                      elem_id="compare-models")
            run = gr.Button("Compare", variant="primary", elem_id="compare-button")
    with gr.Accordion("Settings", open=False):
        own = gr.Checkbox(label="Each model at its own recommended size, steps, guidance and scheduler", value=True)
        with gr.Row():
            width = gr.Number(label="Width", value=512, precision=0, step=8, interactive=False)
            height = gr.Number(label="Height", value=512, precision=0, step=8, interactive=False)
            steps = gr.Number(label="Steps", value=25, precision=0, interactive=False)
            guidance = gr.Number(label="Guidance", value=7.0, step=0.5, interactive=False)
        with gr.Row():
            scheduler = gr.Dropdown(choices=scheduler_names(), value="default", label="Scheduler", interactive=False)
            seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0)
            batch = gr.Number(label="Seeds per model", value=1, precision=0)
            warmup = gr.Checkbox(label="Warm-up run for freshly loaded models", value=True)
    gallery = gr.Gallery(label="One column per model", show_label=False, columns=max(2, len(default)), height="auto",
                         format="png", elem_id="compare-gallery", object_fit="contain",
                         elem_classes=["model-columns"])
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, headers=TABLE_COLUMNS, label="Timings (warm, device-synchronised)", interactive=False,
                         elem_id="compare-table")
    gr.Markdown(MEMORY_NOTE, elem_classes=["footnote"])
    ask_box(pool, gallery, "compare")
    with gr.Accordion("All numbers (JSON)", open=False):
        record = gr.JSON(show_label=False)
    add_share_button(gallery, prompt, record)  # a permalink (?preview=<id>) to this result, read-only
    # The shared settings apply only when the user turns "each model's own" off.
    own.change(lambda on: [gr.update(interactive=not on)] * 5, [own], [width, height, steps, guidance, scheduler],
               api_name=False, queue=False)

    @user_errors
    def on_compare(prompt_text, negative_text, model_ids, w, h, n_steps, cfg, sched, seed_value, n_seeds, do_warmup,
                   use_own=False, progress=gr.Progress()):
        if use_own:  # None = each model's catalog default
            w = h = n_steps = cfg = None
            sched = "default"
        request = GenerateRequest(prompt=prompt_text, model="", negative_prompt=negative_text or "", width=w,
                                  height=h, steps=n_steps, guidance=cfg, scheduler=sched,
                                  seed=-1 if seed_value is None else seed_value,
                                  batch=1 if n_seeds is None else n_seeds)
        result = compare(request, list(model_ids or []), pool, progress=cells_progress(progress),
                         warmup=bool(do_warmup))
        payload = {"prompt": prompt_text, "seeds": result.seeds, "cells": [c.summary() for c in result.cells]}
        return gr.Gallery(value=grid(result), columns=len(result.cells)), table_rows(result), payload

    gr.on([prompt.change, models.change], lambda text, ids: prompt_note(pool, ids, text), [prompt, models], note,
          api_name=False, queue=False, show_progress="hidden", trigger_mode="always_last")
    examples.click(lambda sample: sample[0], examples, prompt, api_name=False, queue=False)
    run.click(on_compare, [prompt, negative, models, width, height, steps, guidance, scheduler, seed, batch, warmup, own],
              [gallery, table, record], api_name="compare")
    return {"prompt": prompt, "models": models, "gallery": gallery, "table": table}

"""Style tab: one content image, several style-transfer methods side by side, each scored.

Thin: everything real happens in :func:`genimg.tasks.style.stylize`. The ``/style`` API
returns the results (gallery, captions carry the scores), the score table, a JSON record
and a zip of the PNGs (each with its parameters) plus the table as CSV.
"""

from __future__ import annotations

import csv
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr

from genimg.models.catalog import default_model
from genimg.outputs import attach_metadata, save_png
from genimg.style import DEFAULT_METHODS, STYLES
from genimg.style.examples import content_images, style_images
from genimg.style.neural import NUM_PRESETS
from genimg.tasks.style import StyleResult, stylize
from genimg.ui.common import RESULTS_TABLE_HEIGHT, cells_progress, model_choices, user_errors
from genimg.ui.uploads import GatedImage, refuse_at_upload

COLUMNS = ["method", "SSIM (lum.) ↑", "feature dist. ↓", "Gram dist. ↓", "colour dist. ↓", "time s", "load s", "note"]
NOTE = ("**Scores** — content kept: SSIM of luminance (1 = same structure) and EfficientNet-Lite0 feature "
        "distance to the content (0 = same); style taken: Gram-matrix distance to the style image in the same "
        "EfficientNet-Lite0 stages, and RGB-histogram (Hellinger) distance. The first row scores the content "
        "itself. **Size** — every method works at the size chosen (longer side). The neural network is fully "
        "convolutional and runs at that size directly: no tiling and no upscaling. Gatys is an optimisation: "
        "seconds per iteration on a CPU.")


def caption(result: StyleResult, cell: Any) -> str:
    """What is written under an image: method, the four scores, time."""
    s = cell.scores
    parts = [cell.method]
    if s is not None:
        parts.append(f"SSIM {s.ssim:.3f}")
        if s.content_distance is not None:
            parts.append(f"feat {s.content_distance:.3f}")
        if s.gram_distance is not None:
            parts.append(f"Gram {s.gram_distance:.3f}")
        if s.color_distance is not None:
            parts.append(f"colour {s.color_distance:.3f}")
    parts.append(f"{cell.seconds:.2f} s")
    return " · ".join(parts)


def table_rows(result: StyleResult) -> list[list[Any]]:
    """The score table: the content as reference, then one row per method (errors included)."""
    def row(name: str, s: Any, seconds: Any, load: Any, note: str) -> list[Any]:
        if s is None:
            return [name, None, None, None, None, seconds, load, note]
        return [name, s.ssim, s.content_distance, s.gram_distance, s.color_distance, seconds, load, note]

    rows = []
    if result.reference is not None:
        rows.append(row("content (reference)", result.reference, None, None, "the input, unchanged"))
    for cell in result.cells:
        if cell.error is not None:
            rows.append(row(cell.method, None, None, None, cell.error))
        else:
            rows.append(row(cell.method, cell.scores, round(cell.seconds, 3), round(cell.load_seconds, 3), cell.notes))
    return rows


def bundle(result: StyleResult) -> str:
    """A zip with every result (PNG with its record), the working content/style, and the table (CSV, JSON)."""
    folder = Path(tempfile.mkdtemp(prefix="genimg-style-"))
    path = folder / "style-results.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for cell in result.cells:
            if cell.image is not None:
                name = f"style-{cell.method}.png"
                zf.write(save_png(cell.image, result.record(cell), folder / name), name)
        result.content.save(folder / "content.png")
        zf.write(folder / "content.png", "content.png")
        if result.style is not None:
            result.style.save(folder / "style.png")
            zf.write(folder / "style.png", "style.png")
        csv_path = folder / "scores.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(table_rows(result))
        zf.write(csv_path, "scores.csv")
        zf.writestr("style.json", json.dumps(summary(result), indent=2, default=str))
    return str(path)


def summary(result: StyleResult) -> dict[str, Any]:
    """The JSON record shown in the tab and stored in the zip."""
    return {"params": result.params, "reference": result.reference.as_dict() if result.reference else None,
            "cells": [cell.summary() for cell in result.cells]}


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    method_options = [(m.label, m.id) for m in STYLES]
    diffusion = model_choices(pool, "image-to-image")
    contents = [str(p) for p in content_images()]
    styles = [str(p) for p in style_images()]
    max_side = settings.limits.max_side
    with gr.Row():
        with gr.Column(scale=1):
            content = GatedImage(label="Content image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                               elem_id="style-content", height=280)
        with gr.Column(scale=1):
            style = GatedImage(label="Style image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             elem_id="style-style", height=280)
        with gr.Column(scale=1):
            methods = gr.CheckboxGroup(choices=method_options, value=list(DEFAULT_METHODS), label="Methods",
                                       elem_id="style-methods")
            strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength",
                                 info="0 = the content, 1 = full style (meaning per method: see the docs)")
            preserve = gr.Checkbox(value=False, label="Preserve content colours (luminance-only transfer)")
            size = gr.Slider(64, max_side, value=min(512, max_side), step=32, label="Size (longer side, px)")
            run = gr.Button("Stylize", variant="primary", elem_id="style-button")
    if contents and styles:
        pairs = [[c, s] for c, s in zip(contents, styles)] + [[contents[0], s] for s in styles[len(contents):]]
        gr.Examples(examples=pairs, inputs=[content, style], label="Examples (public domain / CC0 / rendered)",
                    elem_id="style-examples")
    with gr.Accordion("Method options", open=False):
        with gr.Row():
            preset = gr.Dropdown(choices=list(range(NUM_PRESETS)), value=0, label="Preset (built-in style 0-25)")
            iterations = gr.Number(value=100, precision=0, label="Gatys iterations")
            content_weight = gr.Number(value=1.0, label="Gatys content weight")
            style_weight = gr.Number(value=5.0, label="Gatys style weight")
            early_stop = gr.Checkbox(value=True, label="Gatys early stop")
        with gr.Row():
            prompt = gr.Textbox(label="Style prompt (SDEdit)", placeholder="an oil painting in the style of van Gogh",
                                scale=3)
            model = gr.Dropdown(choices=diffusion, value=default_model(pool.catalog, "image-to-image"),
                                label="Diffusion model (SDEdit)", allow_custom_value=True)
            steps = gr.Number(value=None, precision=0, label="Steps (empty = model's)")
            seed = gr.Number(value=0, precision=0, label="Seed")
    gr.Markdown(NOTE)
    gallery = gr.Gallery(label="Results (scores under each)", columns=4, height="auto", format="png",
                         object_fit="contain", elem_id="style-gallery", elem_classes=["results-grid"])
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, headers=COLUMNS, label="Scores", interactive=False, elem_id="style-table", wrap=True,
                         column_widths=["16%", "8%", "9%", "8%", "8%", "7%", "7%", "37%"])
    download = gr.File(label="Download all (PNGs with their parameters, scores CSV, JSON)", elem_id="style-download")
    with gr.Accordion("Record (JSON)", open=False):
        record = gr.JSON(show_label=False)

    refuse_at_upload(content, style)

    @user_errors
    def on_stylize(content_path, style_path, chosen, strength_value, preserve_value, size_value, preset_value,
                   iterations_value, content_w, style_w, early, prompt_text, model_id, steps_value, seed_value,
                   progress=gr.Progress()):
        result = stylize(content_path, style_path or None, style_prompt=prompt_text or None, methods=chosen or [],
                         strength=strength_value, preserve_colors=bool(preserve_value), size=size_value,
                         preset=preset_value, model=model_id or None, steps=steps_value or None,
                         seed=0 if seed_value is None else seed_value, iterations=iterations_value,
                         content_weight=content_w, style_weight=style_w, early_stop=bool(early),
                         pool=pool, progress=cells_progress(progress))
        items = [(attach_metadata(cell.image, result.record(cell)), caption(result, cell))
                 for cell in result.cells if cell.image is not None]
        return items, table_rows(result), bundle(result), summary(result)

    run.click(on_stylize, [content, style, methods, strength, preserve, size, preset, iterations, content_weight,
                           style_weight, early_stop, prompt, model, steps, seed],
              [gallery, table, download, record], api_name="style")
    return {"content": content, "style": style, "methods": methods, "gallery": gallery, "table": table,
            "download": download}

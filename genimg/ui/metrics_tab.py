"""Metrics tab: upload an image (and optionally a reference), tick metrics, read a table.

Thin: the work happens in :func:`genimg.tasks.metrics.compute_metrics`. API name ``/metrics``:
inputs (image, reference, metric keys, resize flag) → (table rows, JSON result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from genimg.examples import EXAMPLES_DIR
from genimg.metrics.registry import METRICS, metric_table, per_image
from genimg.outputs import json_safe
from genimg.tasks.metrics import compute_metrics, rows_for_table
from genimg.ui.common import RESULTS_TABLE_HEIGHT, user_errors
from genimg.ui.uploads import GatedImage, refuse_at_upload

COLUMNS = ["metric", "value", "direction", "what it means"]


def metric_choices() -> list[tuple[str, str]]:
    """(label, key) for the checkboxes; metrics that cannot run here are marked."""
    out = []
    for row in metric_table():
        kind = "needs reference" if row["needs_reference"] else "no reference"
        label = f"{row['label']} ({kind})" + ("" if row["available"] else " — unavailable here")
        out.append((label, row["key"]))
    return out


def example_pairs() -> list[list[str | None]]:
    """(image, reference) examples: a photo alone, and a JPEG-degraded copy scored against its original."""
    folder = EXAMPLES_DIR
    pairs = [[str(folder / "chelsea.png"), None],
             [str(folder / "metrics" / "astronaut-jpeg20.jpg"), str(folder / "astronaut.png")]]
    return [p for p in pairs if all(x is None or Path(x).is_file() for x in p)]


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    defaults = [m.id for m in per_image() if m.id not in ("lpips", "mse")]
    with gr.Row():
        image = GatedImage(label="Image to score", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                         elem_id="metrics-image")
        reference = GatedImage(label="Reference (optional: enables PSNR, SSIM, ...)", type="filepath", image_mode=None,
                             sources=["upload", "clipboard"], elem_id="metrics-reference")
    pairs = example_pairs()
    if pairs:
        gr.Examples(examples=pairs, inputs=[image, reference], label="Examples (image, reference)",
                    elem_id="metrics-examples")
    with gr.Row():
        chosen = gr.CheckboxGroup(choices=metric_choices(), value=defaults, label="Metrics",
                                  elem_id="metrics-choice")
    with gr.Row():
        resize = gr.Checkbox(value=False, label="Resize the image to the reference's size (otherwise sizes must match)")
        run = gr.Button("Compute", variant="primary", elem_id="metrics-button")
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, headers=COLUMNS, label="Results (– = cannot apply here; the reason is given)",
                         interactive=False, wrap=True, elem_id="metrics-table",
                         column_widths=["18%", "27%", "15%", "40%"])
    with gr.Accordion("All values and timings (JSON)", open=False):
        details = gr.JSON(show_label=False)

    refuse_at_upload(image, reference)

    @user_errors
    def on_compute(image_path, reference_path, keys, resize_flag):
        has_reference = bool(reference_path)
        # Full-reference metrics are dropped, not refused, when no reference was uploaded:
        # the defaults tick them and a person may just want the no-reference numbers.
        keys = [k for k in (keys or []) if has_reference or k not in METRICS or not METRICS[k].needs_reference]
        result = compute_metrics(image_path, reference_path or None, metrics=keys or None,
                                 resize_to_match=bool(resize_flag))
        return rows_for_table(result), json_safe(result)

    run.click(on_compute, [image, reference, chosen, resize], [table, details], api_name="metrics")
    return {"image": image, "reference": reference, "metrics": chosen, "table": table}

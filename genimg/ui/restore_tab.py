"""Restore tab: degrade an image on purpose (or not), restore it with several methods, compare.

Thin: everything real happens in :func:`genimg.tasks.restore.restore`. The ``/restore``
API returns the outputs (gallery), the score table, a JSON summary and a zip of
everything; the before/after sliders are filled from the same result afterwards.
"""

from __future__ import annotations

import csv
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from genimg.examples import example_paths
from genimg.outputs import attach_metadata
from genimg.restore.methods import MAX_METHODS, method_task, restore_methods
from genimg.tasks.restore import RestoreResult, restore
from genimg.ui.common import RESULTS_TABLE_HEIGHT, cells_progress, user_errors
from genimg.ui.uploads import GatedImage, GatedImageEditor, refuse_at_upload, verdict

NONE = "none: restore my image"
PRESETS = [NONE, "noise:25", "noise:15", "poisson:30", "blur:2", "motion:9:30", "jpeg:20", "down:2", "down:4",
           "mask:strokes", "mask:box", "mask:user", "noise:25,jpeg:20", "blur:2,noise:5"]
SLOTS = 8  # before/after sliders shown; more methods still appear in the gallery, table and zip
DEFAULT_METHODS = ("nlm", "wavelet", "waifu2x-noise3")
COLUMNS = ["method", "task", "PSNR dB", "SSIM", "BRISQUE", "time s", "load s", "note"]


def method_choices(pool: Any, task: str | None = None) -> list[tuple[str, str]]:
    """(label, id) for the method checkboxes (of one ``task``, or all, by task): name, and whether it can run here."""
    from genimg.restore.methods import RESTORE_TASKS

    choices = []
    for spec in sorted(restore_methods(pool, task), key=lambda s: RESTORE_TASKS.index(method_task(s) or "face")):
        ok, _ = pool.availability(spec.id)
        prefix = "" if task else f"[{method_task(spec)}] "
        choices.append((prefix + spec.name + ("" if ok else " — weights missing"), spec.id))
    return choices


def mask_from_editor(value: Any) -> np.ndarray | None:
    """The painted strokes of an ImageEditor value as an alpha mask (None when nothing was painted)."""
    if not value:
        return None
    layers = value.get("layers") if isinstance(value, dict) else getattr(value, "layers", None)
    painted = None
    for layer in layers or []:
        if layer is None:
            continue
        array = np.asarray(layer)
        alpha = array[..., 3] if array.ndim == 3 and array.shape[2] == 4 else (array.max(axis=2) if array.ndim == 3 else array)
        painted = alpha > 0 if painted is None else (painted | (alpha > 0))
    if painted is None or not painted.any():
        return None
    return painted.astype(np.uint8) * 255


def table_frame(result: RestoreResult):
    """The score table as a pandas Styler: best PSNR / SSIM / BRISQUE / time per column highlighted."""
    import pandas as pd

    rows = []
    for row in result.table():
        rows.append([row["method"], row.get("task", ""), row.get("psnr"), row.get("ssim"), row.get("brisque"),
                     row.get("seconds"), row.get("load_s"), row.get("error", "")])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame["BRISQUE"].isna().all():  # scored only for upscalers and plain restores: no empty column
        frame = frame.drop(columns=["BRISQUE"])
    best = result.best()
    targets = {"PSNR dB": best.get("psnr"), "SSIM": best.get("ssim"), "BRISQUE": best.get("brisque"),
               "time s": best.get("seconds")}

    def highlight(column: Any) -> list[str]:
        winner = targets.get(column.name)
        return ["background-color: #c8f7c5; font-weight: bold" if winner and m == winner else ""
                for m in frame["method"]]

    return frame.style.apply(highlight, axis=0).format(precision=4, na_rep="–")


def best_markdown(result: RestoreResult) -> str:
    best = result.best()
    names = {"psnr": "PSNR", "ssim": "SSIM", "brisque": "BRISQUE (no-reference, lower is better)", "seconds": "fastest"}
    parts = [f"{names[k]}: **{v}**" for k, v in best.items()]
    where = (f"Degradation `{result.degradation['spec']}` (seed {result.seed}); scores against the original with "
             f"{result.metrics}." if result.degradation else "Restored as given: no reference to score against.")
    if result.degradation and "psnr" not in best and any(o.psnr is not None for o in result.outputs):
        parts.insert(0, "no method beat the degraded input itself")
    return where + ("  Best — " + " · ".join(parts) if parts else "")


# What each degradation calls for: the methods ticked when it is chosen (those that can run here).
SUITABLE = {"noise": ("nlm", "wavelet", "waifu2x-noise3"), "poisson": ("nlm", "wavelet", "dae"),
            "jpeg": ("waifu2x-noise3", "wavelet", "nlm"), "blur": ("richardson-lucy", "wiener"),
            "motion": ("richardson-lucy", "wiener"), "down": ("bicubic", "lanczos", "realesrgan-x4plus"),
            "mask": ("biharmonic", "telea", "navier-stokes"), "none": ("nlm", "realesrgan-x4plus")}


def suitable_methods(pool: Any, spec_text: str | None) -> list[str]:
    """The methods to preselect for a degradation spec: those suited to its operations that can run here."""
    from genimg.restore.degrade import parse_spec
    from genimg.errors import GenimgError

    try:
        ops = [op.name for op in parse_spec(None if (spec_text or "").strip().lower() in ("", "none", NONE.lower())
                                            else spec_text)] or ["none"]
    except GenimgError:
        return []
    chosen: list[str] = []
    for op in ops:
        for method in SUITABLE.get(op, ()):
            if method in pool.catalog and method not in chosen and pool.availability(method)[0]:
                chosen.append(method)
    return chosen[:MAX_METHODS]


def bundle(result: RestoreResult) -> str:
    """A zip with the original, the degraded input, every output (PNG with its record), the table (CSV, JSON)."""
    folder = Path(tempfile.mkdtemp(prefix="genimg-restore-"))
    path = folder / "restore-results.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        def add(name: str, image: Any, record: dict[str, Any]) -> None:
            from genimg.outputs import save_png

            zf.write(save_png(image, record, folder / name), name)

        if result.original is not None:
            add("original.png", result.original, result.record())
        add("degraded.png" if result.degradation else "input.png", result.degraded, result.record())
        for out in result.outputs:
            if out.image is not None:
                add(f"{out.method}.png", out.image, {**result.record(out), "width": out.image.width,
                                                    "height": out.image.height})
        rows = result.table()
        csv_path = folder / "restore.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["method", "task", "psnr", "ssim", "brisque", "seconds",
                                                        "load_s", "error"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        zf.write(csv_path, "restore.csv")
        zf.writestr("restore.json", json.dumps({"table": rows, "best": result.best(), **result.record()},
                                               indent=2, default=str))
    return str(path)


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    from genimg.restore.methods import RESTORE_TASKS

    choices = method_choices(pool)
    defaults = suitable_methods(pool, "noise:25")
    examples = [str(p) for p in example_paths()]
    with gr.Row():
        with gr.Column(scale=1):
            image = GatedImage(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                               elem_id="restore-image", height=320)
            if examples:
                gr.Examples(examples=examples, inputs=[image], label="Examples (public domain / CC0)",
                            elem_id="restore-examples")
        with gr.Column(scale=1):
            # One field is the degradation: pick a preset or type your own (the run uses exactly what it shows).
            spec = gr.Dropdown(choices=PRESETS, value="noise:25", allow_custom_value=True, elem_id="restore-spec",
                               label="Degradation (pick a preset or type a spec)",
                               info="noise:σ, poisson:peak, blur:σ, motion:len:angle, jpeg:q, down:2|3|4, "
                                    "mask:strokes|box|user — comma-separated, applied in order; 'none' restores "
                                    "your image as it is")
            groups = {}
            with gr.Group():
                for task in RESTORE_TASKS:
                    options = method_choices(pool, task)
                    if options:
                        ids = {mid for _label, mid in options}
                        groups[task] = gr.CheckboxGroup(choices=options, label=task.capitalize(),
                                                        value=[m for m in defaults if m in ids],
                                                        elem_id=f"restore-methods-{task}")
            # What the run (and the API's `chosen`) uses: the union of the groups above.
            methods = gr.CheckboxGroup(choices=choices, value=defaults, label=f"Methods (at most {MAX_METHODS})",
                                       elem_id="restore-methods", visible=False)
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0)
                scale = gr.Dropdown(choices=["auto", "2", "3", "4"], value="auto",
                                    label="Upscale ×(no degradation)")
            with gr.Accordion("Mask and prompt (inpainting)", open=False):
                mask = GatedImageEditor(label="Mask: paint the holes (for mask:user or inpainting your image)",
                                        type="numpy", image_mode="RGBA", sources=["upload"], height=320,
                                        elem_id="restore-mask")
                prompt = gr.Textbox(label="Prompt for diffusion methods", value="")
            run = gr.Button("Restore", variant="primary", elem_id="restore-button")
    best = gr.Markdown(elem_id="restore-best")
    table = gr.Dataframe(max_height=RESULTS_TABLE_HEIGHT, headers=COLUMNS, label="Scores (click a header to sort; best per column highlighted)",
                         interactive=False, elem_id="restore-table")
    sliders = []
    for row_start in range(0, SLOTS, 2):
        with gr.Row():
            for _ in range(2):
                sliders.append(gr.ImageSlider(label="before / after", type="pil", visible=False, format="png",
                                              max_height=420))
    gallery = gr.Gallery(label="All outputs", columns=4, height="auto", format="png", object_fit="contain",
                         elem_id="restore-gallery", elem_classes=["results-grid"])
    download = gr.File(label="Download all (PNGs with their parameters, CSV, JSON)", elem_id="restore-download")
    with gr.Accordion("Record (JSON)", open=False):
        summary = gr.JSON(show_label=False)
    state = gr.State(None)

    group_list = list(groups.values())

    def pick_for(spec_text: str):
        chosen = suitable_methods(pool, spec_text)
        return [gr.CheckboxGroup(value=[m for m in chosen if m in {c[1] for c in g.choices}]) for g in group_list]

    spec.change(pick_for, spec, group_list, api_name=False, queue=False, show_progress="hidden")
    for group in group_list:
        group.change(lambda *values: [m for value in values for m in (value or [])], group_list, methods,
                     api_name=False, queue=False, show_progress="hidden")
    refuse_at_upload(image, mask)

    def mirror(payload: Any) -> Any:
        """The painting canvas starts from the chosen image -- only one the gate accepts (nothing decodes it before)."""
        path = (payload or {}).get("path") if isinstance(payload, dict) else None
        if not path or verdict(path, "image") is not None:
            return None
        return {"background": path, "layers": [], "composite": path}

    image.change(mirror, image, mask, api_name=False, preprocess=False, show_progress="hidden")

    @user_errors
    def on_restore(path, spec_text, chosen, seed_value, scale_value, mask_value, prompt_text,
                   progress=gr.Progress()):
        painted = mask_from_editor(mask_value)
        spec_value = None if (spec_text or "").strip().lower() in ("", "none", NONE.lower()) else spec_text
        result = restore(path, chosen or [], degrade=spec_value, seed=0 if seed_value is None else seed_value,
                         progress=cells_progress(progress), mask=painted,
                         scale=None if scale_value in (None, "", "auto") else int(scale_value),
                         prompt=prompt_text or "", pool=pool)
        items = []
        for out in result.outputs:
            if out.image is not None:
                caption = out.method + (f" · {out.psnr:.2f} dB" if out.psnr is not None else "") + f" · {out.seconds:.2f} s"
                items.append((attach_metadata(out.image, {**result.record(out), "width": out.image.width,
                                                          "height": out.image.height}), caption))
        record = {"table": result.table(), "best": result.best(), **result.record()}
        return items, table_frame(result), best_markdown(result), record, bundle(result), result

    def fill_sliders(result: RestoreResult | None):
        updates = []
        outputs = [o for o in (result.outputs if result else []) if o.image is not None]
        for i in range(SLOTS):
            if i < len(outputs):
                out = outputs[i]
                before = result.degraded
                if before.size != out.image.size:  # upscalers: show the input at the output's size
                    from PIL import Image

                    before = before.resize(out.image.size, Image.Resampling.NEAREST)
                score = f" — {out.psnr:.2f} dB, SSIM {out.ssim:.3f}" if out.psnr is not None else ""
                updates.append(gr.update(value=(before, out.image), visible=True,
                                         label=f"input / {out.method}{score}"))
            else:
                updates.append(gr.update(value=None, visible=False))
        return updates

    run.click(on_restore, [image, spec, methods, seed, scale, mask, prompt],
              [gallery, table, best, summary, download, state], api_name="restore").then(
        fill_sliders, state, sliders, api_name=False)
    return {"image": image, "spec": spec, "methods": methods, "table": table, "gallery": gallery, "sliders": sliders,
            "download": download}

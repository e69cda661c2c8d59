"""PNG Info tab: drop a generated image, read its parameters (A1111, ComfyUI, InvokeAI, ours), send them to Generate."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from genimg.errors import GenimgError
from genimg.params import scheduler_names
from genimg.pnginfo import read_info
from genimg.ui.common import user_errors
from genimg.ui.uploads import GatedImage, refuse_at_upload

FIELDS = [("prompt", "Prompt"), ("negative_prompt", "Negative prompt"), ("model", "Model"),
          ("model_hash", "Model hash"), ("sampler", "Sampler"), ("steps", "Steps"), ("guidance", "CFG scale"),
          ("seed", "Seed"), ("width", "Width"), ("height", "Height")]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def info_rows(info: Any) -> list[list[str]]:
    """[field, value] rows: the shared fields the writer gave, then every extra field as written."""
    rows = [[label, _text(getattr(info, key))] for key, label in FIELDS if getattr(info, key) not in (None, "")]
    rows += [[str(key), _text(value)] for key, value in info.extra.items() if value not in (None, "", [], {})]
    return rows


def read_file(path: Any) -> Any:
    """The GenerationInfo of an uploaded file (already through the image gate). Raises GenimgError."""
    from PIL import Image

    if not path:
        raise GenimgError("no image given: drop a PNG, JPEG or WebP made by genimg, AUTOMATIC1111, ComfyUI or InvokeAI")
    with Image.open(path) as image:
        return read_info(image)


def generate_values(info: dict[str, Any], pool: Any) -> tuple[dict[str, Any], list[str]]:
    """The Generate tab's values for a read record, and the notes on what could not be filled as written."""
    fields = dict(info.get("generate") or {})
    notes = []
    model = fields.get("model")
    if model is not None:
        try:
            fields["model"] = pool.spec(model).id
        except GenimgError:
            notes.append(f"model {model!r} is not in this catalog: the current model is kept")
            fields.pop("model")
    scheduler = fields.get("scheduler")
    if scheduler not in scheduler_names():
        if info.get("sampler"):
            notes.append(f"sampler {info['sampler']!r} has no equivalent here: the model's own scheduler is used")
        fields["scheduler"] = "default"
    extra = [k for k, v in (info.get("extra") or {}).items() if v not in (None, "", [], {})]
    if extra and info.get("source") != "genimg":
        notes.append("not used by Generate (shown above): " + ", ".join(extra[:12]) + (" …" if len(extra) > 12 else ""))
    return fields, notes


def build(pool: Any, settings: Any, generate: dict[str, Any] | None = None, tabs: Any = None) -> dict[str, Any]:
    """Lay out the tab; ``generate`` is the Generate tab's components (for "Send to Generate"), ``tabs`` the
    gr.Tabs holding both (to switch to Generate)."""
    with gr.Row():
        with gr.Column(scale=2):
            image = GatedImage(label="Image (PNG, JPEG or WebP with its generation parameters)", type="filepath",
                               image_mode=None, sources=["upload", "clipboard"], height=320, elem_id="info-image")
            send = gr.Button("Send to Generate", variant="primary", elem_id="info-send", interactive=False)
        with gr.Column(scale=3):
            summary = gr.Markdown("Drop an image to read how it was made.", elem_id="info-summary")
            table = gr.Dataframe(headers=["field", "value"], interactive=False, wrap=True, elem_id="info-table",
                                 column_widths=["25%", "75%"])
    with gr.Accordion("Everything read (JSON)", open=False):
        record = gr.JSON(show_label=False)
    refuse_at_upload(image)

    @user_errors
    def on_read(image):
        """The /info API: ``image`` is the uploaded file (through the image gate)."""
        path = image
        if not path:  # the image was cleared
            return "Drop an image to read how it was made.", [], None, gr.update(interactive=False)
        try:
            info = read_file(path)
        except GenimgError as exc:  # a plain or stripped image: an answer, not a failure
            return f"**{exc}.**", [], {"error": str(exc)}, gr.update(interactive=False)
        payload = {**info.as_dict(), "generate": info.generate_fields()}
        text = f"**Written by {info.source}.**" + ("" if info.extra == {} else
                                                   f" {len(info.extra)} more field(s) below the shared ones.")
        return text, info_rows(info), payload, gr.update(interactive=True)

    image.change(on_read, [image], [summary, table, record, send], api_name="info")
    if generate is not None:
        keys = ["prompt", "negative", "model", "width", "height", "steps", "guidance", "scheduler", "seed"]
        targets = [generate[k] for k in keys]

        def on_send(payload):
            if not payload or "generate" not in payload:
                raise gr.Error("read an image with generation parameters first", print_exception=False)
            fields, notes = generate_values(payload, pool)
            names = {"negative": "negative_prompt"}
            values = [fields.get(names.get(k, k), gr.skip()) for k in keys]
            pending = {names.get(k, k): fields[names.get(k, k)] for k in keys if names.get(k, k) in fields}
            message = "Sent to Generate." + (" " + "; ".join(notes) + "." if notes else "")
            return [*values, pending, message] + ([gr.Tabs(selected="generate")] if tabs is not None else [])

        outputs = [*targets, generate["pending"], summary] + ([tabs] if tabs is not None else [])
        send.click(on_send, [record], outputs, api_name=False, queue=False)
    return {"image": image, "send": send, "table": table}

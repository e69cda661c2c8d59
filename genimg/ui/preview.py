"""Shared previews: "Share" stores a result and gives a permalink; ``?preview=<id>`` opens it read-only.

The stored images are shown as they were made (nothing is generated again), on any replica, since
they are in the database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gradio as gr

from genimg.errors import GenimgError
from genimg.imageio import load_image
from genimg.tasks.arena import open_preview, share_compare
from genimg.ui.common import user_errors

PREVIEW_COLUMNS = ["image", "model", "wall s", "speed", "size"]


def permalink(preview_id: str, request: gr.Request | None) -> str:
    """The page's own address with ``?preview=<id>`` (relative when the page is unknown)."""
    page = (getattr(request, "headers", None) or {}).get("referer") if request is not None else None
    if not page:
        return f"?preview={preview_id}"
    parts = urlsplit(page)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, f"preview={preview_id}", ""))


def share_markdown(preview_id: str, request: gr.Request | None) -> str:
    """Markdown with the permalink of a stored preview."""
    url = permalink(preview_id, request)
    return f"Shared — anyone with this link sees it read-only: [{url}]({url})"


def add_share_button(gallery: Any, prompt: Any, record: Any) -> None:
    """A "Share" button and its link under a Compare result (``gallery`` of (image, caption), its JSON ``record``)."""
    with gr.Row():
        button = gr.Button("Share this result", size="sm", elem_id="compare-share")
        link = gr.Markdown(elem_id="compare-link")

    @user_errors
    def on_share(prompt_text, items, payload, request: gr.Request = None):
        if not items or not payload:
            raise GenimgError("nothing to share yet: run a comparison first")
        images, captions = [], []
        for item in items:
            source, caption = (item if isinstance(item, (list, tuple)) else (item, ""))
            source = source.get("path") if isinstance(source, dict) else source
            images.append(load_image(source, what="shared image").image)  # the one gate, even for our own files
            captions.append(caption or "")
        # The prompt the result was made with (the box may have been edited since).
        preview_id = share_compare(payload.get("prompt") or prompt_text or "", list(payload.get("seeds", [])),
                                   list(payload.get("cells", [])),
                                   images, captions)
        return share_markdown(preview_id, request)

    button.click(on_share, [prompt, gallery, record], link, api_name=False)


def _rows(cells: list[dict[str, Any]], captions: list[str]) -> list[list[Any]]:
    rows = []
    for i, cell in enumerate(cells):
        if cell.get("error"):
            rows.append([captions[i] if i < len(captions) else "", cell.get("model"), None, None, cell["error"]])
            continue
        speed = (f"{cell.get('steps_per_s', 0):.2f} steps/s" if cell.get("steps", 0) > 1
                 else f"{cell.get('images_per_s') or 0:.1f} images/s")
        rows.append([captions[i].split(" · ")[0] if i < len(captions) else "", cell.get("name", cell.get("model")),
                     cell.get("wall_s"), speed, f"{cell.get('width')}×{cell.get('height')}"])
    return rows


def build(demo: gr.Blocks) -> None:
    """A read-only panel at the top of the page, shown when the address carries ``?preview=<id>``."""
    with gr.Column(visible=False, elem_id="preview-panel") as panel:
        title = gr.Markdown(elem_id="preview-title")
        gallery = gr.Gallery(show_label=False, columns=2, height="auto", format="png", object_fit="contain",
                             elem_id="preview-gallery", elem_classes=["model-columns"], interactive=False)
        table = gr.Dataframe(headers=PREVIEW_COLUMNS, interactive=False, elem_id="preview-table")

    def on_load(request: gr.Request):
        preview_id = (getattr(request, "query_params", None) or {}).get("preview")
        if not preview_id:
            return gr.update(visible=False), "", None, None
        try:
            record, images = open_preview(preview_id)
        except GenimgError as exc:
            return gr.update(visible=True), f"### Shared preview\n⚠ {exc}", None, None
        payload = record["payload"]
        captions = payload.get("captions") or [""] * len(images)
        kind = "Arena battle" if record["kind"] == "arena" else "Comparison"
        seeds = ", ".join(str(s) for s in payload.get("seeds", []))
        vote = f" · vote: **{payload['choice']}**" if payload.get("choice") else ""
        title_text = (f"### Shared preview — {kind} (read-only)\n**Prompt:** {record['prompt']} · seed {seeds}{vote}  \n"
                      "Stored images, exactly as they were made; nothing is generated again.")
        columns = max(1, len(images) // max(1, len(payload.get("seeds", [1]))))
        return (gr.update(visible=True), title_text, gr.Gallery(value=list(zip(images, captions)), columns=columns),
                _rows(payload.get("cells", []), captions))

    demo.load(on_load, None, [panel, title, gallery, table], api_name=False)

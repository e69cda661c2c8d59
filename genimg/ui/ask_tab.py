"""Ask tab (upload an image, ask a question) and the Ask box under Generate's and Compare's results.

Thin: the work happens in :func:`genimg.tasks.ask.ask`. API name ``/ask``: inputs (image, question,
model) → the answer's JSON (``answer``, ``model``, ``seconds``, ``answerable``, ``type``, ...).
The answer comes from the pixels only (the task passes the answerer decoded pixels, never the file).
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from genimg.errors import GenimgError
from genimg.examples import EXAMPLES_DIR
from genimg.outputs import json_safe
from genimg.models.catalog import default_model
from genimg.tasks.ask import TASK, answerers, ask
from genimg.ui.common import model_choices, user_errors
from genimg.ui.uploads import GatedImage, refuse_at_upload

EXAMPLES = (("relation.png", "is the green circle to the left of the white star?"),
            ("count.png", "how many stars are there?"),
            ("position.png", "where is the triangle?"))


def answer_markdown(result: dict[str, Any]) -> str:
    """The answer as a person reads it: the answer in bold, then who answered and how fast."""
    kind = f" · {result['type']} question" if result.get("type") else ""
    scope = "" if result["answerable"] else " · outside what this answerer can see"
    footnote = f"{result['model']} · {result['seconds']:.2f} s{kind}{scope}"
    return f"**{html.escape(result['answer'])}**\n\n<span class='footnote'>{footnote}</span>"


def _answerer_picker(pool: Any, elem_id: str) -> gr.Dropdown:
    # A catalog without answerers still builds (the task then says what is missing).
    return gr.Dropdown(choices=model_choices(pool, TASK), value=default_model(pool.catalog, TASK), label="Answerer",
                       allow_custom_value=True, elem_id=elem_id, scale=2)


def _gallery_image(items: Any, index: int | None) -> Any:
    """The file (path) of image ``index`` (default: the first) among a Gallery's items."""
    if not items:
        raise GenimgError("no image to ask about yet: generate one first")
    item = items[min(max(int(index or 0), 0), len(items) - 1)]
    if isinstance(item, (tuple, list)):
        item = item[0]
    if isinstance(item, dict):
        item = (item.get("image") or {}).get("path") if isinstance(item.get("image"), dict) else item.get("path")
    return item


def ask_box(pool: Any, gallery: gr.Gallery, prefix: str) -> dict[str, Any]:
    """An "Ask about this image" box under a results gallery: the selected image (else the first), a question,
    an answerer, the answer. Events are not part of the API (``/ask`` is)."""
    selected = gr.State(0)
    with gr.Accordion("Ask about an image (click one to choose it; the first by default)", open=False,
                      elem_id=f"{prefix}-ask"):
        with gr.Row(equal_height=True):
            question = gr.Textbox(label="Question", placeholder="what colour is the circle?", scale=3,
                                  elem_id=f"{prefix}-ask-question", max_length=300)
            model = _answerer_picker(pool, f"{prefix}-ask-model")
            button = gr.Button("Ask", elem_id=f"{prefix}-ask-button", scale=0, min_width=80)
        answer = gr.Markdown(elem_id=f"{prefix}-ask-answer")

    def on_select(evt: gr.SelectData) -> int:
        return int(evt.index or 0)

    @user_errors
    def on_ask(items, index, question_text, model_id):
        return answer_markdown(ask(pool, _gallery_image(items, index), question_text, model_id))

    gallery.select(on_select, None, selected, api_visibility="private", queue=False)
    gr.on([button.click, question.submit], on_ask, [gallery, selected, question, model], answer,
          api_visibility="private")
    return {"question": question, "model": model, "button": button, "answer": answer}


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the Ask tab inside the current Blocks context; return its components."""
    gr.Markdown("Ask a question about an image. The answer comes from the pixels only (never from a file's "
                "metadata). **genimg scene QA** answers colour, shape, count, position, background and "
                "left/right/above/below questions about flat shapes on a plain background; vision-language "
                "models answer anything where their weights are present.")
    with gr.Row():
        with gr.Column(scale=1):
            image = GatedImage(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                               elem_id="ask-image", height=320)
        with gr.Column(scale=1):
            question = gr.Textbox(label="Question", placeholder="what colour is the circle?", elem_id="ask-question",
                                  max_length=300)
            model = _answerer_picker(pool, "ask-model")
            run = gr.Button("Ask", variant="primary", elem_id="ask-button")
            answer = gr.Markdown(elem_id="ask-answer")
            with gr.Accordion("What the answerer saw, timings (JSON)", open=False):
                details = gr.JSON(show_label=False)
    examples = [[str(EXAMPLES_DIR / "ask" / name), q] for name, q in EXAMPLES if (EXAMPLES_DIR / "ask" / name).is_file()]
    if examples:
        gr.Examples(examples=examples, inputs=[image, question], label="Examples (image, question)",
                    elem_id="ask-examples")
    refuse_at_upload(image)

    @user_errors
    def on_ask(image, question, model):
        result = json_safe(ask(pool, image, question, model))
        return answer_markdown(result), result

    run.click(on_ask, [image, question, model], [answer, details], api_name="ask")
    question.submit(on_ask, [image, question, model], [answer, details], api_visibility="private")
    return {"image": image, "question": question, "model": model, "answer": answer, "answerers": answerers(pool)}

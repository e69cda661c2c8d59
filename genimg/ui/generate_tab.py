"""Generate tab: one prompt → images on one model, with timings and parameters."""

from __future__ import annotations

from typing import Any

import gradio as gr

from genimg.models.catalog import default_model
from genimg.outputs import attach_metadata
from genimg.tasks.batching import Coalescer
from genimg.params import scheduler_names
from genimg.tasks.generate import GenerateRequest
from genimg.ui.ask_tab import ask_box
from genimg.ui.common import (featured_examples, model_choices, model_id_for_name, model_note, prompt_note,
                              step_progress, user_errors, vocabulary_rows)


def model_defaults(pool: Any, model_id: str | None) -> tuple[Any, Any, Any, Any, str]:
    """(width, height, steps, guidance, scheduler) the settings fields start from for a model."""
    try:
        d = pool.spec(model_id).defaults if model_id else {}
    except Exception:  # a typed, not-yet-valid model id: keep generic defaults
        d = {}
    return (d.get("width", 512), d.get("height", 512), d.get("steps", 25), d.get("guidance", 7.0),
            d.get("scheduler", "default"))


def timing_markdown(summary: dict[str, Any]) -> str:
    """One line a person can read: wall time, speed, stages, memory, load, shared batch."""
    shared = summary.get("batch_requests", 1)
    # A one-step model (GAN, VAE, genimg-emoji) has no steps to count: its speed is images per second.
    speed = (f"{summary['steps_per_s']:.2f} steps/s" if summary.get("steps", 2) > 1
             else f"one pass, {summary.get('images', 1) / max(summary['wall_s'], 1e-9):.1f} images/s")
    return (f"**{summary['model']}** — {summary['wall_s']:.3f} s, {speed} "
            f"(text {summary['text_encode_s']:.3f} s · denoise {summary['denoise_s']:.3f} s · decode "
            f"{summary['decode_s']:.3f} s) · peak {summary['peak_memory_mb']:.0f} MB"
            + (f" · first load {summary['load_s']:.2f} s" if summary.get("load_s") else "")
            + (f" · queued {summary['wait_s']:.2f} s" if summary.get("wait_s", 0) >= 0.01 else "")
            + (f" · one batch of {summary['batch_images']} images for {shared} requests" if shared > 1 else "")
            + (f" · {replica_text(summary['replica'])}" if summary.get("replica") else ""))


def replica_text(replica: dict[str, Any]) -> str:
    """Which Ray Serve replica made a result, e.g. "replica 1qkucxty, node b66d3c57" (+ its GPU, if any)."""
    device = replica.get("device")
    return (f"replica {replica.get('id')}, node {str(replica.get('node', ''))[:8]}"
            + (f", {device}" if device and device != "cpu" else ""))


def result_summary(result: Any) -> dict[str, Any]:
    t = result.timings
    return {"model": result.model["name"] + (f" ({result.model['runtime']})" if result.model.get("runtime") else ""),
            "wall_s": t.total_s, "steps_per_s": t.steps_per_s, "steps": t.steps, "images": len(result.images),
            "text_encode_s": t.text_encode_s, "denoise_s": t.denoise_s, "decode_s": t.decode_s,
            "peak_memory_mb": t.peak_memory_bytes / 2**20, "load_s": t.load_s, "wait_s": t.wait_s,
            "batch_requests": t.batch_requests, "batch_images": t.batch_images, "replica": result.replica}


def gallery_items(result: Any, label: str = "") -> list[tuple[Any, str]]:
    """(image with metadata, caption) pairs for a gr.Gallery."""
    items = []
    for i, image in enumerate(result.images):
        attach_metadata(image, result.record(i))
        items.append((image, f"{label}seed {result.seeds[i]}"))
    return items


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    choices = model_choices(pool, "text-to-image")
    # Requests that arrive while the model is busy share its next pipeline call; they must be let
    # through Gradio's queue together for that (one call still runs at a time, see Coalescer).
    coalescer = Coalescer.from_settings()
    concurrency = max(settings.concurrency, coalescer.max_images)
    default = default_model(pool.catalog)
    with gr.Row():
        # 2:1 - the model column fits the longest embedded model's name at 1440 px.
        with gr.Column(scale=2):
            # lines=1 so Enter submits; it grows to max_lines for long prompts.
            prompt = gr.Textbox(label="Prompt", lines=1, max_lines=6,
                                placeholder="a large red star on a white background", elem_id="generate-prompt")
            note = gr.Markdown(elem_id="generate-note")
            model_hidden = gr.Textbox(visible=False)  # the examples' model column (a Dropdown cannot be a sample)
            examples = gr.Dataset(components=[prompt, model_hidden], samples=featured_examples(pool, default),
                                  headers=["Prompt", "Model"], label="Examples (click one: prompt and model)",
                                  elem_id="generate-examples")
            start_words, start_count = vocabulary_rows(pool, default)
            with gr.Accordion("Vocabulary: what this model knows (searchable)", open=False,
                              visible=bool(start_words), elem_id="generate-vocabulary") as vocab_box:
                vocab_search = gr.Textbox(label="Search", placeholder="cat, smiling, train, flower ...", lines=1,
                                          elem_id="generate-vocabulary-search")
                vocab_count = gr.Markdown(start_count, elem_id="generate-vocabulary-count")
                vocab_table = gr.Dataframe(value=start_words, headers=["", "word", "kind", "also"],
                                           interactive=False, max_height=320, wrap=True,
                                           elem_id="generate-vocabulary-table")
            negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="generate-negative")
        with gr.Column(scale=1, min_width=220):
            model = gr.Dropdown(choices=choices, value=default, label="Model",
                                # The pool, not the widget, decides what is a valid model, so
                                # the API and the UI get the same error words.
                                allow_custom_value=True, elem_id="generate-model")
            about = gr.Markdown(model_note(pool, default), elem_id="generate-model-note")
            run = gr.Button("Generate", variant="primary", elem_id="generate-button")
    start = model_defaults(pool, default)
    with gr.Accordion("Settings (filled with the model's defaults)", open=False):
        with gr.Row():
            width = gr.Number(label="Width", value=start[0], precision=0, step=8, elem_id="generate-width")
            height = gr.Number(label="Height", value=start[1], precision=0, step=8)
            steps = gr.Number(label="Steps", value=start[2], precision=0, elem_id="generate-steps")
            guidance = gr.Number(label="Guidance", value=start[3], step=0.5, elem_id="generate-guidance")
        with gr.Row():
            scheduler = gr.Dropdown(choices=scheduler_names(), value=start[4], label="Scheduler", elem_id="generate-scheduler")
            seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, elem_id="generate-seed")
            batch = gr.Number(label="Images", value=1, precision=0, minimum=None, elem_id="generate-batch")
    gallery = gr.Gallery(label="Images", show_label=False, columns=4, height="auto", format="png",
                         elem_id="generate-gallery", object_fit="contain", elem_classes=["results-grid"])
    timing = gr.Markdown(elem_id="generate-timing")
    ask_box(pool, gallery, "generate")
    with gr.Accordion("Parameters and timings (JSON)", open=False):
        record = gr.JSON(show_label=False)

    @user_errors
    def on_generate(prompt_text, negative_text, model_id, w, h, n_steps, cfg, sched, seed_value, n_images,
                    progress=gr.Progress()):
        request = GenerateRequest(prompt=prompt_text, model=model_id or "", negative_prompt=negative_text or "",
                                  width=w, height=h, steps=n_steps, guidance=cfg, scheduler=sched,
                                  seed=-1 if seed_value is None else seed_value,
                                  batch=1 if n_images is None else n_images)
        result = coalescer.generate(request, pool, progress=step_progress(progress, "denoising"))
        summary = result_summary(result)
        payload = {"seeds": result.seeds, "params": result.params, "model": result.model,
                   "timings": result.timings.as_dict(), **({"replica": result.replica} if result.replica else {})}
        return gallery_items(result), timing_markdown(summary), payload

    # Settings another tab sends with a model (PNG Info's "Send to Generate"): the model change that
    # follows must keep them rather than reset the fields to the new model's defaults.
    pending = gr.State(None)

    def on_model(model_id, sent):
        values = model_defaults(pool, model_id)
        if sent and sent.get("model") == model_id:
            keys = ("width", "height", "steps", "guidance", "scheduler")
            values = tuple(sent.get(k, v) for k, v in zip(keys, values))
        words, count = vocabulary_rows(pool, model_id)
        return (*values, model_note(pool, model_id), gr.Dataset(samples=featured_examples(pool, model_id)), None,
                gr.Accordion(visible=bool(words)), words, count, "")

    model.change(on_model, [model, pending], [width, height, steps, guidance, scheduler, about, examples, pending,
                                              vocab_box, vocab_table, vocab_count, vocab_search],
                 api_name=False, queue=False)

    def on_search(query, model_id):
        words, count = vocabulary_rows(pool, model_id, query)
        return words, count

    vocab_search.change(on_search, [vocab_search, model], [vocab_table, vocab_count], api_name=False, queue=False,
                        show_progress="hidden", trigger_mode="always_last")
    # The inline note follows the prompt and the model: advice, never an error.
    gr.on([prompt.change, model.change], lambda text, model_id: prompt_note(pool, model_id, text), [prompt, model],
          note, api_name=False, queue=False, show_progress="hidden", trigger_mode="always_last")
    examples.click(lambda sample: (sample[0], model_id_for_name(pool, sample[1]) or gr.update()), examples,
                   [prompt, model], api_name=False, queue=False)
    run.click(on_generate, [prompt, negative, model, width, height, steps, guidance, scheduler, seed, batch],
              [gallery, timing, record], api_name="generate", concurrency_limit=concurrency,
              concurrency_id="generate")
    prompt.submit(on_generate, [prompt, negative, model, width, height, steps, guidance, scheduler, seed, batch],
                  [gallery, timing, record], api_name=False, concurrency_limit=concurrency,
                  concurrency_id="generate")
    return {"prompt": prompt, "negative": negative, "model": model, "width": width, "height": height, "steps": steps,
            "guidance": guidance, "scheduler": scheduler, "seed": seed, "pending": pending, "gallery": gallery,
            "coalescer": coalescer}

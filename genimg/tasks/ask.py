"""Ask task: one image and one question -> an answer, from a chosen answerer in the pool.

The one path for the Ask tab, the Ask boxes under Generate and Compare, ``python -m genimg ask``
and the API ``/ask``. The image comes in through the image gate (:func:`genimg.imageio.load_image`)
and only its decoded pixels reach the answerer: a PNG's text chunks (ours carry the prompt) are
never passed on.
"""

from __future__ import annotations

import time
from typing import Any

from genimg.errors import GenimgError
from genimg.imageio import DecodedImage, load_image
from genimg.models.catalog import default_model
from genimg.vqa.questions import check_question

TASK = "visual-question-answering"


def default_answerer(pool: Any) -> str:
    """The catalog's default answerer (``genimg-scene-qa`` as shipped). Raises GenimgError when there is none."""
    model_id = default_model(pool.catalog, TASK)
    if model_id is None:
        raise GenimgError("the model catalog lists no visual-question-answering model: add one (README, 'Adding a model')")
    return model_id


def answerers(pool: Any) -> list[str]:
    """Catalog ids of every answerer (task visual-question-answering), in catalog order."""
    return [spec.id for spec in pool.catalog.values() if TASK in spec.tasks]


def ask(pool: Any, image: Any, question: str, model: str | None = None) -> dict[str, Any]:
    """Answer ``question`` about ``image`` (path, bytes, PIL, array or DecodedImage) with answerer ``model``.

    ``model``: a catalog id of task visual-question-answering (None or "": the default answerer).
    Returns ``{"answer", "model", "seconds", "answerable", "type", "question", "details", "image",
    "timings"}``: ``answerable`` False when the answerer said the question or image is outside what it
    can answer (the answer then says what it can answer); ``type`` the question's type when the
    answerer parses questions (the scene answerer), else None.
    Raises GenimgError for an empty or endless question, a bad image, an unknown answerer or a model
    that is not an answerer, or missing weights.
    """
    started = time.perf_counter()
    question = check_question(question)
    model_id = (model or "").strip() or default_answerer(pool)
    if model_id not in pool.catalog:
        raise GenimgError(f"unknown answerer {model_id!r}: choose one of {', '.join(answerers(pool))} "
                          "(python -m genimg models lists them)")
    model_id = pool.choose(model_id, task=TASK, most=1, what="a question")[0]
    decoded = image if isinstance(image, DecodedImage) else load_image(image, what="image to ask about")
    rgb = decoded.rgb_array()  # pixels only
    gate_s = time.perf_counter() - started
    with pool.acquire(model_id) as lease:
        run_started = time.perf_counter()
        reply = lease.model.answer(rgb, question)
        run_s = time.perf_counter() - run_started
        info = lease.model_info()
        load_s = lease.load_seconds
    return {"answer": reply.text, "model": model_id, "seconds": round(time.perf_counter() - started, 4),
            "answerable": bool(reply.answerable), "type": reply.type, "question": question,
            "details": dict(reply.details), "image": {"width": decoded.size[0], "height": decoded.size[1]},
            "model_info": info, "timings": {"gate_s": round(gate_s, 4), "load_s": round(load_s, 4),
                                            "answer_s": round(run_s, 4)}}

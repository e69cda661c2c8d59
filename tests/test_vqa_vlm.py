"""The VLM answerer path (backend "transformers", image-text-to-text) on a tiny random LLaVA built from configs:
plumbing only (its answers are random words), loaded through the real loading code and the pool."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.catalog import ModelSpec
from genimg.models.pool import ModelPool
from genimg.tasks.ask import ask

TASK = ("visual-question-answering",)


@pytest.fixture(scope="module")
def vlm_pool(tmp_path_factory):
    from genimg.models.tiny import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "llava")
    empty = tmp_path_factory.mktemp("empty-vlm")
    catalog = {"tiny-vlm": ModelSpec(id="tiny-vlm", name="Tiny VLM", backend="transformers", source=str(folder),
                                     tasks=TASK, dtype="fp32"),
               "empty-vlm": ModelSpec(id="empty-vlm", name="Empty", backend="transformers", source=str(empty),
                                      tasks=TASK)}
    return ModelPool(catalog, budget_bytes=1 << 32)


def test_tiny_vlm_answers_through_the_pool(vlm_pool, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red circle")
    path = tmp_path / "scene.png"
    Image.fromarray(np.full((48, 48, 3), 120, np.uint8)).save(path, pnginfo=info)
    first = ask(vlm_pool, str(path), "what colour is the circle?", "tiny-vlm")
    again = ask(vlm_pool, str(path), "what colour is the circle?", "tiny-vlm")
    assert isinstance(first["answer"], str) and first["answer"] == again["answer"]  # greedy: deterministic
    assert first["model"] == "tiny-vlm" and first["answerable"] and first["type"] is None
    assert first["model_info"]["backend"] == "transformers" and 0 < first["details"]["new_tokens"] <= 32
    assert first["timings"]["load_s"] > 0 and again["timings"]["load_s"] == 0  # loaded once, then shared


def test_tiny_vlm_refuses_bad_questions(vlm_pool):
    image = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(GenimgError, match="no question given"):
        ask(vlm_pool, image, " ", "tiny-vlm")
    with pytest.raises(GenimgError, match="at most 300 characters"):
        ask(vlm_pool, image, "why " * 100, "tiny-vlm")


def test_a_folder_without_weights_says_so(vlm_pool):
    assert vlm_pool.availability("empty-vlm") == (False, vlm_pool.availability("empty-vlm")[1])
    assert "weights missing" in vlm_pool.availability("empty-vlm")[1]
    with pytest.raises(ModelUnavailableError, match="weights missing"):
        ask(vlm_pool, np.zeros((40, 40, 3), np.uint8), "what is this?", "empty-vlm")

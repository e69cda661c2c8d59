"""Transformers VLM backend: a vision-language model answering questions about an image.

A catalog entry with ``backend = "transformers"`` and task ``visual-question-answering`` names a
model that transformers loads with ``AutoModelForImageTextToText`` and ``AutoProcessor``
(SmolVLM, Qwen2-VL, LLaVA, PaliGemma, ...): a hub id (found in the Hugging Face cache) or a local
folder saved with ``save_pretrained``. Safetensors only; never ``trust_remote_code``. The loaded
:class:`VlmAnswerer` asks the question through the processor's chat template (the
"image-text-to-text" task: transformers 5 has no separate VQA pipeline) and decodes greedily.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

MAX_NEW_TOKENS = 32  # a short answer; the catalog entry may say otherwise (options.max_new_tokens)


def _source(spec: ModelSpec) -> str:
    path = spec.local_path()
    return str(path) if path is not None else spec.source


def _hint(spec: ModelSpec) -> str:
    return (f"run `huggingface-cli download {spec.source}` on a machine with internet and copy the Hugging Face "
            "cache (~/.cache/huggingface) here, or point the catalog entry's source at a folder saved with "
            "save_pretrained (model and processor)")


def is_present(spec: ModelSpec) -> bool:
    """True when the weights are on this machine (a local folder, or the HF cache)."""
    path = spec.local_path()
    if path is not None:
        return (path / "config.json").is_file() and any(path.glob("*.safetensors"))
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec.source, "config.json"), str)
    except Exception:  # an unreadable cache is the same as no cache
        return False


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether the model's files are here and, if not, how to provide them."""
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return False, "needs the transformers package: pip install transformers"
    if is_present(spec):
        return True, f"local folder {spec.local_path()}" if spec.local_path() else "in the Hugging Face cache"
    from genimg.models import hub

    where = f"folder {spec.local_path()} has no config.json + safetensors" if spec.local_path() else (
        f"{spec.source} is not in the Hugging Face cache")
    if spec.local_path() is not None or hub.offline():
        return False, f"weights missing: {where}; to add it, {_hint(spec)}"
    return True, f"not cached: will be downloaded from the hub ({spec.source}) on first use"


@dataclass
class VlmAnswerer:
    """A loaded VLM: :meth:`answer` (image, question) -> Answer."""

    model: Any
    processor: Any
    max_new_tokens: int = MAX_NEW_TOKENS

    @property
    def components(self) -> dict[str, Any]:
        return {"model": self.model}  # the pool counts its bytes

    def answer(self, image: Any, question: str) -> Any:
        """The model's answer to ``question`` about ``image`` (PIL or uint8 array; its pixels only).

        Raises GenimgError for an empty or endless question or a non-image.
        """
        import torch
        from PIL import Image

        from genimg.vqa.questions import check_question
        from genimg.vqa.scene_qa import Answer, pixels

        question = check_question(question)
        picture = Image.fromarray(pixels(image))  # a fresh image: no metadata travels with it
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(text=prompt, images=[picture], return_tensors="pt")
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) if torch.is_tensor(v) else v
                  for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:]
        text = self.processor.decode(new, skip_special_tokens=True).strip()
        return Answer(text, None, True, {"new_tokens": int(new.numel())})


def load(spec: ModelSpec, placement: Placement) -> VlmAnswerer:
    """Load the model and its processor in the pool's dtype on its device (safetensors, no remote code).

    Raises ModelUnavailableError when the files are missing or unreadable.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = _source(spec)
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if is_present(spec):
        kwargs["local_files_only"] = True
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=placement.dtype, use_safetensors=True,
                                                            **kwargs)
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ModelUnavailableError(f"answerer {spec.id!r} could not be loaded from {source}: {detail}; "
                                    f"{_hint(spec)}") from None
    model = model.to(placement.device).eval()
    return VlmAnswerer(model, processor, int(spec.options.get("max_new_tokens", MAX_NEW_TOKENS)))


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """Answerers have no variants."""
    raise GenimgError(f"answerer {spec.id!r} has no {kind!r} variant")


register("transformers")(sys.modules[__name__])

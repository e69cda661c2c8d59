"""CLIP score (text–image alignment) where CLIP weights are present on this machine.

CLIPScore as torchmetrics defines it (Hessel et al. 2021 without their w=2.5 rescale):
``100 · max(cos(E_image, E_text), 0)`` with the model's projected image and text embeddings.
Higher = the image matches the prompt better; ViT-B/32 gives ~20-35 for real photos and
their captions, so compare only numbers from one CLIP model.

No PyPI package ships CLIP weights, so nothing here downloads: the weights are looked up in
``$GENIMG_CLIP_DIR`` (a folder saved with ``CLIPModel.save_pretrained`` + its tokenizer and
image-processor files), then ``assets/features/clip/``, then the Hugging Face cache for
``openai/clip-vit-base-patch32`` (offline, safetensors only). Without any of them
:func:`clip_available` says where to put them and the evaluation reports "unavailable".
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError

HUB_ID = "openai/clip-vit-base-patch32"


def clip_source() -> str | None:
    """The folder (or cached hub id) CLIP loads from, or None when no weights are here."""
    override = os.environ.get("GENIMG_CLIP_DIR", "").strip()
    folders = ([Path(override).expanduser()] if override else []) + [ASSETS_DIR / "features" / "clip"]
    for folder in folders:
        if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
            return str(folder)
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(HUB_ID, "config.json")
        weights = try_to_load_from_cache(HUB_ID, "model.safetensors")
    except Exception:  # an unreadable cache is the same as no cache
        return None
    if isinstance(config, str) and isinstance(weights, str):
        return HUB_ID
    return None


def clip_available() -> tuple[bool, str]:
    """(CLIP weights present here, where from or how to provide them); loads nothing."""
    source = clip_source()
    if source is None:
        return False, ("no CLIP weights here: save a CLIPModel (safetensors) with its tokenizer and image processor "
                       "to a folder and set GENIMG_CLIP_DIR, or put openai/clip-vit-base-patch32 in the HF cache")
    return True, f"CLIP from {source}"


class ClipScorer:
    """A loaded CLIP model: :meth:`score` (images, prompts) → CLIPScore per pair."""

    def __init__(self, source: str, device: str = "cpu"):
        import torch
        from transformers import AutoTokenizer, CLIPModel

        try:
            from transformers import CLIPImageProcessorPil as Processor  # no torchvision needed
        except ImportError:  # older transformers: the PIL processor was the only one
            from transformers import CLIPImageProcessor as Processor
        kwargs = {"local_files_only": True}
        try:
            self.model = CLIPModel.from_pretrained(source, use_safetensors=True, **kwargs).eval().to(device)
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            self.processor = Processor.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            detail = " ".join(str(exc).split())[:300]
            raise ModelUnavailableError(f"CLIP weights in {source} could not be loaded: {detail}") from None
        self.source = source
        self.device = torch.device(device)
        self.lock = threading.Lock()

    @staticmethod
    def _tensor(output: Any) -> Any:
        # transformers 5 may return a model output; the projected embedding is its pooler_output.
        return output if hasattr(output, "norm") else output.pooler_output

    def score(self, images: Sequence[Any], prompts: Sequence[str]) -> np.ndarray:
        """CLIPScore of each (image, prompt) pair: takes PIL/uint8 images and equally many prompts.

        Returns a float array in [0, 100]. Raises GenimgError for mismatched lengths or no pairs.
        """
        import torch

        images, prompts = list(images), list(prompts)
        if len(images) != len(prompts) or not images:
            raise GenimgError(f"CLIP score needs as many prompts as images, got {len(images)} and {len(prompts)}")
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        pixels = self.processor(images=[_rgb(i) for i in images], return_tensors="pt")["pixel_values"]
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        with self.lock, torch.inference_mode():
            image_emb = self._tensor(self.model.get_image_features(pixel_values=pixels.to(self.device)))
            text_emb = self._tensor(self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()}))
            cos = torch.nn.functional.cosine_similarity(image_emb.float(), text_emb.float(), dim=-1)
        return (100.0 * cos.clamp(min=0)).cpu().numpy().astype(np.float64)


def _rgb(image: Any) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


@functools.lru_cache(maxsize=2)
def _cached(source: str) -> ClipScorer:
    return ClipScorer(source)


def clip_scorer() -> ClipScorer:
    """The process-wide CLIP scorer. Raises ModelUnavailableError when no weights are here."""
    source = clip_source()
    if source is None:
        raise ModelUnavailableError(clip_available()[1])
    return _cached(source)


def clip_score(images: Sequence[Any], prompts: Sequence[str]) -> np.ndarray:
    """CLIPScore (0..100) for each (image, prompt) pair; see the module docstring.

    Raises ModelUnavailableError without CLIP weights, GenimgError for bad input.
    """
    return clip_scorer().score(images, prompts)

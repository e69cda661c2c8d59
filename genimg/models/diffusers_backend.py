"""Diffusers backend: any diffusers text-to-image pipeline, by hub id or local folder."""

from __future__ import annotations

import os
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

# from_pipe turns a loaded text-to-image pipeline into these without copying weights.
_VARIANT_CLASSES = {"img2img": "AutoPipelineForImage2Image", "inpaint": "AutoPipelineForInpainting"}


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _provide_hint(repo_id: str) -> str:
    return (f"run `huggingface-cli download {repo_id}` on a machine with internet and copy the Hugging Face "
            f"cache (~/.cache/huggingface) here, or point the catalog entry's source at a local folder "
            f"saved with save_pretrained")


def is_present(spec: ModelSpec) -> bool:
    """True when the weights are on this machine already (local folder or HF cache): no download."""
    path = spec.local_path()
    if path is not None:
        return (path / "model_index.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(spec.source, "model_index.json"), str)


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether the pipeline's files are here (local folder or HF cache) and, if not, why."""
    path = spec.local_path()
    if path is not None:
        if (path / "model_index.json").is_file():
            return True, f"local folder {path}"
        if path.is_dir():
            return False, f"folder {path} has no model_index.json (not a diffusers pipeline folder)"
        return False, f"folder {path} does not exist"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec.source, "model_index.json")
    if isinstance(cached, str):
        return True, "in the Hugging Face cache"
    if _hub_offline():
        return False, f"weights for {spec.source} are not in the Hugging Face cache and the hub is offline: " + _provide_hint(spec.source)
    return True, f"not cached: will be downloaded from the hub ({spec.source}) on first use"


def load(spec: ModelSpec, placement: Placement) -> Any:
    """Load the text-to-image pipeline in the pool's dtype on its device.

    Safetensors only, never remote code. On CUDA, a model larger than ~80% of the free
    memory is placed with accelerate's model CPU offload instead of moved whole.
    Raises GenimgError when the weights cannot be found or read.
    """
    import diffusers
    import torch

    # A catalog entry may name its pipeline class (e.g. StableDiffusionUpscalePipeline);
    # by default any text-to-image pipeline is found through the auto class.
    class_name = spec.options.get("pipeline", "AutoPipelineForText2Image")
    pipeline_class = getattr(diffusers, class_name, None)
    if pipeline_class is None or not hasattr(pipeline_class, "from_pretrained") or not class_name.endswith(
            ("Pipeline", "Text2Image")):
        raise GenimgError(f"catalog entry {spec.id!r} names unknown diffusers pipeline class {class_name!r}")
    path = spec.local_path()
    source = str(path) if path is not None else spec.source
    kwargs: dict[str, Any] = {"dtype": placement.dtype, "use_safetensors": True}
    if spec.options.get("variant"):
        kwargs["variant"] = spec.options["variant"]
    try:
        pipe = pipeline_class.from_pretrained(source, **kwargs)
    except GenimgError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if path is None:
            raise ModelUnavailableError(f"model {spec.id!r} could not be loaded from {spec.source}: {first_line[:300]} — "
                                        f"{_provide_hint(spec.source)}") from None
        raise ModelUnavailableError(f"model {spec.id!r} could not be loaded from {path}: {first_line[:300]}") from None
    pipe.set_progress_bar_config(disable=True)
    if placement.device.type == "cuda":
        from genimg.models.pool import module_nbytes

        free, _total = torch.cuda.mem_get_info(placement.device)
        if module_nbytes(pipe) > 0.8 * free:
            pipe.enable_model_cpu_offload(device=placement.device)
            return pipe
    return pipe.to(placement.device)


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """img2img / inpaint pipeline sharing ``model``'s components (diffusers ``from_pipe``)."""
    import diffusers

    try:
        cls = getattr(diffusers, _VARIANT_CLASSES[kind])
    except KeyError:
        raise GenimgError(f"unknown pipeline variant {kind!r}: use one of {', '.join(_VARIANT_CLASSES)}") from None
    try:
        variant = cls.from_pipe(model)
    except ValueError as exc:
        raise GenimgError(f"model {spec.id!r} has no {kind} variant: {exc}") from None
    variant.set_progress_bar_config(disable=True)
    return variant

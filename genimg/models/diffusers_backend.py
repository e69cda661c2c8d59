"""Diffusers backend: any diffusers text-to-image pipeline, by hub id or local folder."""

from __future__ import annotations

import sys
import logging
import time
from dataclasses import dataclass
from typing import Any

from genimg.config import settings
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

# from_pipe turns a loaded text-to-image pipeline into these without copying weights.
_VARIANT_CLASSES = {"img2img": "AutoPipelineForImage2Image", "inpaint": "AutoPipelineForInpainting"}

log = logging.getLogger(__name__)

COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
# Above this many pixels (width*height) the VAE decodes in tiles and one image at a time, so
# large sizes fit in memory; at or below it (every size SD/SDXL are trained at) nothing changes.
DEFAULT_VAE_TILING_PIXELS = 1536 * 1536
_COMPILE_BACKEND = "inductor"  # tests swap in dynamo's "eager" backend (CPU inductor compiles take minutes)


@dataclass(frozen=True)
class FastPath:
    """The GPU fast-path choices for one load (environment over catalog option over default)."""

    compile_mode: str | None       # torch.compile mode for the denoiser; None: eager
    channels_last: bool            # UNet/VAE weights (and so activations) in NHWC
    vae_tiling_pixels: int | None  # tile + slice VAE decoding above this width*height; None: never
    tiny_vae: str | None           # AutoencoderTiny (taesd) folder or hub id for fast preview decoding
    notes: tuple[str, ...] = ()    # why a requested option is not applied here


def fast_path_options(spec: ModelSpec, placement: Placement) -> FastPath:
    """Resolve compile / channels_last / VAE tiling / tiny VAE for ``spec`` on ``placement``.

    ``GENIMG_COMPILE`` / ``GENIMG_CHANNELS_LAST`` / ``GENIMG_VAE_TILING`` win over the catalog
    entry's ``options`` (``compile``, ``channels_last``, ``vae_tiling``, ``tiny_vae``). Compile is
    off by default, and off on the CPU unless ``GENIMG_COMPILE_CPU=1`` (inductor's CPU compile of
    even a tiny UNet takes minutes on two cores). channels_last defaults to on for CUDA only.
    Raises GenimgError for a value outside the documented ones.
    """
    env = settings()
    opts = spec.options
    notes: list[str] = []
    cuda = placement.device.type == "cuda"

    mode = str(env.compile or opts.get("compile") or "off").strip().lower()
    if mode in ("0", "false", "no", "none"):
        mode = "off"
    if mode not in COMPILE_MODES:
        raise GenimgError(f"unknown compile mode {mode!r} (GENIMG_COMPILE or the catalog option 'compile'): "
                          f"use one of {', '.join(COMPILE_MODES)}")
    compile_mode: str | None = None if mode == "off" else mode
    if compile_mode and not cuda and not env.compile_cpu:
        notes.append(f"torch.compile ({compile_mode}) skipped on {placement.device.type}: set GENIMG_COMPILE_CPU=1 "
                     "to compile there too (minutes of compile time)")
        compile_mode = None

    cl = env.channels_last if env.channels_last is not None else opts.get("channels_last", "auto")
    cl_text = str(cl).strip().lower()
    if cl_text in ("auto", ""):
        channels_last = cuda
    elif cl_text in ("1", "true", "yes", "on"):
        channels_last = True
    elif cl_text in ("0", "false", "no", "off"):
        channels_last = False
    else:
        raise GenimgError(f"GENIMG_CHANNELS_LAST / option 'channels_last' must be on, off or auto, not {cl!r}")

    tiling = env.vae_tiling if env.vae_tiling is not None else opts.get("vae_tiling", "auto")
    tiling_text = str(tiling).strip().lower()
    if tiling_text in ("auto", ""):
        tiling_pixels: int | None = DEFAULT_VAE_TILING_PIXELS
    elif tiling_text in ("0", "off", "false", "no"):
        tiling_pixels = None
    else:
        try:
            tiling_pixels = int(tiling_text)
        except ValueError:
            raise GenimgError(f"GENIMG_VAE_TILING / option 'vae_tiling' must be off, auto or a pixel count "
                              f"(width*height), not {tiling!r}") from None
        if tiling_pixels <= 0:
            raise GenimgError(f"GENIMG_VAE_TILING must be a positive pixel count, off or auto, not {tiling!r}")
    tiny = opts.get("tiny_vae")
    return FastPath(compile_mode=compile_mode, channels_last=channels_last, vae_tiling_pixels=tiling_pixels,
                    tiny_vae=str(tiny) if tiny else None, notes=tuple(notes))


def _hub_offline() -> bool:
    from genimg.models import hub

    return hub.offline()


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
        return False, (f"weights missing: {spec.source} is not in the Hugging Face cache and the hub is not "
                       "reachable from here; to add it, " + _provide_hint(spec.source))
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
    fast = fast_path_options(spec, placement)  # a bad option fails before the (slow) load
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
    report: dict[str, Any] = {"notes": list(fast.notes)}
    if fast.tiny_vae:  # before placement, so offload hooks / .to() cover the swapped-in decoder
        report["tiny_vae"] = _swap_tiny_vae(pipe, fast.tiny_vae, placement, spec)
    offloaded = False
    if placement.device.type == "cuda":
        from genimg.models.device import module_nbytes

        free, _total = torch.cuda.mem_get_info(placement.device)
        if module_nbytes(pipe) > 0.8 * free:
            pipe.enable_model_cpu_offload(device=placement.device)
            offloaded = True
    if not offloaded:
        pipe = pipe.to(placement.device)
    report["cpu_offload"] = offloaded
    apply_fast_path(pipe, fast, spec, offloaded=offloaded, report=report)
    return pipe


def _denoiser(pipe: Any) -> Any:
    """The pipeline's UNet or transformer (the module every step runs), or None."""
    import torch

    for name in ("unet", "transformer"):
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def ensure_sdpa(pipe: Any) -> dict[str, dict[str, int]]:
    """Put torch's fused scaled-dot-product attention (diffusers' AttnProcessor2_0) wherever a
    module still runs the classic, unfused ``AttnProcessor``; return processor class counts per component.

    Only the classic processor is replaced: other processors (IP-adapter, LoRA, a model's own
    SDPA variant) already do what they must and are left alone.
    """
    import torch
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    counts: dict[str, dict[str, int]] = {}
    for name, module in getattr(pipe, "components", {}).items():
        if not isinstance(module, torch.nn.Module) or not hasattr(module, "attn_processors"):
            continue
        processors = module.attn_processors
        if not processors:
            continue
        if any(type(p) is AttnProcessor for p in processors.values()):
            module.set_attn_processor({key: AttnProcessor2_0() if type(p) is AttnProcessor else p
                                       for key, p in processors.items()})
            processors = module.attn_processors
        per_class: dict[str, int] = {}
        for p in processors.values():
            per_class[type(p).__name__] = per_class.get(type(p).__name__, 0) + 1
        counts[name] = per_class
    return counts


def _swap_tiny_vae(pipe: Any, source: str, placement: Placement, spec: ModelSpec) -> str:
    """Replace the pipeline's VAE by AutoencoderTiny (taesd) from a local folder or the HF cache.

    Returns what happened; when the weights are not here the full VAE stays and it says so.
    """
    from pathlib import Path

    from diffusers import AutoencoderTiny

    from genimg.config import ASSETS_DIR

    folder = Path(source).expanduser()
    if not folder.is_absolute() and (ASSETS_DIR / folder).is_dir():
        folder = ASSETS_DIR / folder
    local = folder.is_dir()
    if not local:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(source, "config.json"), str):
            message = (f"tiny preview VAE {source!r} not found locally (no folder, not in the Hugging Face cache): "
                       f"model {spec.id!r} keeps its full VAE; run `huggingface-cli download {source}` where there "
                       "is internet, or point the option at a folder")
            log.warning(message)
            return "absent: " + message
    try:
        tiny = AutoencoderTiny.from_pretrained(str(folder) if local else source, dtype=placement.dtype,
                                               use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as exc:
        message = f"tiny preview VAE {source!r} could not be loaded ({str(exc).strip()[:200]}): full VAE kept"
        log.warning(message)
        return "failed: " + message
    pipe.vae = tiny
    return f"AutoencoderTiny from {source}"


def _tile_large_decodes(pipe: Any, threshold_pixels: int) -> bool:
    """Mark ``pipe`` to tile (and slice) VAE decodes of requests over ``threshold_pixels``
    (width*height); :func:`prepare_decode` applies it per request. Returns whether the VAE can tile.

    diffusers' own switch (``enable_tiling``) is per pipeline and its test is per side against
    the tile size, while the pixel count is only known per request, so the generate task calls
    :func:`prepare_decode` with each request's size. (A forward pre-hook on the denoiser did
    the same without the task's help, but a hooked module stayed referenced after a fault, so
    a dropped pipeline's weights were not freed: tests/test_faults.py.)
    """
    vae = getattr(pipe, "vae", None)
    if not hasattr(vae, "use_tiling") or not hasattr(vae, "use_slicing"):
        return False
    pipe.genimg_vae_tiling_pixels = int(threshold_pixels)
    return True


def prepare_decode(pipe: Any, width: int, height: int) -> None:
    """Turn VAE tiling + slicing on for this request if it is larger than the pipeline's threshold, else off."""
    threshold = getattr(pipe, "genimg_vae_tiling_pixels", None)
    vae = getattr(pipe, "vae", None)
    if threshold is None or vae is None:
        return
    large = int(width) * int(height) > threshold
    vae.use_tiling = large
    vae.use_slicing = large


def _warm_up(pipe: Any, spec: ModelSpec) -> float:
    """One call at the model's default size and guidance, so compilation (and CUDA-graph
    recording) happens at load, not in the first user's request. Returns seconds."""
    import torch

    d = spec.defaults
    started = time.perf_counter()
    with torch.inference_mode():
        # Two steps: "reduce-overhead" records its CUDA graph on the second call of a shape.
        pipe(prompt="warm-up", width=int(d.get("width", 512)), height=int(d.get("height", 512)),
             num_inference_steps=2, guidance_scale=float(d.get("guidance", 7.0)),
             generator=torch.Generator("cpu").manual_seed(0), output_type="pil")
    if pipe.device.type == "cuda":
        torch.cuda.synchronize(pipe.device)
    return time.perf_counter() - started


def apply_fast_path(pipe: Any, fast: FastPath, spec: ModelSpec, offloaded: bool = False,
                    report: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply SDPA, channels_last, VAE tiling and torch.compile (+ warm-up) to a placed pipeline.

    Records what was applied in ``pipe.genimg_fast_path`` and returns it.
    """
    import torch

    report = report if report is not None else {"notes": list(fast.notes)}
    report["attention"] = ensure_sdpa(pipe)
    report["channels_last"] = []
    if fast.channels_last:
        for name in ("unet", "vae", "transformer", "controlnet"):
            module = getattr(pipe, name, None)
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)
                report["channels_last"].append(name)
    report["vae_tiling_pixels"] = (fast.vae_tiling_pixels
                                   if fast.vae_tiling_pixels and _tile_large_decodes(pipe, fast.vae_tiling_pixels)
                                   else None)
    report["compile"] = None
    denoiser = _denoiser(pipe)
    if fast.compile_mode and offloaded:
        report["notes"].append("torch.compile skipped: the model is CPU-offloaded (VRAM is short)")
    elif fast.compile_mode and denoiser is not None:
        # In place (nn.Module.compile), so the pipeline, from_pipe variants and hooks keep the same module.
        mode = None if fast.compile_mode == "default" else fast.compile_mode
        if _COMPILE_BACKEND == "inductor":
            denoiser.compile(mode=mode)
        else:  # modes are inductor's; other backends take none
            denoiser.compile(backend=_COMPILE_BACKEND)
        report["compile"] = fast.compile_mode
        if "text-to-image" in spec.tasks:
            try:
                report["warmup_s"] = _warm_up(pipe, spec)
            except Exception as exc:
                from genimg.models.device import is_out_of_memory

                if is_out_of_memory(exc):
                    raise
                # A compiler failure (no triton, an unsupported op) should cost speed, not the model:
                # nn.Module.compile keeps the compiled callable in _compiled_call_impl; None is eager again.
                denoiser._compiled_call_impl = None
                report["compile"] = None
                message = (f"torch.compile ({fast.compile_mode}) failed at warm-up, running eager: "
                           f"{type(exc).__name__}: {str(exc)[:200]}")
                report["notes"].append(message)
                log.warning(message)
        else:
            report["notes"].append("no warm-up: not a text-to-image pipeline (the first request compiles)")
    pipe.genimg_fast_path = report
    return report


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


register("diffusers")(sys.modules[__name__])

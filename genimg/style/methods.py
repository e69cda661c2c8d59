"""The style-transfer methods a user ticks: one registered class each (the method contract).

Each method's ``run(inputs, params, pool, step)`` takes the shared working-size content (and
style image), the request's validated parameters, the model pool and a ``step(done, total)``
progress callback, and returns a :class:`StyleRun`. "Preserve content colours" is applied by the
task to every method alike, not here. Heavy imports happen inside ``run``, so listing the methods
loads nothing.

Adding a method: a class here (or in its own module) with ``@STYLES.register``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.methods import Method, Registry

MAGENTA_MODEL = "magenta-style"   # catalog id of the ONNX networks (assets/models.toml)
StepFn = Callable[[int, int], None]


@dataclass
class StyleInputs:
    """What every method sees: the working-size content, the style image (or None), the strength."""

    content: np.ndarray
    style: np.ndarray | None
    strength: float


@dataclass
class StyleRun:
    """One method's output (uint8 RGB, the content's size) and what it used and took."""

    image: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)   # what this method actually used
    model: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    load_seconds: float = 0.0
    seconds: float = 0.0


class StyleMethod(Method):
    """A style-transfer method as users see it."""

    task = "style"
    needs = "style"        # "style" (a style image), "preset" (a built-in style) or "prompt"
    strength_meaning = ""  # what strength means for this method

    @property
    def key(self) -> str:
        return self.id

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        raise NotImplementedError(f"{type(self).__name__}.run")


STYLES: Registry[StyleMethod] = Registry("style-transfer method")


def _magenta(pool: Any) -> str:
    """The Magenta networks' catalog id; pools built over another catalog (tests, GENIMG_CATALOG) get genimg's."""
    if MAGENTA_MODEL not in pool.catalog:
        from genimg.models.catalog import load_catalog

        builtin = load_catalog(ASSETS_DIR / "models.toml")
        if MAGENTA_MODEL not in builtin:
            raise GenimgError(f"the catalog has no {MAGENTA_MODEL!r} entry: restore assets/models.toml")
        pool.catalog[MAGENTA_MODEL] = builtin[MAGENTA_MODEL]
    return MAGENTA_MODEL


def _onnx_info(lease: Any) -> dict[str, Any]:
    spec = lease.handle.spec
    return {"id": spec.id, "name": spec.name, "source": spec.source, "backend": spec.backend,
            "placement": lease.model.device}


@STYLES.register
class Neural(StyleMethod):
    id, label, needs = "neural", "Neural — arbitrary style (Magenta, ONNX)", "style"
    description = ("Ghiasi et al. 2017: a style network encodes any style image, a transformer network renders the "
                   "content with it in one pass; full working resolution (no tiling, no upscaling).")
    strength_meaning = "interpolates the style embedding from the content's own (0) to the style image's (1)"

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        from genimg.style import neural

        with pool.acquire(_magenta(pool)) as lease:
            started = time.perf_counter()
            out = neural.arbitrary(lease.model, inputs.content, inputs.style, inputs.strength)
            return StyleRun(out, model=_onnx_info(lease), load_seconds=lease.load_seconds,
                            notes="network run at the working size (fully convolutional): no tiling, no upscaling",
                            seconds=time.perf_counter() - started)


@STYLES.register
class Preset(StyleMethod):
    id, label, needs = "preset", "Neural — built-in preset (26 styles, ONNX)", "preset"
    description = "Dumoulin et al. 2017: one network with 26 learnt styles (conditional instance norm), any size."
    strength_meaning = "blends the output with the content (the 26 styles have no identity embedding)"

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        from genimg.style import neural

        with pool.acquire(_magenta(pool)) as lease:
            started = time.perf_counter()
            out = neural.preset(lease.model, inputs.content, params["preset"], inputs.strength)
            return StyleRun(out, params={"preset": params["preset"]}, model=_onnx_info(lease),
                            load_seconds=lease.load_seconds, seconds=time.perf_counter() - started)


class ColourTransfer(StyleMethod):
    """A classical colour/tonal transfer: one function of :mod:`genimg.style.color` (content, style, strength)."""

    function = ""

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        from genimg.style import color

        started = time.perf_counter()
        out = getattr(color, self.function)(inputs.content, inputs.style, inputs.strength)
        return StyleRun(out, seconds=time.perf_counter() - started)


@STYLES.register
class Reinhard(ColourTransfer):
    id, label, needs, function = "reinhard", "Reinhard colour transfer (Lab mean/std)", "style", "reinhard"
    description = "Reinhard et al. 2001: match the per-channel mean and standard deviation in CIELAB."
    strength_meaning = "moves the target statistics from the content's (0) to the style's (1)"


@STYLES.register
class Histogram(ColourTransfer):
    id, label, needs, function = "histogram", "Histogram matching (scikit-image)", "style", "histogram_match"
    description = "Per-channel RGB histogram matching (skimage.exposure.match_histograms)."
    strength_meaning = "blends the matched image with the content"


@STYLES.register
class Gatys(StyleMethod):
    id, label, needs = "gatys", "Gatys optimisation (CNN features)", "style"
    description = ("Gatys et al. 2016: optimise the pixels to keep the content's features and take the style's Gram "
                   "matrices; VGG19 when its weights are here, else EfficientNet-Lite0. Slow: seconds per iteration "
                   "on a CPU.")
    strength_meaning = "scales the style loss (0 returns the content)"

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        from genimg.models.device import default_placement
        from genimg.style import features as F
        from genimg.style import gatys as G

        name, why = F.gatys_network()
        loading = time.perf_counter()
        extractor = F.extractor(name, default_placement("fp32").device if name == "vgg19" else None)
        load_s = time.perf_counter() - loading
        started = time.perf_counter()
        out, info = G.stylize(extractor, inputs.content, inputs.style, inputs.strength,
                              iterations=params["iterations"], content_weight=params["content_weight"],
                              style_weight=params["style_weight"], tolerance=1e-3 if params["early_stop"] else 0.0,
                              progress=step)
        used = {"network": extractor.label, "iterations": info.iterations, "iterations_asked": params["iterations"],
                "stopped_early": info.stopped_early, "content_weight": params["content_weight"],
                "style_weight": params["style_weight"], "final_loss": round(info.losses[-1], 5) if info.losses else None,
                "scales": info.scales}
        return StyleRun(out, params=used, model={"id": f"gatys-{name}", "name": f"Gatys over {extractor.label}"},
                        notes=why if name != "vgg19" else "", load_seconds=load_s,
                        seconds=time.perf_counter() - started)


@STYLES.register
class SDEdit(StyleMethod):
    id, label, needs = "sdedit", "Diffusion img2img (SDEdit) with a style prompt", "prompt"
    description = ("Meng et al. 2022: noise the content part-way and denoise it with a text-to-image model and a style "
                   "prompt (img2img sharing the loaded model's weights).")
    strength_meaning = "the img2img strength: how much of the noise schedule is applied (0 keeps the content)"

    def run(self, inputs: StyleInputs, params: dict[str, Any], pool: Any, step: StepFn) -> StyleRun:
        from genimg.models.catalog import default_model
        from genimg.style.sdedit import sdedit

        model_id = params.get("model") or default_model(pool.catalog, "image-to-image")
        if not model_id:
            raise ModelUnavailableError("SDEdit needs a text-to-image diffusion model, and the catalog has none "
                                        "that does image-to-image: add one to assets/models.toml")
        spec = pool.spec(model_id)
        if "image-to-image" not in spec.tasks and "text-to-image" not in spec.tasks:
            raise GenimgError(f"model {spec.id!r} is not a text-to-image diffusion model "
                              f"(its tasks: {', '.join(spec.tasks)})")
        d = spec.defaults
        steps = int(params.get("steps") or d.get("steps", 25))
        guidance = float(params["guidance"] if params.get("guidance") is not None else d.get("guidance", 7.5))
        try:
            with pool.acquire(spec.id) as lease:
                started = time.perf_counter()
                out, info = sdedit(lease, inputs.content, params["style_prompt"], inputs.strength, steps, guidance,
                                   params["seed"], negative_prompt=params.get("negative_prompt", ""),
                                   size_multiple=int(d.get("size_multiple", 8)), progress=step)
                seconds = time.perf_counter() - started
                model = lease.model_info()
        except ModelUnavailableError as exc:
            raise ModelUnavailableError(f"SDEdit needs a text-to-image diffusion model, and {exc}") from None
        used = {"model": spec.id, "steps": info["steps"], "denoising_steps": info["denoising_steps"],
                "guidance": guidance, "seed": params["seed"], "style_prompt": params["style_prompt"]}
        if params.get("negative_prompt"):
            used["negative_prompt"] = params["negative_prompt"]
        return StyleRun(out, params=used, model=model, notes=info.get("note", ""), load_seconds=lease.load_seconds,
                        seconds=seconds)


DEFAULT_METHODS = ("neural", "reinhard", "histogram")

"""Style transfer methods: the algorithms behind ``genimg.tasks.style``.

One module per family — ``neural`` (Magenta ONNX networks), ``color`` (Reinhard,
histogram matching, preserve-colours), ``gatys`` (optimisation over CNN features, with
``features``), ``sdedit`` (diffusion img2img) — plus ``scores``. :data:`METHODS` is the
table the task, the UI and the CLI read; importing this module loads nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGENTA_MODEL = "magenta-style"   # catalog id of the ONNX networks (assets/models.toml)


@dataclass(frozen=True)
class Method:
    """A style-transfer method as users see it."""

    key: str          # used by --method and the API
    label: str        # shown in the UI
    needs: str        # "style" (a style image), "preset" (a built-in style) or "prompt"
    description: str
    strength: str     # what strength means for this method


METHODS: dict[str, Method] = {m.key: m for m in (
    Method("neural", "Neural — arbitrary style (Magenta, ONNX)", "style",
           "Ghiasi et al. 2017: a style network encodes any style image, a transformer network renders the "
           "content with it in one pass; full working resolution (no tiling, no upscaling).",
           "interpolates the style embedding from the content's own (0) to the style image's (1)"),
    Method("preset", "Neural — built-in preset (26 styles, ONNX)", "preset",
           "Dumoulin et al. 2017: one network with 26 learnt styles (conditional instance norm), any size.",
           "blends the output with the content (the 26 styles have no identity embedding)"),
    Method("reinhard", "Reinhard colour transfer (Lab mean/std)", "style",
           "Reinhard et al. 2001: match the per-channel mean and standard deviation in CIELAB.",
           "moves the target statistics from the content's (0) to the style's (1)"),
    Method("histogram", "Histogram matching (scikit-image)", "style",
           "Per-channel RGB histogram matching (skimage.exposure.match_histograms).",
           "blends the matched image with the content"),
    Method("gatys", "Gatys optimisation (CNN features)", "style",
           "Gatys et al. 2016: optimise the pixels to keep the content's features and take the style's Gram "
           "matrices; VGG19 when its weights are here, else EfficientNet-Lite0. Slow: seconds per iteration "
           "on a CPU.",
           "scales the style loss (0 returns the content)"),
    Method("sdedit", "Diffusion img2img (SDEdit) with a style prompt", "prompt",
           "Meng et al. 2022: noise the content part-way and denoise it with a text-to-image model and a style "
           "prompt (img2img sharing the loaded model's weights).",
           "the img2img strength: how much of the noise schedule is applied (0 keeps the content)"),
)}

DEFAULT_METHODS = ("neural", "reinhard", "histogram")

"""Style transfer methods: the algorithms behind ``genimg.tasks.style``.

One module per family — ``neural`` (Magenta ONNX networks), ``color`` (Reinhard,
histogram matching, preserve-colours), ``gatys`` (optimisation over CNN features, with
``features``), ``sdedit`` (diffusion img2img) — plus ``scores``. :data:`STYLES`
(:mod:`genimg.style.methods`) is the registry the task, the UI and the CLI read; importing
this package loads nothing heavy.
"""

from genimg.style.methods import DEFAULT_METHODS, MAGENTA_MODEL, STYLES, StyleInputs, StyleMethod, StyleRun

__all__ = ["STYLES", "DEFAULT_METHODS", "MAGENTA_MODEL", "StyleInputs", "StyleMethod", "StyleRun"]

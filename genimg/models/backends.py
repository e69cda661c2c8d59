"""Backend registry: how each kind of catalog entry is checked, loaded and varied.

A backend is a module-level object with three functions:
``availability(spec) -> (bool, reason)``, ``load(spec, placement) -> model`` and
``make_variant(model, kind, spec) -> model``. Modules are imported lazily so that
listing the catalog does not import every framework.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from genimg.errors import GenimgError

_MODULES = {
    "diffusers": "genimg.models.diffusers_backend",
    "embedded": "genimg.models.embedded_backend",
    "ncnn": "genimg.models.ncnn_backend",
    "classical": "genimg.restore.classical",
    "onnx": "genimg.models.onnx_backend",
}


class Backend(Protocol):
    def availability(self, spec: Any) -> tuple[bool, str]: ...
    def load(self, spec: Any, placement: Any) -> Any: ...
    def make_variant(self, model: Any, kind: str, spec: Any) -> Any: ...


def get(name: str) -> Backend:
    """The backend module for ``name``; GenimgError when none is implemented."""
    try:
        module_name = _MODULES[name]
    except KeyError:
        raise GenimgError(f"backend {name!r} is not available in this build of genimg") from None
    return importlib.import_module(module_name)  # type: ignore[return-value]

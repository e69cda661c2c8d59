"""The model catalog: which models the dashboard offers, read from ``assets/models.toml``.

A user adds a model by adding a ``[[model]]`` entry (see README, "Adding a model"), or —
when the server allows it — by typing a hub id or a local folder, which becomes an
ad-hoc entry through :func:`adhoc_spec`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genimg.config import ASSETS_DIR, settings
from genimg.errors import GenimgError

BACKENDS = ("diffusers", "embedded", "onnx", "ncnn", "classical", "scene-qa", "transformers")
HUB_BACKENDS = ("diffusers", "transformers")  # the backends whose source may be a hub id
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry.

    ``source`` is a hub id (``owner/name``) or a folder; relative folders are resolved
    against ``assets/``. ``defaults`` holds per-model generation defaults (width, height,
    steps, guidance, scheduler, ...).
    """

    id: str
    name: str
    backend: str
    source: str
    tasks: tuple[str, ...]
    licence: str = "unknown"
    description: str = ""
    dtype: str | None = None
    default: bool = False         # the default model for its first task
    defaults: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    domain: str | None = None     # the prompt domain it draws (genimg.domains); None: open vocabulary
    serve: dict[str, Any] = field(default_factory=dict)  # Ray Serve deployment defaults (genimg.serve.config)

    def local_path(self) -> Path | None:
        """The folder the weights live in, or None for a hub id.

        A relative source is a folder inside ``assets/`` when it exists there or when the
        backend never reads the hub (only diffusers and transformers do); otherwise ``owner/name`` is a hub id.
        """
        path = Path(self.source).expanduser()
        if path.is_absolute():
            return path
        in_assets = ASSETS_DIR / path
        if in_assets.exists() or self.backend not in HUB_BACKENDS or not _HUB_ID.match(self.source):
            return in_assets
        return None


def _spec_from_entry(entry: dict[str, Any], where: str) -> ModelSpec:
    missing = [k for k in ("id", "backend", "source", "tasks") if k not in entry]
    if missing:
        raise GenimgError(f"catalog entry {where} lacks {', '.join(missing)}: see README, 'Adding a model'")
    if entry["backend"] not in BACKENDS:
        raise GenimgError(f"catalog entry {entry['id']!r} has unknown backend {entry['backend']!r}: use one of {', '.join(BACKENDS)}")
    return ModelSpec(
        id=str(entry["id"]),
        name=str(entry.get("name", entry["id"])),
        backend=str(entry["backend"]),
        source=str(entry["source"]),
        tasks=tuple(entry["tasks"]),
        licence=str(entry.get("licence", "unknown")),
        description=str(entry.get("description", "")),
        dtype=entry.get("dtype"),
        default=bool(entry.get("default", False)),
        defaults=dict(entry.get("defaults", {})),
        options=dict(entry.get("options", {})),
        domain=str(entry["domain"]) if entry.get("domain") else None,
        serve=dict(entry.get("serve", {})),
    )


def load_catalog(path: Path | None = None) -> dict[str, ModelSpec]:
    """Read the catalog file; return specs by id, in file order.

    Raises GenimgError when the file is missing, is not valid TOML, or has a bad entry.
    """
    path = Path(path or settings().catalog_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenimgError(f"model catalog {path} not found: set GENIMG_CATALOG to a models.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise GenimgError(f"model catalog {path} is not valid TOML: {exc}") from None
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(data.get("model", [])):
        spec = _spec_from_entry(entry, f"#{i + 1} in {path.name}")
        if spec.id in specs:
            raise GenimgError(f"catalog {path.name} lists model id {spec.id!r} twice")
        specs[spec.id] = spec
    return specs


def adhoc_spec(source: str) -> ModelSpec:
    """A catalog entry for a diffusers model typed by the user (hub id or local folder).

    Raises GenimgError when custom models are switched off (hosted mode) or the text is
    neither a hub id nor an existing folder.
    """
    source = source.strip()
    if not settings().allow_custom_models:
        raise GenimgError(
            "loading models outside the catalog is switched off on this server: pick a catalog model "
            "(or set GENIMG_ALLOW_CUSTOM_MODELS=1 on a private, non-hosted server)")
    if not (_HUB_ID.match(source) or Path(source).expanduser().is_dir()):
        raise GenimgError(f"{source!r} is neither a hub id (owner/name) nor an existing folder")
    return ModelSpec(id=source, name=source, backend="diffusers", source=source,
                     tasks=("text-to-image", "image-to-image", "inpaint"))


def default_model(catalog: dict[str, ModelSpec], task: str = "text-to-image") -> str | None:
    """The id of the catalog's default model for ``task`` (marked ``default = true``), else the first."""
    candidates = [spec for spec in catalog.values() if task in spec.tasks]
    for spec in candidates:
        if spec.default:
            return spec.id
    return candidates[0].id if candidates else None

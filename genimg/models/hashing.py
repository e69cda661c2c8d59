"""``Model hash:`` as AUTOMATIC1111 writes it: the first 10 hex digits of the SHA-256 of the weights.

A1111 (its "AutoV2" hash, which Civitai looks models up by) hashes one checkpoint file. A
diffusers-style folder has several files, so we hash the one that makes a model what it is:
the denoiser (``unet/`` or ``transformer/``), else the one-pass generator (``generator/``, the
embedded GAN) or decoder (``vae/``, the embedded conditional VAE) -- never the shared text
encoder, which every embedded model has in common. The hash is computed once per file (size
and modification time unchanged) and cached for the process.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from genimg.models.catalog import ModelSpec

# Where to look, in order: the first folder holding a weights file wins.
_WEIGHT_FOLDERS = ("unet", "transformer", "generator", "vae", "")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
_HASHES: dict[tuple[str, int, int], str] = {}


def weights_file(folder: Path) -> Path | None:
    """The file whose hash names the model in ``folder`` (see module doc), or None when there is none."""
    if folder.is_file():
        return folder
    for sub in _WEIGHT_FOLDERS:
        where = folder / sub if sub else folder
        if not where.is_dir():
            continue
        found = sorted(p for p in where.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
        if found:
            # diffusion_pytorch_model.safetensors before a .fp16 variant or a .bin copy
            found.sort(key=lambda p: (p.suffix != ".safetensors", ".fp16" in p.name, p.name))
            return found[0]
    return None


def file_hash(path: Path) -> str:
    """First 10 hex digits of the SHA-256 of ``path`` (A1111's AutoV2), cached per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()[:10]
    return _HASHES[key]


def model_hash(spec: ModelSpec) -> str | None:
    """The ``Model hash:`` of ``spec``'s weights, or None when they are not on this machine."""
    folder = spec.local_path()
    if folder is None:  # a hub id: its cached snapshot, if any
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(spec.source, "model_index.json")
        except Exception:  # no cache or an unreadable one: nothing to hash
            return None
        if not isinstance(found, str):
            return None
        folder = Path(found).parent
    if not folder.exists():
        return None
    path = weights_file(folder)
    return file_hash(path) if path is not None else None


__all__ = ["file_hash", "model_hash", "weights_file"]

"""Which weights made a cell: a fingerprint of a model's files, without loading them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from genimg.models.catalog import ModelSpec

_FINGERPRINTS: dict[tuple, dict[str, Any]] = {}
HASH_LIMIT_BYTES = 1 << 30  # hash weight files' contents up to 1 GiB; above that, sizes + mtimes


def weights_fingerprint(spec: ModelSpec) -> dict[str, Any]:
    """What identifies the weights of ``spec`` without loading them.

    Local folder: sha256 over every file's relative path and contents (``kind`` "sha256"), or,
    above HASH_LIMIT_BYTES, over paths, sizes and modification times ("stat"). Hub id: the
    cached snapshot's commit ("hub-revision"), else just the id ("hub-id"). Cached per process
    while the files' sizes and mtimes stay the same.
    """
    folder = spec.local_path()
    if folder is None:
        revision = None
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(spec.source, "model_index.json")
            if isinstance(found, str):
                revision = Path(found).parent.name  # .../snapshots/<commit>/model_index.json
        except Exception:  # no cache or an unreadable one: the id alone is what we know
            revision = None
        return {"kind": "hub-revision" if revision else "hub-id", "value": revision or spec.source}
    if not folder.exists():
        return {"kind": "missing", "value": str(folder)}
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    stats = tuple((str(p.relative_to(folder) if folder.is_dir() else p.name), p.stat().st_size,
                   p.stat().st_mtime_ns) for p in files)
    key = (str(folder), stats)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    digest = hashlib.sha256()
    total = sum(s[1] for s in stats)
    if total <= HASH_LIMIT_BYTES:
        for (name, _size, _mtime), path in zip(stats, files):
            digest.update(name.encode() + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        result = {"kind": "sha256", "value": digest.hexdigest(), "bytes": total, "files": len(files)}
    else:
        digest.update(json.dumps(stats).encode())
        result = {"kind": "stat", "value": digest.hexdigest(), "bytes": total, "files": len(files)}
    _FINGERPRINTS[key] = result
    return result

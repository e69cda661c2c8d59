"""Saving results: PNGs that carry their generation parameters.

Each PNG gets a ``parameters`` text chunk in the format AUTOMATIC1111 writes and Civitai
reads, and a ``genimg`` chunk with the full JSON record (model, all parameters, seed,
timings), so an image alone is enough to reproduce it.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from genimg import __version__

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def json_safe(obj: Any) -> Any:
    """``obj`` with what JSON cannot hold made portable, recursively (one rule for every --json and API answer).

    ±inf become the strings "inf" / "-inf" (identical images' PSNR; shown as "∞"), NaN becomes
    None, NumPy scalars become Python numbers, paths become strings, tuples become lists.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()  # a NumPy scalar
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def a1111_parameters(record: dict[str, Any]) -> str:
    """The AUTOMATIC1111 ``parameters`` text for a generation record.

    Format: prompt line, optional "Negative prompt: ..." line, then a line of comma-separated
    ``Key: value`` pairs: Steps, Sampler (the scheduler that ran, under its A1111 name: see
    genimg.schedulers), CFG scale, Seed, Size, Model hash (A1111's 10-digit SHA-256), Model (the
    catalog id: no commas, so readers that split on commas get it whole), Version.
    """
    from genimg.params import SCHEDULERS

    lines = [record.get("prompt", "")]
    if record.get("negative_prompt"):
        lines.append(f"Negative prompt: {record['negative_prompt']}")
    scheduler = record.get("scheduler", "default")
    # "sampler" is what ran (set by the pipeline run); older records only name the user's choice. Images no
    # sampler made (style transfer, restoration) get no Sampler pair rather than a made-up one.
    sampler = record.get("sampler") or (SCHEDULERS[scheduler][1] if scheduler in SCHEDULERS else None)
    model = record.get("model", {})
    pairs = [
        ("Steps", record.get("steps")),
        ("Sampler", sampler),
        ("CFG scale", record.get("guidance")),
        ("Seed", record.get("seed")),
        ("Size", f"{record.get('width')}x{record.get('height')}"),
        ("Model hash", model.get("hash")),
        ("Model", model.get("id") or model.get("name")),
        ("Version", f"genimg {__version__}"),
    ]
    # A1111 separates pairs with ", " and quotes values that contain commas.
    rendered = []
    for key, value in pairs:
        if value is None:
            continue
        text = str(value)
        if "," in text or ":" in text:
            text = json.dumps(text)
        rendered.append(f"{key}: {text}")
    lines.append(", ".join(rendered))
    return "\n".join(lines)


def png_info(record: dict[str, Any]) -> PngImagePlugin.PngInfo:
    """PNG text chunks for ``record``: ``parameters`` (A1111) and ``genimg`` (JSON)."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("parameters", a1111_parameters(record))
    info.add_itxt("genimg", json.dumps(record, sort_keys=True, default=str))
    return info


def save_png(image: Image.Image, record: dict[str, Any], path: str | Path) -> Path:
    """Write ``image`` to ``path`` as PNG with the record's chunks; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # compress_level 1: these are previews; level 6 costs ~3x the time for ~10% smaller files.
    image.save(path, format="PNG", pnginfo=png_info(record), compress_level=1)
    return path


def save_grid_png(image: Image.Image, payload: dict[str, Any], path: str | Path) -> Path:
    """Write a parameter-grid image to ``path`` with its axes and cells as a ``genimg-grid`` JSON chunk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("genimg-grid", json.dumps(json_safe(payload), sort_keys=True, default=str))
    image.save(path, format="PNG", pnginfo=info, compress_level=1)
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``genimg`` JSON record stored in a PNG we wrote (empty dict when absent)."""
    with Image.open(path) as image:
        text = image.info.get("genimg")
    return json.loads(text) if text else {}


def output_name(model_id: str, seed: int, index: int = 0, prefix: str = "") -> str:
    """A file name that sorts by time and says model and seed: safe on every filesystem."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    model = _UNSAFE.sub("_", model_id)[:60]
    return f"{prefix}{stamp}-{model}-{seed}-{index}.png"


def save_result(result: Any, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """Save every image of a GenerateResult into ``out_dir``; return the paths in order."""
    out_dir = Path(out_dir)
    paths = []
    for i, image in enumerate(result.images):
        record = result.record(i)
        paths.append(save_png(image, record, out_dir / output_name(record["model"]["id"], record["seed"], i, prefix)))
    return paths


def attach_metadata(image: Image.Image, record: dict[str, Any]) -> Image.Image:
    """Put the record's text chunks into ``image.info``.

    Gradio copies string entries of ``info`` into the PNG it serves (``format="png"``),
    so images shown in the UI download with their parameters, with no second file.
    """
    image.info["parameters"] = a1111_parameters(record)
    image.info["genimg"] = json.dumps(record, sort_keys=True, default=str)
    return image

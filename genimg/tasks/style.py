"""Style transfer: one content image, several methods side by side, each scored and timed.

The same function serves the UI, the CLI, the API and the tests. Every method (a registered
:class:`~genimg.style.methods.StyleMethod`) sees the same working-size content (longer side =
``size``) and the same style image, and every result is scored against them with the same
measures (see :mod:`genimg.style.scores`), so the columns compare. Methods run through the
side-by-side runner (:mod:`genimg.runner`): one after another, and a method that cannot run
here gets an error cell while the others still run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image

from genimg import __version__
from genimg import params as P
from genimg.config import settings
from genimg.errors import GenimgError
from genimg.imageio import DecodedImage, load_image
from genimg.models.pool import ModelPool, get_pool
from genimg.runner import ProgressFn, run_cells
from genimg.style import DEFAULT_METHODS, STYLES, StyleInputs
from genimg.style.scores import Scores
MIN_WORKING_SIDE = 32     # the feature scores and the networks' downsampling need this much
MAX_SEED = 2**32 - 1


@dataclass
class StyleCell:
    """One method's result: the image, its scores and times, or the error that stopped it."""

    method: str
    label: str
    image: Image.Image | None = None
    scores: Scores | None = None
    seconds: float = 0.0        # the method itself (plus preserve-colours), model loading excluded
    load_seconds: float = 0.0   # loading a model or network in this request (cold start), else 0
    score_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)   # what this method actually used
    model: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The numbers shown under the image (and in ``--json``)."""
        row: dict[str, Any] = {"method": self.method, "label": self.label}
        if self.error is not None:
            row["error"] = self.error
            return row
        row.update({"seconds": round(self.seconds, 4), "load_seconds": round(self.load_seconds, 4),
                    "score_seconds": round(self.score_seconds, 4), "width": self.image.width,
                    "height": self.image.height, "params": self.params, "notes": self.notes})
        if self.scores is not None:
            row["scores"] = self.scores.as_dict()
        return row


@dataclass
class StyleResult:
    """All methods' cells plus the shared inputs and parameters."""

    cells: list[StyleCell]
    content: Image.Image               # the working-size content every method saw
    style: Image.Image | None          # the working-size style image (None without one)
    reference: Scores | None           # the content itself scored as if it were a result
    params: dict[str, Any]

    def cell(self, method: str) -> StyleCell:
        for cell in self.cells:
            if cell.method == method:
                return cell
        raise KeyError(method)

    def record(self, cell: StyleCell) -> dict[str, Any]:
        """The full JSON record of ``cell``'s image (saved in its PNG)."""
        p = self.params
        prompt = p.get("style_prompt") if cell.method == "sdedit" else None
        return {
            "genimg_version": __version__,
            "task": "style",
            "method": cell.method,
            "method_label": cell.label,
            "model": cell.model or {"id": cell.method, "name": cell.label},
            "prompt": prompt or f"style transfer: {cell.label}",
            "width": cell.image.width if cell.image is not None else None,
            "height": cell.image.height if cell.image is not None else None,
            "strength": p["strength"],
            "preserve_colors": p["preserve_colors"],
            "size": p["size"],
            **cell.params,
            "scores": cell.scores.as_dict() if cell.scores is not None else None,
            "timings": {"seconds": cell.seconds, "load_seconds": cell.load_seconds,
                        "score_seconds": cell.score_seconds},
        }


# -- parameters ----------------------------------------------------------------------

def parse_methods(methods: Iterable[str] | str | None) -> list[str]:
    """Method keys from a list or a comma-separated string; GenimgError for unknown or repeated ones."""
    return [m.id for m in STYLES.choose(methods, default=None if methods is not None else DEFAULT_METHODS)]


def working_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) with the longer side ``size`` and the aspect ratio kept; GenimgError when too thin."""
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    if min(w, h) < MIN_WORKING_SIDE:
        raise GenimgError(f"the content image is {width}x{height}; at size {size} its shorter side would be "
                          f"{min(w, h)} px, and style transfer needs at least {MIN_WORKING_SIDE}: use a larger "
                          "size or a less elongated image")
    return w, h


def _fit(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def torch_threads() -> int | None:
    """Intra-op threads for the torch work here: 1 when the CPU is oversubscribed, else torch's default.

    Measured on the shared 2-core development machine at load ~8: EfficientNet-Lite0
    forward+backward at 512x340 took 0.7 s with 1 thread and 2.7-9 s with 2 (OpenMP
    barriers waiting on descheduled cores). On an idle machine more threads win.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    return 1 if load >= (os.cpu_count() or 1) else None


# -- the task --------------------------------------------------------------------------

def stylize(content: Any, style: Any = None, style_prompt: str | None = None,
            methods: Iterable[str] | str | None = DEFAULT_METHODS, strength: float = 1.0,
            preserve_colors: bool = False, size: int = 512, *, preset: int | None = None,
            model: str | None = None, negative_prompt: str = "", steps: int | None = None,
            guidance: float | None = None, seed: int = 0, iterations: int | None = None,
            content_weight: float | None = None, style_weight: float | None = None, early_stop: bool = True,
            scores: bool = True, pool: ModelPool | None = None,
            progress: ProgressFn | None = None) -> StyleResult:
    """Stylize ``content`` with each of ``methods``; score and time every result.

    Takes: ``content`` (and ``style``) as anything the image gate accepts (path, bytes,
    PIL image, array); ``style_prompt`` for SDEdit; ``methods`` keys of
    :data:`genimg.style.STYLES`; ``strength`` 0..1 (meaning per method: ``strength_meaning``);
    ``preserve_colors``: keep the content's chroma (CIELAB a/b) for every method; ``size``:
    the longer side of the working image and the outputs. Method options: ``preset``
    (0-25) for "preset"; ``model`` (a text-to-image catalog id, default: the catalog's),
    ``negative_prompt``, ``steps``, ``guidance``, ``seed`` for "sdedit"; ``iterations``,
    ``content_weight``, ``style_weight``, ``early_stop`` for "gatys".
    Returns a StyleResult. Raises GenimgError for bad images or parameters, or when no
    method could run.
    """
    from genimg.style import gatys as G

    pool = pool or get_pool()
    limits = settings().limits
    if content is None:
        raise GenimgError("no content image given: upload or choose one")
    keys = parse_methods(methods)
    strength = P.check_float(strength, "strength", 0.0, 1.0)
    size = P.check_int(size, "size", MIN_WORKING_SIDE, limits.max_side)
    preserve_colors = bool(preserve_colors)
    seed = P.check_int(seed, "seed", 0, MAX_SEED)
    params: dict[str, Any] = {"methods": keys, "strength": strength, "preserve_colors": preserve_colors,
                              "size": size}
    needs_style = [k for k in keys if STYLES[k].needs == "style"]
    if needs_style and style is None:
        raise GenimgError(f"{', '.join(needs_style)} need{'s' if len(needs_style) == 1 else ''} a style image: "
                          "upload one (or choose the preset or sdedit method)")
    if "preset" in keys:
        from genimg.style.neural import check_preset

        params["preset"] = check_preset(preset)
    if "sdedit" in keys:
        params["style_prompt"] = P.check_prompt(style_prompt, limits, what="style prompt (for sdedit)")
        params["negative_prompt"] = P.check_prompt(negative_prompt, limits, what="negative prompt", allow_empty=True)
        if steps is not None:
            params["steps"] = P.check_int(steps, "steps", 1, limits.max_steps)
        if guidance is not None:
            params["guidance"] = P.check_float(guidance, "guidance", 0.0, 30.0)
        params["seed"] = seed
        params["model"] = (model or "").strip() or None
    if "gatys" in keys:
        # Optimisation keeps the image, its gradients and every feature map alive: 2.2 GB of RSS at
        # 1024 px and 6.5 GB at 2048 px on the CPU (measured), so it has its own, smaller ceiling.
        if size > limits.max_optimise_side:
            raise GenimgError(f"gatys optimises every pixel and takes at most size {limits.max_optimise_side} here "
                              f"(asked {size}): lower the size, or untick gatys")
        params["iterations"] = P.check_int(G.DEFAULT_ITERATIONS if iterations is None else iterations,
                                           "iterations", 1, limits.max_steps * 5)
        params["content_weight"] = P.check_float(G.DEFAULT_CONTENT_WEIGHT if content_weight is None
                                                 else content_weight, "content weight", 0.0, 1e6)
        params["style_weight"] = P.check_float(G.DEFAULT_STYLE_WEIGHT if style_weight is None else style_weight,
                                               "style weight", 0.0, 1e6)
        params["early_stop"] = bool(early_stop)

    decoded = load_image(content, what="content image", min_side=8)
    w, h = working_size(*decoded.size, size)
    content_arr = _fit(decoded.image, (w, h))
    style_arr = None
    if style is not None:
        style_decoded = load_image(style, what="style image", min_side=8)
        sw, sh = style_decoded.size
        scale = size / max(sw, sh)
        style_arr = _fit(style_decoded.image, (max(8, round(sw * scale)), max(8, round(sh * scale))))
    inputs = StyleInputs(content_arr, style_arr, strength)

    from genimg.metrics.full_reference import intra_op_threads
    from genimg.style import color
    from genimg.style import features as F
    from genimg.style import scores as S

    features_ok, features_why = F.efficientnet_lite0_available() if scores else (False, "scores off")
    with intra_op_threads(torch_threads()):
        content_stages = S.stages(content_arr) if features_ok else None
        style_stages = S.stages(style_arr) if (features_ok and style_arr is not None) else None
        reference = (S.score(content_arr, content_arr, style_arr, content_stages, style_stages, features_ok)
                     if scores else None)

        def run_method(key: str, step: Any) -> StyleCell:
            method = STYLES[key]
            run = method.run(inputs, params, pool, step)
            image, seconds = run.image, run.seconds
            if preserve_colors:
                started = time.perf_counter()
                image = color.keep_content_colors(image, content_arr)
                seconds += time.perf_counter() - started
            cell = StyleCell(method=key, label=method.label, params=run.params, model=run.model, notes=run.notes,
                             load_seconds=run.load_seconds, seconds=seconds)
            if scores:
                started = time.perf_counter()
                # Style scores only where the method used the style image: a preset or a
                # prompt is not trying to match it, and its distance to it would mislead.
                uses_style = method.needs == "style"
                cell.scores = S.score(image, content_arr, style_arr if uses_style else None, content_stages,
                                      style_stages if uses_style else None, features_ok)
                cell.score_seconds = time.perf_counter() - started
            cell.image = _with_alpha(Image.fromarray(image), decoded)
            return cell

        ran = run_cells(keys, run_method, label=lambda k: STYLES[k].label, what="style-transfer method",
                        progress=progress)
    cells = [c.value if c.ok else StyleCell(method=c.key, label=c.label, error=c.error) for c in ran]
    if scores and not features_ok:
        params["scores_note"] = f"feature scores skipped: {features_why}"
    return StyleResult(cells=cells, content=Image.fromarray(content_arr),
                       style=Image.fromarray(style_arr) if style_arr is not None else None,
                       reference=reference, params=params)


def _with_alpha(image: Image.Image, decoded: DecodedImage) -> Image.Image:
    """Give the result the content's transparency back (resized), if it had any."""
    if decoded.alpha is None:
        return image
    alpha = decoded.alpha.resize(image.size, Image.Resampling.LANCZOS)
    out = image.convert("RGBA")
    out.putalpha(alpha)
    return out


# -- saving ------------------------------------------------------------------------------

def save_result(result: StyleResult, out: str | Path, stem: str = "style") -> list[Path]:
    """Save every successful cell as PNG with its record.

    ``out`` is a folder (files ``<stem>-<method>.png``), or — when the result has exactly one
    image — a file path ending in .png. Returns the paths in cell order.
    """
    from genimg.outputs import save_png

    out = Path(out)
    done = [c for c in result.cells if c.image is not None]
    if out.suffix.lower() == ".png":
        if len(done) != 1:
            raise GenimgError(f"--out {out} is one file but there are {len(done)} results: give a folder")
        return [save_png(done[0].image, result.record(done[0]), out)]
    if out.suffix.lower() in (".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif") and not out.is_dir():
        raise GenimgError(f"--out {out}: results are saved as PNG (with their parameters); give a .png file "
                          "for a single method, or a folder")
    return [save_png(c.image, result.record(c), out / f"{stem}-{c.method}.png") for c in done]


__all__ = ["StyleCell", "StyleResult", "stylize", "parse_methods", "save_result", "DEFAULT_METHODS"]

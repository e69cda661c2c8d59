"""Restoration: degrade → restore with several methods → score; or restore a user's image as is.

The same function serves the Restore tab, ``python -m genimg restore``, the API
(``/restore``), the tests and :func:`genimg.bench.restore.bench_restore`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

from genimg import __version__
from genimg.config import Limits, settings
from genimg.errors import GenimgError
from genimg.imageio import DecodedImage, load_image
from genimg.models.pool import ModelPool, get_pool
from genimg.metrics import psnr, ssim
from genimg.metrics.registry import METRICS
from genimg.restore.classical import Context
from genimg.restore.degrade import Degraded, as_mask, degrade as apply_degradation, parse_spec
from genimg.restore.methods import check_methods, method_task, run_method, target_scale
from genimg.runner import ProgressFn, run_cells



def no_reference_metric() -> tuple[Callable[[np.ndarray], float | None] | None, str]:
    """(BRISQUE on a uint8 RGB array → float, or None where undefined; name), or (None, why not)."""
    metric = METRICS["brisque"]
    ok, reason = metric.availability()
    if not ok:
        return None, reason

    def score_or_none(image: np.ndarray) -> float | None:
        try:
            return round(metric.run(image), 3)
        except GenimgError:  # too small, or flat: BRISQUE is undefined there
            return None

    return score_or_none, "brisque"


def score(reference: np.ndarray, image: np.ndarray, grayscale: bool) -> dict[str, float]:
    """PSNR (dB) and SSIM of uint8 ``image`` against ``reference`` (same shape); grayscale on one channel."""
    if reference.shape != image.shape:
        raise RuntimeError(f"cannot score {image.shape} against {reference.shape}")
    a, b = (reference[..., 0], image[..., 0]) if grayscale else (reference, image)
    value = psnr(a, b)
    return {"psnr": round(float(value), 4) if np.isfinite(value) else float("inf"), "ssim": round(float(ssim(a, b)), 4)}


@dataclass
class MethodResult:
    """One method's row: its image (the input's mode and alpha restored), scores, time, or its error."""

    method: str
    name: str
    task: str
    backend: str
    image: Image.Image | None
    psnr: float | None = None
    ssim: float | None = None
    brisque: float | None = None
    seconds: float = 0.0
    load_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def row(self) -> dict[str, Any]:
        """The table row (and ``--json`` entry) of this method."""
        row = {"method": self.method, "name": self.name, "task": self.task, "psnr": self.psnr, "ssim": self.ssim,
               "seconds": round(self.seconds, 4), "load_s": round(self.load_s, 4)}
        if self.brisque is not None:
            row["brisque"] = self.brisque
        if self.image is not None:
            row["size"] = list(self.image.size)
        if self.error:
            row["error"] = self.error
        return row


@dataclass
class RestoreResult:
    """Original (None when restoring a user's image directly), degraded input, per-method results."""

    original: Image.Image | None
    degraded: Image.Image
    outputs: list[MethodResult]
    degradation: dict[str, Any] | None
    seed: int
    input: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)   # scores of the degraded input itself
    metrics: str = ""
    mask: np.ndarray | None = None

    def table(self) -> list[dict[str, Any]]:
        """Rows: the degraded input first (when scored), then each method."""
        rows = []
        if self.baseline:
            label = "degraded input" if self.degradation else "input"
            rows.append({"method": f"({label})", "name": label, "task": "-", **self.baseline,
                         "seconds": 0.0, "load_s": 0.0})
        return rows + [out.row() for out in self.outputs]

    def best(self) -> dict[str, str]:
        """The method with the best PSNR (highest), SSIM (highest), BRISQUE (lowest) and time (lowest).

        A quality winner is named only when it beats the input it was given (the degraded image's own
        PSNR / SSIM / BRISQUE): a method that made things worse is never "best", even if the others did too.
        """
        done = [o for o in self.outputs if o.error is None]
        best: dict[str, str] = {}
        for key, pick in (("psnr", max), ("ssim", max), ("brisque", min), ("seconds", min)):
            scored = [o for o in done if getattr(o, key) is not None]
            if not scored:
                continue
            winner = pick(scored, key=lambda o: getattr(o, key))
            baseline = self.baseline.get(key)
            if key != "seconds" and baseline is not None and pick(getattr(winner, key), baseline) == baseline:
                continue  # no better than doing nothing
            best[key] = winner.method
        return best

    def record(self, method: MethodResult | None = None) -> dict[str, Any]:
        """The JSON record of the request (and of one method's output, when given) for PNG metadata."""
        record: dict[str, Any] = {"genimg_version": __version__, "task": "restore", "seed": self.seed,
                                  "degradation": self.degradation, "input": self.input}
        if method is not None:
            record.update({"method": method.method, "method_name": method.name, "method_task": method.task,
                           "params": method.params, "psnr": method.psnr, "ssim": method.ssim,
                           "seconds": round(method.seconds, 4)})
        return record


def _decode(image: Any, limits: Limits) -> DecodedImage:
    decoded = image if isinstance(image, DecodedImage) else load_image(image, what="image to restore", limits=limits,
                                                                        min_side=8)
    w, h = decoded.size
    if w * h > limits.max_pixels:
        raise GenimgError(f"image to restore is {w}x{h}; restoration here takes at most "
                          f"{limits.max_pixels / 1e6:.1f} megapixels (downscale or crop it first)")
    return decoded


def restore(image: Any, methods: Any, degrade: str | None = None, seed: int = 0,
            progress: ProgressFn | None = None, *, mask: Any = None, scale: int | None = None, prompt: str = "",
            pool: ModelPool | None = None, limits: Limits | None = None) -> RestoreResult:
    """Degrade ``image`` with the ``degrade`` spec (seeded), restore it with each of ``methods``, score each.

    ``image``: anything the image gate takes (path, bytes, PIL, array, DecodedImage).
    ``methods``: catalog ids (list or comma-separated). ``degrade``: a spec such as
    ``"noise:25,jpeg:20"`` (see genimg.restore.degrade), or None / "none" to restore the
    image as it is — then nothing is scored against a reference (BRISQUE when available).
    ``mask``: the hole mask for ``mask:user`` or for inpainting the user's image;
    ``scale``: upscale factor when not degraded (default: each upscaler's own).
    ``progress`` receives a genimg.runner.Progress: methods done, and the running one's tiles or steps.

    Returns a RestoreResult. A method whose weights are missing gets an error row; the
    others still run. Raises GenimgError for a bad image, spec, mask or method list,
    or when no method could run.
    """
    pool = pool or get_pool()
    limits = limits or settings().limits
    specs = check_methods(pool, methods)
    ops = parse_spec(degrade)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise GenimgError(f"seed must be a whole number, got {seed!r}") from None
    if not 0 <= seed < 2**32:
        raise GenimgError(f"seed must be between 0 and {2**32 - 1}, got {seed}")
    if scale is not None and int(scale) not in (1, 2, 3, 4):
        raise GenimgError(f"scale must be 1, 2, 3 or 4, got {scale}")
    decoded = _decode(image, limits)
    clean = decoded.rgb_array()
    h, w = clean.shape[:2]
    info = {"size": [w, h], "mode": decoded.original_mode, "bit_depth": decoded.bit_depth,
            "grayscale": decoded.grayscale, "alpha": decoded.alpha is not None, "format": decoded.original_format}

    if ops:
        degraded: Degraded = apply_degradation(clean, ops, seed=seed, user_mask=mask)
        work, hole_mask, psf, factor = degraded.image, degraded.mask, degraded.psf, degraded.scale
        if scale is not None and int(scale) != factor and any(method_task(s) == "upscale" for s in specs):
            raise GenimgError(f"scale {scale} does not match the degradation's down:{factor}; leave scale empty")
        record = degraded.record
    else:
        work, psf, factor, record = clean, None, 1, None
        hole_mask = as_mask(mask, h, w) if mask is not None else None
    up = factor if ops else int(scale or 0)
    for spec in specs:
        s = target_scale(spec, method_task(spec) or "", Context(scale=up))
        if work.shape[0] * work.shape[1] * s * s > 4 * limits.max_pixels:
            raise GenimgError(f"{spec.id} would make a {work.shape[1] * s}x{work.shape[0] * s} image; the limit here "
                              f"is {4 * limits.max_pixels / 1e6:.0f} megapixels of output (use a smaller image)")
    ctx = Context(mask=hole_mask, psf=psf, scale=up, prompt=prompt or "", seed=seed)

    nr_metric, _nr_name = no_reference_metric()

    def run_one(spec: Any, step: Any) -> MethodResult:
        task = method_task(spec) or ""
        run = run_method(pool, spec, work, ctx, grayscale=decoded.grayscale, progress=step)
        result = MethodResult(spec.id, spec.name, task, spec.backend, None, seconds=run.seconds, load_s=run.load_s,
                              params=run.params)
        if ops and run.image.shape == clean.shape:
            scores = score(clean, run.image, decoded.grayscale)
            result.psnr, result.ssim = scores["psnr"], scores["ssim"]
        if nr_metric is not None and (not ops or task == "upscale"):
            result.brisque = nr_metric(run.image)
        result.image = decoded.restore_mode(Image.fromarray(run.image))
        return result

    cells = run_cells(specs, run_one, key=lambda spec: spec.id, label=lambda spec: spec.name, what="method",
                      progress=progress)
    by_id = {spec.id: spec for spec in specs}
    outputs = [c.value if c.ok else MethodResult(c.key, by_id[c.key].name, method_task(by_id[c.key]) or "",
                                                 by_id[c.key].backend, None, error=c.error) for c in cells]

    baseline: dict[str, Any] = {}
    if ops and work.shape == clean.shape:
        baseline = score(clean, work, decoded.grayscale)
    elif not ops and nr_metric is not None:
        baseline = {"brisque": nr_metric(work)}  # the input's own no-reference score, to compare with
    return RestoreResult(original=decoded.restore_mode(Image.fromarray(clean)) if ops else None,
                         degraded=decoded.restore_mode(Image.fromarray(work)), outputs=outputs, degradation=record,
                         seed=seed, input=info, baseline=baseline, metrics="genimg.metrics" if ops else "",
                         mask=hole_mask)


"""Degradations applied on purpose to a clean image: composable, seeded, recorded.

A degradation is a list of operations written as a small spec, applied left to right::

    noise:25          Gaussian noise, sigma on the 0-255 scale
    poisson:30        Poisson (shot) noise; the number is photons at white (lower = noisier)
    blur:2            Gaussian blur, sigma in pixels
    motion:9:30       motion blur, length 9 px at 30 degrees (angle optional, default 0)
    jpeg:20           JPEG compression at quality 20 (1-95)
    down:4            downscale by 2, 3 or 4 (Pillow's antialiased bicubic)
    mask:strokes:6    random brush strokes erased (count optional, default 6)
    mask:box:0.3      a centred box erased, its side 0.3 of the image's (default 0.25)
    mask:user         the caller's own mask (painted in the UI, --mask in the CLI) erased

e.g. ``"noise:25,blur:2,jpeg:20,down:4"``. Erased pixels are set to white; the mask is
kept in the result for inpainting methods. The random draws (noise, strokes) come from one
``numpy.random.Generator`` seeded by ``seed``, so the same spec and seed give the same
image on any machine. Every parameter, the PSF of a blur and the mask are recorded.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from genimg.errors import GenimgError

OPS = ("noise", "poisson", "blur", "motion", "jpeg", "down", "mask")
SPEC_HELP = ("comma-separated operations: noise:SIGMA, poisson:PEAK, blur:SIGMA, motion:LENGTH[:ANGLE], "
             "jpeg:QUALITY, down:2|3|4, mask:strokes[:N] | mask:box[:FRACTION] | mask:user")
MAX_OPS = 12


@dataclass(frozen=True)
class Op:
    """One parsed operation: its name and numeric/text arguments."""

    name: str
    params: dict[str, Any]

    def text(self) -> str:
        """The op written back in the spec language."""
        p = self.params
        if self.name == "mask":
            extra = {"strokes": p.get("count"), "box": p.get("fraction"), "user": None}[p["kind"]]
            return f"mask:{p['kind']}" + (f":{_num(extra)}" if extra is not None else "")
        if self.name == "motion":
            return f"motion:{_num(p['length'])}:{_num(p['angle'])}"
        value = next(iter(p.values()))
        return f"{self.name}:{_num(value)}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(text: str, op: str, what: str, lo: float, hi: float, integer: bool = False) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise GenimgError(f"degradation {op!r}: {what} must be a number, got {text!r} ({SPEC_HELP})") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise GenimgError(f"degradation {op!r}: {what} must be between {lo:g} and {hi:g}, got {text}")
    if integer:
        if value != int(value):
            raise GenimgError(f"degradation {op!r}: {what} must be a whole number, got {text}")
        return int(value)
    return value


def parse_spec(spec: str | None) -> list[Op]:
    """Parse a degradation spec (see module docstring) into operations.

    Empty text or "none" gives no operation. Raises GenimgError naming the bad part.
    """
    if spec is None:
        return []
    text = spec.strip().lower()
    if text in ("", "none"):
        return []
    ops: list[Op] = []
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > MAX_OPS:
        raise GenimgError(f"degradation spec has {len(parts)} operations; at most {MAX_OPS}")
    for part in parts:
        if not part:
            raise GenimgError(f"degradation spec {spec!r} has an empty operation ({SPEC_HELP})")
        name, *args = [a.strip() for a in part.split(":")]
        if name not in OPS:
            raise GenimgError(f"unknown degradation {name!r} in {spec!r}: {SPEC_HELP}")
        need = {"noise": (1, 1), "poisson": (0, 1), "blur": (1, 1), "motion": (1, 2), "jpeg": (1, 1),
                "down": (1, 1), "mask": (1, 2)}[name]
        if not need[0] <= len(args) <= need[1]:
            raise GenimgError(f"degradation {part!r} has the wrong number of arguments: {SPEC_HELP}")
        if name == "noise":
            params = {"sigma": _number(args[0], part, "sigma (0-255 scale)", 0, 255)}
        elif name == "poisson":
            params = {"peak": _number(args[0], part, "peak (photons at white)", 1, 100000) if args else 30.0}
        elif name == "blur":
            params = {"sigma": _number(args[0], part, "sigma (pixels)", 0.1, 25)}
        elif name == "motion":
            params = {"length": _number(args[0], part, "length (pixels)", 1, 101),
                      "angle": _number(args[1], part, "angle (degrees)", -360, 360) if len(args) > 1 else 0.0}
        elif name == "jpeg":
            params = {"quality": _number(args[0], part, "quality", 1, 95, integer=True)}
        elif name == "down":
            factor = _number(args[0], part, "factor", 2, 4, integer=True)
            params = {"factor": factor}
        else:
            kind = args[0]
            if kind == "strokes":
                params = {"kind": kind, "count": _number(args[1], part, "stroke count", 1, 50, integer=True)
                          if len(args) > 1 else 6}
            elif kind == "box":
                params = {"kind": kind, "fraction": _number(args[1], part, "box side fraction", 0.02, 0.9)
                          if len(args) > 1 else 0.25}
            elif kind == "user":
                if len(args) > 1:
                    raise GenimgError("degradation 'mask:user' takes no argument: the mask comes from the caller")
                params = {"kind": kind}
            else:
                raise GenimgError(f"unknown mask kind {kind!r}: use mask:strokes[:N], mask:box[:FRACTION] or mask:user")
        ops.append(Op(name, params))
    if sum(op.name == "down" for op in ops) > 1:
        raise GenimgError("degradation spec has more than one 'down': combine them into one factor (2, 3 or 4)")
    return ops


def format_spec(ops: list[Op]) -> str:
    """The spec text for ``ops`` (canonical form: defaults filled in)."""
    return ",".join(op.text() for op in ops) or "none"


@dataclass
class Degraded:
    """A degraded image and everything needed to restore and score it.

    ``image``: uint8 (H', W', 3); ``mask``: bool (H', W') of erased pixels or None;
    ``psf``: the blur kernel when the only geometric change was one blur, else None;
    ``scale``: the downscale factor (1 when none); ``record``: JSON-able parameters.
    """

    image: np.ndarray
    mask: np.ndarray | None
    psf: np.ndarray | None
    scale: int
    spec: str
    seed: int
    record: dict[str, Any] = field(default_factory=dict)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian PSF, radius ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x ** 2) / (2.0 * sigma ** 2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised linear motion-blur PSF of ``length`` pixels at ``angle_deg`` (counter-clockwise).

    Hand-written (scikit-image and SciPy have no motion kernel): the segment is sampled
    every 1/8 pixel and each sample is splatted bilinearly, so any angle is anti-aliased.
    """
    radius = int(math.ceil(length / 2.0)) + 1
    size = 2 * radius + 1
    kernel = np.zeros((size, size), dtype=np.float64)
    theta = math.radians(angle_deg)
    dx, dy = math.cos(theta), -math.sin(theta)  # image rows grow downwards
    for t in np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, max(2, int(length * 8))):
        x, y = radius + t * dx, radius + t * dy
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for yy, xx, w in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                          (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)):
            if 0 <= yy < size and 0 <= xx < size:
                kernel[yy, xx] += w
    return kernel / kernel.sum()


def convolve(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Blur float (H, W, C) ``image`` with ``psf``, mirror-padded at the borders (SciPy)."""
    from scipy.ndimage import convolve as nd_convolve

    return np.stack([nd_convolve(image[..., c], psf, mode="reflect") for c in range(image.shape[2])], axis=-1)


def stroke_mask(height: int, width: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Random brush strokes (polylines of 3-6 points, width 3-8% of the short side), bool (H, W)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    short = min(height, width)
    for _ in range(count):
        points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height)))]
        for _ in range(int(rng.integers(2, 6))):
            angle = rng.uniform(0, 2 * math.pi)
            step = rng.uniform(0.08, 0.25) * short
            x, y = points[-1]
            points.append((float(np.clip(x + step * math.cos(angle), 0, width - 1)),
                           float(np.clip(y + step * math.sin(angle), 0, height - 1))))
        stroke = max(2, int(round(rng.uniform(0.03, 0.08) * short)))
        draw.line(points, fill=255, width=stroke, joint="curve")
        for x, y in points:  # round caps
            draw.ellipse((x - stroke / 2, y - stroke / 2, x + stroke / 2, y + stroke / 2), fill=255)
    return np.asarray(canvas) > 0


def box_mask(height: int, width: int, fraction: float) -> np.ndarray:
    """A centred box of side ``fraction`` of each dimension, bool (H, W)."""
    mask = np.zeros((height, width), dtype=bool)
    bh, bw = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = (height - bh) // 2, (width - bw) // 2
    mask[top:top + bh, left:left + bw] = True
    return mask


def as_mask(mask: Any, height: int, width: int) -> np.ndarray:
    """A caller's mask (PIL image, array; non-zero / opaque = hole) as bool (H, W) at the image's size.

    Raises GenimgError when it is empty, covers everything, or is not image-like.
    """
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA", "PA"):
            array = np.asarray(mask.getchannel("A"))
        else:
            array = np.asarray(mask.convert("L"))
        if mask.size != (width, height):
            array = np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.NEAREST))
    else:
        array = np.asarray(mask)
        if array.ndim == 3:
            array = array[..., 3] if array.shape[2] == 4 else array.max(axis=2)
        if array.ndim != 2:
            raise GenimgError(f"mask must be a 2-D image, got shape {array.shape}")
        if array.shape != (height, width):
            array = np.asarray(Image.fromarray((array > 0).astype(np.uint8) * 255).resize(
                (width, height), Image.Resampling.NEAREST))
    result = array > (127 if array.dtype == np.uint8 and array.max() > 1 else 0)
    if not result.any():
        raise GenimgError("the mask is empty: paint the area to fill (white or opaque = hole)")
    if result.all():
        raise GenimgError("the mask covers the whole image, so nothing is left to fill from: "
                          "paint only the holes (white or opaque = hole)")
    return result


def degrade(image: np.ndarray, spec: str | list[Op], seed: int = 0, user_mask: Any = None) -> Degraded:
    """Apply the degradation ``spec`` to uint8 (H, W, 3) ``image`` with random draws seeded by ``seed``.

    Returns a Degraded (uint8 image, mask, PSF, scale, record). Raises GenimgError for a
    bad spec, an image too small for the downscale, or ``mask:user`` without a mask.
    """
    ops = parse_spec(spec) if isinstance(spec, str) else list(spec)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise GenimgError(f"degrade needs an 8-bit RGB image (H, W, 3), got {image.dtype} {image.shape}")
    rng = np.random.default_rng(seed)
    x = image.astype(np.float32) / 255.0
    mask: np.ndarray | None = None
    psf: np.ndarray | None = None
    blurs = 0
    scale = 1
    steps: list[dict[str, Any]] = []
    for op in ops:
        p = op.params
        h, w = x.shape[:2]
        entry: dict[str, Any] = {"op": op.name, **p}
        if op.name == "noise":
            x = x + rng.normal(0.0, p["sigma"] / 255.0, size=x.shape).astype(np.float32)
        elif op.name == "poisson":
            x = rng.poisson(np.clip(x, 0, 1) * p["peak"]).astype(np.float32) / np.float32(p["peak"])
        elif op.name in ("blur", "motion"):
            kernel = gaussian_kernel(p["sigma"]) if op.name == "blur" else motion_kernel(p["length"], p["angle"])
            x = convolve(x, kernel).astype(np.float32)
            psf, blurs = kernel, blurs + 1
            entry["psf_size"] = list(kernel.shape)
        elif op.name == "jpeg":
            buffer = io.BytesIO()
            Image.fromarray(_to_uint8(x)).save(buffer, format="JPEG", quality=p["quality"])
            x = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
            entry["bytes"] = buffer.tell()
        elif op.name == "down":
            k = p["factor"]
            if h % k or w % k:
                # Crop to a multiple of k so that ×k restores exactly the original size.
                raise GenimgError(f"down:{k} needs the image's sides to be multiples of {k}; it is {w}x{h} "
                                  f"(crop it to {w - w % k}x{h - h % k} first)")
            if min(h, w) // k < 8:
                raise GenimgError(f"down:{k} would leave a {w // k}x{h // k} image: use a larger image")
            small = Image.fromarray(_to_uint8(x)).resize((w // k, h // k), Image.Resampling.BICUBIC)
            x = np.asarray(small, dtype=np.float32) / 255.0
            if mask is not None:
                mask = np.asarray(Image.fromarray(mask).resize((w // k, h // k), Image.Resampling.NEAREST))
            scale *= k
        elif op.name == "mask":
            if p["kind"] == "strokes":
                new = stroke_mask(h, w, p["count"], rng)
            elif p["kind"] == "box":
                new = box_mask(h, w, p["fraction"])
            else:
                if user_mask is None:
                    raise GenimgError("degradation 'mask:user' needs a mask: paint one in the UI or pass --mask")
                new = as_mask(user_mask, h, w)
            mask = new if mask is None else (mask | new)
            x = x.copy()
            x[mask] = 1.0
            entry["masked_fraction"] = round(float(new.mean()), 4)
        steps.append(entry)
    # The known PSF is only the true blur of the result when nothing rescaled it afterwards
    # and there was a single blur; otherwise deblurring methods estimate one.
    if blurs != 1 or scale != 1:
        psf = None
    out = _to_uint8(x)
    record = {"spec": format_spec(ops), "seed": int(seed), "steps": steps, "scale": scale,
              "size": [int(out.shape[1]), int(out.shape[0])], "known_psf": psf is not None,
              "masked_fraction": round(float(mask.mean()), 4) if mask is not None else 0.0}
    return Degraded(image=out, mask=mask, psf=psf, scale=scale, spec=record["spec"], seed=int(seed), record=record)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

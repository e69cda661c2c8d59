"""Classical-vision detection for the scene grammar: the background and every object in an image.

Pipeline for one image (numpy + scikit-image/scipy, no learned models):

1. Background: the dominant palette colour of the border pixels (nearest in CIELAB); its
   measured RGB is the median of those pixels, so a tinted background still works.
2. Pixels: each pixel is explained as the background mixed with one palette colour
   (coverage from projecting onto the background->colour line in sRGB, fit error in
   CIELAB). A pixel farther than ``UNASSIGNED_LAB`` from every such mix is unassigned.
   The orange-looking rim of a red shape on yellow is an exact red/yellow mix, so
   anti-aliased or blurred edges never turn into objects of their own.
3. Objects: 8-connected components of pixels at least half covered by some palette colour
   (plus solid off-palette patches); specks below ``MIN_AREA_FRAC`` are dropped. A
   component is split only where a second colour forms a solid patch (touching objects).
4. Colour: the median of an object's most strongly coloured pixels, named by the nearest
   palette colour (as a mix with the background) within ``UNASSIGNED_LAB``, else None.
5. Shape: the object's coverage map is compared (soft IoU) with each shape rendered by the
   grammar's own rasteriser at the same area, centroid and resolution, at a few blur levels
   and, when the upright fits are not conclusive, over rotations. The best shape must fit
   well and clearly better than the runner-up, else the shape is None: a blob passes as no
   shape. Fitting at the image's own resolution makes this work at 32 px as at 128 px.
6. Size from the fitted template diameter; position and relation from coverage centroids.

Thresholds follow the grammar's placement rules with a safety margin; each constant below
says why it has its value. Checking what was found against a prompt is
:mod:`genimg.scenes.evaluator`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from genimg.errors import GenimgError
from genimg.scenes import grammar
from genimg.scenes.grammar import COLOUR_NAMES, COLOURS, SHAPES, SIZES

# ---------------------------------------------------------------------------- thresholds
# The closest palette pair is ~45 CIELAB units apart, so a pixel within 28 of a palette
# colour (or of a background/palette mix) is unambiguous; farther ones are unassigned.
UNASSIGNED_LAB = 28.0
# Pixel noise is a few CIELAB units; solid off-palette patches must be twice this far
# from the background to count as (colourless) objects.
FOREGROUND_LAB = 12.0
# Pixels this close to the background colour are background. Half coverage of even the
# closest palette colour is about three times farther.
BACKGROUND_LAB = 6.0
# An object's strongest pixels must show at least this coverage of a palette colour for
# it to be named that colour (a washed-out grey ~ half-covered black on white is not).
SOLID_ALPHA = 0.85
# Shape fitting is the costly step (~0.1-1 s per object); a noisy image can hold dozens of
# candidate objects. The grammar has at most 4 objects, so only the 8 largest are fitted and
# the rest get shape None (they still count as objects, so count checks fail as they should).
MAX_SHAPE_FITS = 8
# Objects smaller than this fraction of the image are specks (the smallest grammar object,
# a small star, covers ~1.4 % of the image).
MIN_AREA_FRAC = 0.004
# Template fitting: ground truth fits its own shape with soft IoU ~0.97-1.0, the wrong
# template of the same area and place ~0.65-0.92. The best fit must reach SHAPE_MIN_IOU,
# and the runner-up's error (1 - IoU) must be at least SHAPE_ERROR_RATIO times the best's
# plus SHAPE_MARGIN; otherwise the shape is unknown (an ellipse or blob is no shape). A
# ratio rather than a fixed gap, because blur and noise shrink all the gaps together.
SHAPE_MIN_IOU = 0.85
SHAPE_ERROR_RATIO = 2.0
SHAPE_MARGIN = 0.01
# Our upright renders fit their template at ~0.99; anything worse may be a rotated shape.
UPRIGHT_ACCEPT_IOU = 0.97
# Blur levels (Gaussian sigma as a fraction of the image side; 0.5-2 px at 64 px) the
# templates are also tried at, so soft generated images still fit their shape.
BLUR_LEVELS: tuple[float, ...] = (0.008, 0.016, 0.024, 0.032)
# Size: the geometric mean of the small and large diameters separates the two.
SIZE_SPLIT = float(np.sqrt(SIZES["small"] * SIZES["large"]))

# Rotations swept when the upright fits leave the shape unclear or imperfect (generated
# images need not be upright); each shape's symmetry period limits the range.
_ROTATIONS = {
    "circle": (0.0,),
    "square": tuple(np.deg2rad(np.arange(0, 90, 15))),
    "triangle": tuple(np.deg2rad(np.arange(0, 360, 15))),
    "star": tuple(np.deg2rad(np.arange(0, 72, 12))),
}

# sRGB (D65) -> CIE XYZ, normalised by the D65 white point: what skimage's rgb2lab uses.
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
) / np.array([[0.95047], [1.0], [1.08883]])


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of float sRGB in 0..255, any leading shape.

    The same formula as ``skimage.color.rgb2lab``, written out because that function's
    per-call overhead dominated on the small arrays evaluated here.
    """
    c = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 255.0) / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)


_PALETTE_RGB = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float64)
_PALETTE_LAB = _lab(_PALETTE_RGB)


# ---------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class DetectedObject:
    """One object found in an image. ``x``, ``y`` (centroid) and ``diameter`` are fractions
    of the image side; ``colour``/``shape`` are None when no palette colour / shape fits."""

    colour: str | None
    shape: str | None
    size: str
    x: float
    y: float
    diameter: float
    area: float  # fraction of the image
    shape_iou: float  # soft IoU of the best shape template
    blur: float  # blur (Gaussian sigma, pixels) of the best template


@dataclass(frozen=True)
class Detection:
    """Everything :func:`detect` found: the background palette colour and the objects."""

    background: str
    objects: tuple[DetectedObject, ...]


def _as_rgb_array(image) -> np.ndarray:
    """uint8 (H, W, 3) array from a PIL image or array; GenimgError if it is not an image."""
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]  # drop an alpha channel
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise GenimgError(
                f"image array must be uint8 with shape (H, W, 3), got {arr.dtype} {arr.shape}; "
                "convert generated floats with (x * 255).round().clip(0, 255).astype(np.uint8)"
            )
    else:
        raise GenimgError(f"image must be a PIL image or a numpy array, got {type(image).__name__}")
    if min(arr.shape[:2]) < 32:
        raise GenimgError(f"image must be at least 32x32 pixels, got {arr.shape[1]}x{arr.shape[0]}")
    return arr


def _background(rgb: np.ndarray) -> tuple[int, np.ndarray]:
    """(palette index, measured RGB) of the background: the dominant colour of the border."""
    h, w = rgb.shape[:2]
    k = max(1, round(0.03 * min(h, w)))  # ring width; the grammar keeps objects 4 % inside
    ring = np.zeros((h, w), dtype=bool)
    ring[:k], ring[-k:], ring[:, :k], ring[:, -k:] = True, True, True, True
    border = rgb[ring].astype(np.float64)
    nearest = np.linalg.norm(_lab(border)[:, None, :] - _PALETTE_LAB, axis=-1).argmin(axis=1)
    bg = int(np.bincount(nearest, minlength=len(COLOUR_NAMES)).argmax())
    return bg, np.median(border[nearest == bg], axis=0)


def _coverage(rgb: np.ndarray, bg_rgb: np.ndarray, obj_rgb: np.ndarray) -> np.ndarray:
    """Unclipped coverage of a colour-``obj_rgb`` object over ``bg_rgb`` for each pixel.

    Renders (and most generators) mix object and background linearly in sRGB at edges, so
    projecting a pixel onto the background->object line recovers the anti-aliased coverage.
    """
    axis = obj_rgb - bg_rgb
    return (rgb - bg_rgb) @ axis / max(float(axis @ axis), 1e-6)


def _explain_pixels(rgb: np.ndarray, bg: int, bg_rgb: np.ndarray):
    """Explain every pixel as the background mixed with one palette colour.

    Returns (label, residual, residuals, alphas, covered): the palette index whose mix fits
    best, the CIELAB distance between the pixel and that best mix, that distance and the
    coverage (0..1) for every palette colour (``residuals[c]``, ``alphas[c]``; inf and 0
    for the background), and whether the pixel is at least half covered by some colour
    whose mix explains it. A rim pixel of a red shape on
    yellow looks orange, but it is an exact red/yellow mix, so it is labelled red with
    coverage ~0.5 rather than mistaken for an orange object. Pixels within
    ``BACKGROUND_LAB`` of the background are background (label -1, residual inf).
    """
    h, w = rgb.shape[:2]
    lab = _lab(rgb)
    # Only pixels that differ from the background need explaining (most pixels do not).
    todo = np.linalg.norm(lab - _lab(bg_rgb), axis=-1) > BACKGROUND_LAB
    px, px_lab = rgb[todo], lab[todo]
    residuals = np.full((len(COLOUR_NAMES), h, w), np.inf)
    alphas = np.zeros((len(COLOUR_NAMES), h, w))
    for c in range(len(COLOUR_NAMES)):
        if c == bg:
            continue
        a = _coverage(px, bg_rgb, _PALETTE_RGB[c])
        # Up to 1.3 so a more saturated shade than the palette still fits; no further, or a
        # long extrapolation (yellow->orange extended reaches red) would fit the wrong colour.
        mix = bg_rgb + np.clip(a, 0.0, 1.3)[:, None] * (_PALETTE_RGB[c] - bg_rgb)
        residuals[c][todo] = np.linalg.norm(px_lab - _lab(mix), axis=-1)
        alphas[c][todo] = np.clip(a, 0.0, 1.0)
    label = np.where(todo, residuals.argmin(axis=0), -1)
    residual = residuals.min(axis=0)
    # Half-covered by *some* colour whose mix explains the pixel. Taking the best colour's
    # alpha instead would let noise flip an orange-on-yellow pixel to "red at 0.5" and
    # punch holes in low-contrast objects.
    covered = ((alphas >= 0.5) & (residuals <= UNASSIGNED_LAB)).any(axis=0)
    return label, residual, residuals, alphas, covered


def _pieces(rgb: np.ndarray, bg: int, bg_rgb: np.ndarray, min_area: float):
    """Segment the objects: a list of (pixel mask, main palette index or None).

    Object pixels are those at least half-covered by some palette colour whose mix with the
    background explains them, plus pixels far from the background that no mix explains
    (off-palette paint), plus thick faint patches of no palette colour (a washed-out grey).
    Same-colour objects separated by a less-than-half-covered valley stay apart (robust to
    blur). A component is split only where a second colour forms a
    solid patch that the main colour's mix with the background cannot explain (touching
    objects, not anti-aliased rims). The main index is a per-pixel vote; the final colour
    name comes from :func:`_name_colour`.
    """
    label, res, residuals, alphas, covered = _explain_pixels(rgb, bg, bg_rgb)
    far = np.linalg.norm(_lab(rgb) - _lab(bg_rgb), axis=-1) > 2 * FOREGROUND_LAB
    assigned = np.where(res <= UNASSIGNED_LAB, label, -1)  # -1: unexplained or background

    eight = np.ones((3, 3), dtype=bool)
    solid = covered | (far & (assigned < 0))
    components, n = ndimage.label(solid, structure=eight)
    pieces = []
    # A thick patch that is visibly not background yet less than half covered by any
    # palette colour (a grey disc on white is "half-transparent black") is an object of no
    # palette colour. Thin such strips, and patches touching solid objects, are rims or
    # blurred valleys between objects, not objects.
    faint, n_faint = ndimage.label(ndimage.binary_opening(far & ~solid, structure=eight), structure=eight)
    near_solid = ndimage.binary_dilation(solid, structure=eight)
    for i in range(1, n_faint + 1):
        patch = faint == i
        if patch.sum() >= min_area / 3 and not (patch & near_solid).any():
            pieces.append((patch, None))
    for i in range(1, n + 1):
        comp = components == i
        if comp.sum() < min_area / 3:
            continue
        votes = np.bincount(assigned[comp] + 1, minlength=len(COLOUR_NAMES) + 1)  # slot 0: none
        if votes[0] > votes[1:].max():
            pieces.append((comp, None))  # mostly off-palette pixels
            continue
        main = int(votes[1:].argmax())
        present = [int(c) for c in np.flatnonzero(votes[1:])]
        # Majority label over each 3x3 neighbourhood, so that noise flipping single pixels
        # of an off-shade blue between "blue" and "purple" cannot fake a purple patch.
        local = np.stack([ndimage.uniform_filter((assigned == c) & comp, size=3, mode="constant") for c in present])
        smooth = np.asarray(present)[local.argmax(axis=0)]
        not_main_mix = comp & (residuals[main] > UNASSIGNED_LAB)
        colours = [main]
        for c in present:
            # Fully covered by c, and not a mix of the main colour with the background: a
            # blurred blue-on-orange rim can look purple, but never solidly purple.
            patch = not_main_mix & (smooth == c) & (assigned == c) & (alphas[c] >= SOLID_ALPHA)
            if c != main and patch.sum() >= max(3, 0.15 * comp.sum()) and ndimage.binary_erosion(patch).any():
                colours.append(c)
        if len(colours) == 1:
            pieces.append((comp, main))
            continue
        # Touching objects of different colours: each pixel goes to the nearest colour patch.
        dists = np.stack([ndimage.distance_transform_edt(~(comp & (assigned == c))) for c in colours])
        owner = dists.argmin(axis=0)
        pieces += [(comp & (owner == k), c) for k, c in enumerate(colours)]
    return pieces


def _object_colour(rgb: np.ndarray, bg_rgb: np.ndarray, mask: np.ndarray, main: int | None) -> np.ndarray:
    """Measured RGB of an object: the median of its most strongly coloured fifth of pixels.

    Taking the strongest pixels, not all of them, keeps blurred rims from diluting the
    colour (which would inflate every coverage value and distort the shape fit); the
    median of several pixels averages pixel noise away.
    """
    px = rgb[mask]
    if main is not None:
        strength = _coverage(px, bg_rgb, _PALETTE_RGB[main])
    else:
        strength = np.linalg.norm(px - bg_rgb, axis=-1)
    return np.median(px[strength >= np.percentile(strength, 80)], axis=0)


def _name_colour(obj_rgb: np.ndarray, bg: int, bg_rgb: np.ndarray) -> int | None:
    """Palette index of a measured object colour, or None if no palette colour fits.

    The colour must match a palette colour mixed with the background at a coverage of at
    least ``SOLID_ALPHA`` (a small blurred object may never reach full colour), within
    ``UNASSIGNED_LAB``. A washed-out or off-palette colour has no name.
    """
    others = [c for c in range(len(COLOUR_NAMES)) if c != bg]
    axes = _PALETTE_RGB[others] - bg_rgb
    a = (axes @ (obj_rgb - bg_rgb)) / np.maximum((axes * axes).sum(axis=1), 1e-6)
    mixes = bg_rgb + np.clip(a, SOLID_ALPHA, 1.3)[:, None] * axes
    res = np.linalg.norm(_lab(mixes) - _lab(obj_rgb), axis=-1)
    return others[int(res.argmin())] if res.min() <= UNASSIGNED_LAB else None


def _crop(arr: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``arr[y0:y1, x0:x1]`` with zeros where the window leaves the array."""
    out = np.zeros((y1 - y0, x1 - x0), dtype=arr.dtype)
    h, w = arr.shape
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


def _unit_shape(shape: str, angle: float) -> tuple[float, float, float]:
    """(area, centroid x, centroid y) of the unit-diameter ``shape`` rotated by ``angle``."""
    return grammar.polygon_area_centroid(grammar.shape_outline(shape, 0.0, 0.0, 1.0, angle))


@dataclass(frozen=True)
class _Coverage:
    """One object's coverage map (unclipped, zero outside its own pixels) and its moments."""

    soft: np.ndarray
    area: float  # sum of coverage, pixels
    cx: float  # centroid, pixels
    cy: float
    energy: float  # sum(soft^2) minus the expected noise energy


@dataclass(frozen=True, order=True)
class _Fit:
    """How well one shape template fits an object (ordered by score)."""

    score: float
    diameter: float  # pixels
    sigma: float  # template blur, pixels
    angle: float  # radians


def _template_fits(obj: _Coverage, shape: str, angle: float, sigmas) -> list[_Fit]:
    """Fits of ``shape`` at ``angle``, placed with the object's area and centroid, rendered
    by the grammar's rasteriser and blurred by each sigma in ``sigmas``.

    The score is a soft IoU (Tanimoto: sum(a t) / (sum(a^2) + sum(t^2) - sum(a t)), equal to
    the IoU for binary maps) with the expected noise energy removed from sum(a^2), so pixel
    noise in the coverage map does not drag every fit down.
    """
    unit_area, gx, gy = _unit_shape(shape, angle)
    d = float(np.sqrt(max(obj.area, 1e-6) / unit_area))
    ox, oy = obj.cx - gx * d, obj.cy - gy * d  # put the polygon's centroid on the object's
    reach = 0.75 * d + 3 * max(sigmas) + 2  # the outline stays within 0.71 d of its centre
    x0, y0 = int(np.floor(ox - reach)), int(np.floor(oy - reach))
    x1, y1 = int(np.ceil(ox + reach)), int(np.ceil(oy + reach))
    sharp = grammar.shape_alpha(shape, ox - x0, oy - y0, d, x1 - x0, y1 - y0, angle)
    patch = _crop(obj.soft, x0, y0, x1, y1)
    fits = []
    for sigma in sigmas:
        t = ndimage.gaussian_filter(sharp, sigma, mode="constant") if sigma > 0 else sharp
        inter = float((patch * t).sum())
        union = obj.energy + float((t * t).sum()) - inter
        fits.append(_Fit(inter / union if union > 0 else 0.0, d, sigma, angle))
    return fits


def _rotated_fit(obj: _Coverage, shape: str, upright: _Fit, sigmas) -> _Fit:
    """Best fit of ``shape`` over rotations: a coarse sweep of its symmetry period at the
    upright fit's blur, two rounds of local refinement, then the blur levels again."""
    angles = _ROTATIONS[shape]
    if len(angles) == 1:
        return upright
    step = angles[1] - angles[0]
    best = max([upright] + [f for a in angles[1:] for f in _template_fits(obj, shape, a, [upright.sigma])])
    for delta in (step / 3, step / 9):
        for a in (best.angle - delta, best.angle + delta):
            best = max(best, *_template_fits(obj, shape, a, [best.sigma]))
    return max(best, *_template_fits(obj, shape, best.angle, sigmas))


def _decide(fits: dict[str, _Fit]) -> str | None:
    """The best-fitting shape if it fits well and clearly better than the runner-up, else None."""
    ranked = sorted(SHAPES, key=lambda s: fits[s], reverse=True)
    best_error, runner_up_error = 1.0 - fits[ranked[0]].score, 1.0 - fits[ranked[1]].score
    clear = fits[ranked[0]].score >= SHAPE_MIN_IOU and runner_up_error >= SHAPE_ERROR_RATIO * best_error + SHAPE_MARGIN
    return ranked[0] if clear else None


def _classify_shape(obj: _Coverage, side: float) -> tuple[str | None, _Fit]:
    """(shape or None, its best fit) for one object.

    Each shape is fitted upright and sharp first (our renders stop there), then over a few
    blur levels (generated images are soft). Only when that leaves the answer unclear or
    imperfect are rotations searched too (generated shapes need not be upright, and a
    tilted square can look like a clear circle upright). The best shape must fit well
    (``SHAPE_MIN_IOU``) and clearly better than the runner-up (``SHAPE_ERROR_RATIO``,
    ``SHAPE_MARGIN``); otherwise None.
    """
    fits = {s: _template_fits(obj, s, 0.0, [0.0])[0] for s in SHAPES}
    shape = _decide(fits)
    if shape is not None and fits[shape].score >= UPRIGHT_ACCEPT_IOU:
        return shape, fits[shape]
    sigmas = [0.0] + [f * side for f in BLUR_LEVELS]
    fits = {s: max(_template_fits(obj, s, 0.0, sigmas)) for s in SHAPES}
    shape = _decide(fits)
    if shape is None or fits[shape].score < UPRIGHT_ACCEPT_IOU:
        fits = {s: _rotated_fit(obj, s, fits[s], sigmas) for s in SHAPES}
        shape = _decide(fits)
    return shape, max(fits.values())


def detect(image) -> Detection:
    """Find the background colour and every object in ``image``.

    Takes a PIL image or a uint8 (H, W, 3) array, at least 32x32. Returns a
    :class:`Detection`. Raises GenimgError for anything that is not such an image.
    """
    rgb = _as_rgb_array(image).astype(np.float64)
    h, w = rgb.shape[:2]
    side = float(np.sqrt(h * w))
    min_area = MIN_AREA_FRAC * h * w
    bg, bg_rgb = _background(rgb)
    pieces = _pieces(rgb, bg, bg_rgb, min_area)
    if not pieces:
        return Detection(COLOUR_NAMES[bg], ())

    # Each pixel near an object belongs to the nearest one (blurred rims and the gap
    # between two objects are shared out fairly), up to a reach that covers blur tails.
    owner_map = np.zeros((h, w), dtype=np.int64)
    for k, (mask, _) in enumerate(pieces):
        owner_map[mask] = k + 1
    dist, (iy, ix) = ndimage.distance_transform_edt(owner_map == 0, return_indices=True)
    owner = np.where(dist <= 1.5 + 3 * max(BLUR_LEVELS) * side, owner_map[iy, ix], 0)

    ys, xs = np.mgrid[0:h, 0:w]
    background_px = dist > 1.5 + 3 * max(BLUR_LEVELS) * side
    objects = []
    by_size = sorted(range(len(pieces)), key=lambda k: -int(pieces[k][0].sum()))
    fitted = set(by_size[:MAX_SHAPE_FITS])
    for k, (mask, main) in enumerate(pieces):
        obj_rgb = _object_colour(rgb, bg_rgb, mask, main)
        colour = _name_colour(obj_rgb, bg, bg_rgb)
        a = _coverage(rgb, bg_rgb, obj_rgb)
        region = owner == k + 1
        # Unclipped: zero-mean noise then cancels in the area and centroid sums (clipping
        # negative values would add noise as object mass). Wild values are still capped.
        soft = np.clip(a, -1.0, 2.0) * region
        area = float(soft.sum())
        if area < min_area:
            continue  # a speck
        cx = float((soft * (xs + 0.5)).sum() / area)
        cy = float((soft * (ys + 0.5)).sum() / area)
        # Noise level of this coverage map, from the plain background (robust MAD estimate).
        bg_a = a[background_px] if background_px.any() else np.zeros(1)
        noise_sd = 1.4826 * float(np.median(np.abs(bg_a - np.median(bg_a))))
        energy = float((soft * soft).sum()) - region.sum() * noise_sd**2
        if k in fitted:
            shape, fit = _classify_shape(_Coverage(soft, area, cx, cy, energy), side)
            diameter, shape_iou, blur = fit.diameter / side, fit.score, fit.sigma
        else:  # beyond the fitting budget: an equal-area disc's diameter, no shape
            shape, shape_iou, blur = None, 0.0, 0.0
            diameter = 2.0 * float(np.sqrt(area / np.pi)) / side
        objects.append(
            DetectedObject(
                colour=None if colour is None else COLOUR_NAMES[colour],
                shape=shape,
                size="small" if diameter < SIZE_SPLIT else "large",
                x=cx / w,
                y=cy / h,
                diameter=diameter,
                area=area / (h * w),
                shape_iou=shape_iou,
                blur=blur,
            )
        )
    return Detection(COLOUR_NAMES[bg], tuple(objects))

"""The single gate for images coming in: decode, validate, limit, normalise.

Every image a user gives genimg (UI upload, API file, CLI path) passes through
:func:`load_image`. The rules, also tabled in the README's Limits section:

- formats: PNG, JPEG, WebP, BMP, TIFF, GIF; anything else (SVG, PDF, text...) is refused;
- size: at most ``max_upload_bytes`` of file and ``max_image_pixels`` decoded pixels, checked
  from the header *before* decoding (decompression bombs, headers that lie); a file that
  ends early is refused rather than half-decoded;
- animated images (GIF, APNG, WebP): the first frame;
- EXIF orientation is applied, so the image is upright as a viewer shows it;
- modes: CMYK → RGB; 16-bit and 32-bit integer/float grayscale → 8-bit (full range scaled);
  palette → RGB (or RGBA when it has transparency); grayscale → RGB with the original mode
  remembered; alpha (RGBA, LA, palette transparency) is split off and kept, so tasks can
  restore it on output, and the RGB is flattened onto white where transparent.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genimg.config import Limits, settings
from genimg.errors import GenimgError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
ACCEPTED = "PNG, JPEG, WebP, BMP, TIFF or GIF"


def guard_decoders(limits: Limits | None = None) -> int:
    """Make every Pillow decode in this process refuse images above ``limits.max_image_pixels``.

    Pillow checks width x height from the header inside ``Image.open`` -- before any pixel is
    decoded -- and raises ``DecompressionBombError`` above ``2 * Image.MAX_IMAGE_PIXELS``. Setting
    that to half our limit makes the refusal happen exactly at our limit for *every* caller in the
    process: our gate, and also Gradio's own preprocessing of image components, the image editor,
    or any library a task calls. (Pillow's softer warning between half and the full limit is noise
    here: the hard refusal is the guard.) Called on import and again when the app is built, since
    hosted mode has a tighter limit. Returns the limit in force.
    """
    limit = (limits or settings().limits).max_image_pixels
    Image.MAX_IMAGE_PIXELS = max(1, limit // 2)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return 2 * Image.MAX_IMAGE_PIXELS


def decoder_limit() -> int:
    """Decoded pixels above which every Pillow decode in this process is refused."""
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 0


guard_decoders()


@dataclass
class DecodedImage:
    """A decoded, upright, 8-bit RGB image plus what the gate learnt about the original."""

    image: Image.Image              # RGB, 8 bits per channel
    alpha: Image.Image | None       # "L" alpha channel when the original had transparency
    original_mode: str              # e.g. "RGB", "RGBA", "L", "I;16", "CMYK", "P"
    original_format: str
    grayscale: bool                 # the original had no colour
    bit_depth: int                  # bits per channel of the original (8 or 16, 32 for I/F)
    frames: int                     # > 1 for animations (only the first is used)
    exif_rotated: bool

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def rgb_array(self) -> np.ndarray:
        """uint8 array (H, W, 3)."""
        return np.asarray(self.image, dtype=np.uint8)

    def restore_mode(self, result: Image.Image) -> Image.Image:
        """Give a processed RGB ``result`` back the original's grayscale-ness and alpha.

        The alpha is resized to the result's size (upscalers) with a smooth filter.
        """
        out = result.convert("L") if self.grayscale else result.convert("RGB")
        if self.alpha is not None:
            alpha = self.alpha if self.alpha.size == out.size else self.alpha.resize(out.size, Image.Resampling.LANCZOS)
            out = out.convert("LA" if self.grayscale else "RGBA")
            out.putalpha(alpha)
        return out


def _read_bytes(source: Any, limits: Limits, what: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), what
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise GenimgError(f"{what} {str(path)[:200]!r} does not exist or is not a file")
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise GenimgError(f"{what} is {size / 2**20:.1f} MB; the limit here is {limits.max_upload_bytes / 2**20:.0f} MB")
        data, name = path.read_bytes(), path.name
    elif hasattr(source, "read"):
        data, name = source.read(limits.max_upload_bytes + 1), getattr(source, "name", what)
    else:
        raise GenimgError(f"{what} must be an image file, got {type(source).__name__}")
    if len(data) > limits.max_upload_bytes:
        raise GenimgError(f"{what} is larger than the {limits.max_upload_bytes / 2**20:.0f} MB limit here")
    if not data:
        raise GenimgError(f"{what} is empty (0 bytes): upload a {ACCEPTED} image")
    return data, str(name)


def _not_an_image(data: bytes, what: str, name: str) -> GenimgError:
    """The refusal for bytes Pillow cannot identify, saying what they look like instead."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        kind = "an SVG (vector) file, which is not accepted"
    elif head.startswith(b"%pdf"):
        kind = "a PDF document, not an image"
    elif head.startswith((b"<!doctype html", b"<html")):
        kind = "an HTML page, not an image"
    elif data.startswith(b"\x89PNG"):
        kind = "a damaged PNG (its header cannot be read)"
    elif b"\0" not in data[:1024]:
        kind = "a text file, not an image"
    else:
        kind = "not an image genimg can read"
    return GenimgError(f"{what} ({name[:80]}) is {kind}: use {ACCEPTED}")


def _bomb_error(exc: Exception, what: str, limits: Limits) -> GenimgError:
    """Pillow's header-time refusal (see guard_decoders) in our words, with the pixel count it read."""
    limit = min(limits.max_image_pixels, decoder_limit() or limits.max_image_pixels)
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too large"
    return GenimgError(f"{what} is {size}; the limit here is {limit / 1e6:.0f} megapixels (downscale it first)")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit grayscale to 8-bit over its nominal range (I;16: 0..65535, F: 0..1)."""
    array = np.asarray(image)
    if image.mode.startswith("I;16") or (image.mode == "I" and array.max(initial=0) > 255):
        scaled = np.clip(array.astype(np.float64) / 65535.0 * 255.0 + 0.5, 0, 255)
    elif image.mode == "F":
        scaled = np.clip(np.nan_to_num(array.astype(np.float64)) * 255.0 + 0.5, 0, 255)
    else:
        scaled = np.clip(array, 0, 255)
    return Image.fromarray(scaled.astype(np.uint8), "L")


def _bit_depth(image: Image.Image) -> int:
    if image.mode.startswith("I;16"):
        return 16
    if image.mode in ("I", "F"):
        return 32
    if image.mode == "1":
        return 1
    return 8


def from_pil(image: Image.Image, *, fmt: str = "", frames: int = 1, exif_rotated: bool = False) -> DecodedImage:
    """Normalise an already decoded PIL image (see module rules) into a DecodedImage."""
    original_mode = image.mode
    bit_depth = _bit_depth(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8bit(image)
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    alpha = None
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        image = image.convert("RGBA" if image.mode.startswith("RGB") else "LA")
        alpha = image.getchannel("A")
        if alpha.getextrema() == (255, 255):
            alpha = None  # fully opaque: nothing to keep
    grayscale = image.mode in ("L", "LA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    else:
        image = image.convert("RGB")
    return DecodedImage(image=image, alpha=alpha, original_mode=original_mode, original_format=fmt,
                        grayscale=grayscale, bit_depth=bit_depth, frames=frames, exif_rotated=exif_rotated)


def load_image(source: Any, *, what: str = "image", limits: Limits | None = None, min_side: int = 1) -> DecodedImage:
    """Decode an uploaded image through the gate.

    ``source``: a path, bytes, a binary file object, a PIL image or a uint8/uint16 array.
    Returns a DecodedImage (upright 8-bit RGB + alpha + facts about the original).
    Raises GenimgError, naming ``what``, for anything the gate refuses.
    """
    limits = limits or settings().limits
    if isinstance(source, np.ndarray):
        source = _array_to_pil(source, what)
    if isinstance(source, Image.Image):
        w, h = source.size
        _check_dimensions(w, h, limits, what, min_side)
        return from_pil(source.copy(), fmt="array")
    if source is None:
        raise GenimgError(f"no {what} given: upload or choose one")
    data, name = _read_bytes(source, limits, what)
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only; Pillow's guard refuses bombs here
        fmt = image.format or "?"
        if fmt not in ALLOWED_FORMATS:
            raise GenimgError(f"{what} is {fmt}, which is not accepted: use {ACCEPTED}")
        w, h = image.size
        _check_dimensions(w, h, limits, what, min_side)  # from the header, before decoding pixels
        frames = int(getattr(image, "n_frames", 1) or 1)
        image.seek(0)
        image.load()
        exif_rotated = _has_orientation(image)
        image = ImageOps.exif_transpose(image) or image
    except GenimgError:
        raise
    except UnidentifiedImageError:
        raise _not_an_image(data, what, name) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(exc, what, limits) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise GenimgError(f"{what} ({name[:80]}) is damaged or truncated and cannot be decoded: {detail}") from None
    return from_pil(image, fmt=fmt, frames=frames, exif_rotated=exif_rotated)


def _has_orientation(image: Image.Image) -> bool:
    try:
        return image.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # malformed EXIF: the image itself decoded fine
        return False


def _check_dimensions(w: int, h: int, limits: Limits, what: str, min_side: int) -> None:
    if w < 1 or h < 1:
        raise GenimgError(f"{what} has no pixels ({w}x{h})")
    if w * h > limits.max_image_pixels:
        raise GenimgError(f"{what} is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit here is "
                          f"{limits.max_image_pixels / 1e6:.0f} megapixels (downscale it first)")
    if min(w, h) < min_side:
        raise GenimgError(f"{what} is {w}x{h}; this needs at least {min_side} pixels on each side")


def _array_to_pil(array: np.ndarray, what: str) -> Image.Image:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise GenimgError(f"{what} array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise GenimgError(f"{what} array has NaN or infinite values")
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise GenimgError(f"{what} array must be uint8, uint16 or float in 0..1, got {array.dtype}")
    channels = array.shape[2]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)

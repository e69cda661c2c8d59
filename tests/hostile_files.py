"""The hostile and odd upload matrix shared by the API and browser tests (issue: hostile uploads).

``write_matrix(folder)`` writes one file per case and returns {case: (path, refused?)}.
Refused: things no image input may accept (a decompression bomb, empty, text named .png,
truncated, SVG, a header that lies). Accepted: odd but real images that must keep working.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REFUSED = ("bomb", "empty", "text-as-png", "truncated", "svg", "lying-header")
ACCEPTED = ("1x1", "4000x2", "16-bit", "cmyk", "animated", "exif-rotated", "palette", "rgba")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, rows: int, finished: bool = True) -> bytes:
    """A 1-bit PNG whose header says ``width`` x ``height`` but whose data holds ``rows`` rows.

    40,000 x 40,000 with 64 rows is a decompression bomb (1.6 gigapixels once decoded). With
    ``finished=False`` the compressed stream stops mid-image, so the header lies about what follows.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(rows))
    data += compressor.flush() if finished else compressor.flush(zlib.Z_SYNC_FLUSH)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _scene(size=(256, 192)) -> Image.Image:
    rng = np.random.default_rng(3)
    base = np.zeros((size[1], size[0], 3), np.uint8)
    base[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(255, 0, size[1], dtype=np.uint8)[:, None]
    base[48:120, 60:180, 2] = 200
    base = np.clip(base.astype(int) + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(base, "RGB")


def build_matrix() -> dict[str, tuple[str, bytes]]:
    """{case: (file name, bytes)} for every case of the matrix."""
    scene = _scene()
    noisy = _encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    frames = [_scene().rotate(angle) for angle in (0, 90, 180)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    rgba = scene.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(scene.size))
    sixteen = (np.linspace(0, 65535, 256 * 192).reshape(192, 256)).astype(np.uint16)
    return {
        "bomb": ("bomb.png", png_claiming(40000, 40000, 64)),
        "empty": ("empty.png", b""),
        "text-as-png": ("notes.png", b"these are my notes, not a picture\n" * 20),
        "truncated": ("truncated.png", noisy[: len(noisy) // 2]),
        "svg": ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                               b'<circle cx="32" cy="32" r="20" fill="red"/></svg>'),
        "lying-header": ("lying.png", png_claiming(3000, 3000, 4, finished=False)),
        "1x1": ("one.png", _encode(Image.new("RGB", (1, 1), (200, 30, 30)))),
        "4000x2": ("strip.png", _encode(Image.new("RGB", (4000, 2), (30, 200, 30)))),
        "16-bit": ("sixteen.png", _encode(Image.fromarray(sixteen, "I;16"))),
        "cmyk": ("cmyk.jpg", _encode(scene.convert("CMYK"), "JPEG", quality=95)),
        "animated": ("animated.gif", animated.getvalue()),
        "exif-rotated": ("rotated.jpg", _encode(scene, "JPEG", exif=exif.tobytes(), quality=95)),
        "palette": ("palette.png", _encode(scene.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))),
        "rgba": ("rgba.png", _encode(rgba)),
    }


def write_matrix(folder: Path) -> dict[str, tuple[Path, bool]]:
    """Write every case into ``folder``; return {case: (path, refused?)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for case, (name, data) in build_matrix().items():
        path = folder / name
        path.write_bytes(data)
        out[case] = (path, case in REFUSED)
    return out

"""The image gate: every odd or hostile input is decoded right or refused with a clear error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from genimg.config import Limits
from genimg.errors import GenimgError
from genimg.imageio import load_image


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_rgb_png_round_trip():
    array = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    decoded = load_image(encode(Image.fromarray(array)))
    assert decoded.size == (30, 20) and decoded.image.mode == "RGB"
    assert np.array_equal(decoded.rgb_array(), array)
    assert decoded.alpha is None and not decoded.grayscale


def test_cmyk_jpeg_becomes_rgb():
    decoded = load_image(encode(Image.new("CMYK", (16, 8), (0, 255, 255, 0)), "JPEG"))
    assert decoded.image.mode == "RGB" and decoded.original_mode == "CMYK"
    r, g, b = decoded.rgb_array()[4, 8]
    assert r > 200 and g < 60 and b < 60  # cyan-less, full magenta+yellow = red


def test_16bit_grayscale_is_scaled_over_its_range():
    array = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    decoded = load_image(encode(Image.fromarray(array, "I;16")))
    assert decoded.bit_depth == 16 and decoded.grayscale
    assert decoded.rgb_array()[:, :, 0].tolist() == [[0, 255], [128, 4]]


def test_rgba_alpha_is_kept_and_flattened_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    decoded = load_image(encode(image))
    assert decoded.alpha is not None and decoded.alpha.getpixel((0, 0)) == 255 and decoded.alpha.getpixel((1, 1)) == 0
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0)
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    restored = decoded.restore_mode(decoded.image.resize((8, 8)))
    assert restored.mode == "RGBA" and restored.size == (8, 8)


def test_palette_with_transparency():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info["transparency"] = 0
    decoded = load_image(encode(image, transparency=0))
    assert decoded.original_mode == "P" and decoded.alpha is not None
    assert decoded.image.getpixel((1, 1)) == (0, 255, 0)


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    decoded = load_image(buf.getvalue())
    assert decoded.frames == 2
    r, g, b = decoded.image.getpixel((4, 4))
    assert r > 200 and b < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = load_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.size == (10, 20) and decoded.exif_rotated
    assert decoded.image.getpixel((5, 2))[0] > 200 and decoded.image.getpixel((5, 17))[0] < 50  # white on top


def test_grayscale_is_remembered():
    decoded = load_image(encode(Image.new("L", (5, 5), 100)))
    assert decoded.grayscale and decoded.image.mode == "RGB"
    assert decoded.restore_mode(decoded.image).mode == "L"


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 1-bit pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(min(height, 64))) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, text", [
    (b"", "is empty"),
    (b"hello, not an image", "is a text file, not an image: use PNG, JPEG"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "is an SVG .vector. file"),
    (b"\x00\x01\x02binary junk" * 10, "not an image genimg can read"),
    (bomb_png(40000, 40000), "megapixels; the limit"),
])
def test_refused_with_a_clear_error(data, text):
    with pytest.raises(GenimgError, match=text):
        load_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(GenimgError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_upload_byte_limit():
    with pytest.raises(GenimgError, match="larger than the"):
        load_image(b"\x89PNG" + b"0" * 2000, limits=Limits(max_upload_bytes=1000))


def test_unsupported_format_by_content():
    data = encode(Image.new("RGB", (4, 4)), "PPM")
    with pytest.raises(GenimgError, match="PPM, which is not accepted"):
        load_image(data)


def test_tiny_and_thin_images():
    assert load_image(encode(Image.new("RGB", (1, 1)))).size == (1, 1)
    assert load_image(encode(Image.new("RGB", (4000, 2)))).size == (4000, 2)
    with pytest.raises(GenimgError, match="at least 8 pixels"):
        load_image(encode(Image.new("RGB", (4000, 2))), min_side=8)


def test_arrays_and_paths(tmp_path):
    assert load_image(np.zeros((4, 6), np.uint16)).size == (6, 4)
    with pytest.raises(GenimgError, match="NaN"):
        load_image(np.full((2, 2, 3), np.nan))
    with pytest.raises(GenimgError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    path = tmp_path / "x.png"
    path.write_bytes(encode(Image.new("RGB", (3, 3))))
    assert load_image(path).size == (3, 3)

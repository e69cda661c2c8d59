"""Learned restorers run through ncnn (Real-ESRGAN, waifu2x; user-provided face nets), tiled.

The network is loaded once by the pool (:mod:`genimg.models.ncnn_backend`); this module
feeds it: value range, tiling with overlap, the networks' own border loss, exact output
size. Real-ESRGAN and waifu2x both take RGB in 0..1 (planar, float) and return RGB in
0..1 (values slightly outside are clipped).

Tiling (as Real-ESRGAN's own ``tile_process``): the image is cut into ``tile``-sized
pieces; each is run with ``pad`` pixels of real neighbouring context on every side (plus
the ``shrink`` border that unpadded convolutions eat, mirror-padded at the image's
edges), and only the centre of each output is kept, so tiles join without seams and
memory stays bounded on large images. ``progress(done, total)`` is called after each tile.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

ProgressFn = Callable[[int, int], None]


def run_tiled(net, image: np.ndarray, tile: int = 192, pad: int = 10,
              progress: ProgressFn | None = None) -> np.ndarray:
    """Run ``net`` (an NcnnNet) over float (H, W, 3) ``image`` in 0..1; returns float (H·s, W·s, 3).

    ``s`` is the net's scale. Tiles are ``tile`` px with ``pad`` px of context on each side.
    """
    s, shrink, multiple = net.scale, net.shrink, max(1, net.multiple)
    h, w = image.shape[:2]
    halo = pad + shrink
    # numpy's "reflect" mirrors repeatedly, so even a halo larger than the image works.
    padded = np.pad(image, ((halo, halo), (halo, halo), (0, 0)), mode="reflect")
    if net.norm == "minus_one_one":
        padded = padded * 2.0 - 1.0
    out = np.zeros((h * s, w * s, 3), dtype=np.float32)
    tiles = [(y, x) for y in range(0, h, tile) for x in range(0, w, tile)]
    for index, (y, x) in enumerate(tiles):
        th, tw = min(tile, h - y), min(tile, w - x)
        chunk = padded[y:y + th + 2 * halo, x:x + tw + 2 * halo]
        # Nets that downsample internally (waifu2x cunet) need sides that are multiples of 4.
        extra_h, extra_w = (-chunk.shape[0]) % multiple, (-chunk.shape[1]) % multiple
        if extra_h or extra_w:
            chunk = np.pad(chunk, ((0, extra_h), (0, extra_w), (0, 0)), mode="edge")
        result = net(chunk.transpose(2, 0, 1)).transpose(1, 2, 0)
        expected = ((chunk.shape[0] - 2 * shrink) * s, (chunk.shape[1] - 2 * shrink) * s)
        if result.shape[:2] != expected:
            raise RuntimeError(f"ncnn net returned {result.shape[:2]} for input {chunk.shape[:2]}, expected "
                               f"{expected}: the catalog's scale/shrink options do not match the network")
        out[y * s:(y + th) * s, x * s:(x + tw) * s] = result[pad * s:(pad + th) * s, pad * s:(pad + tw) * s]
        if progress is not None:
            progress(index + 1, len(tiles))
    if net.norm == "minus_one_one":
        out = (out + 1.0) / 2.0
    return np.clip(out, 0.0, 1.0)


def run_fixed_size(net, image: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
    """Run a fixed-input-size net (face restorers: ``size`` × ``size``): resize in, run, resize back."""
    size = int(net.size)
    h, w = image.shape[:2]
    small = np.asarray(Image.fromarray(_to_uint8(image)).resize((size, size), Image.Resampling.LANCZOS),
                       dtype=np.float32) / 255.0
    x = small * 2.0 - 1.0 if net.norm == "minus_one_one" else small
    y = net(x.transpose(2, 0, 1)).transpose(1, 2, 0)
    if net.norm == "minus_one_one":
        y = (y + 1.0) / 2.0
    y = np.clip(y, 0.0, 1.0)
    if progress is not None:
        progress(1, 1)
    back = Image.fromarray(_to_uint8(y)).resize((w * net.scale, h * net.scale), Image.Resampling.LANCZOS)
    return np.asarray(back, dtype=np.float32) / 255.0


def restore(net, image: np.ndarray, out_scale: int, options: dict, progress: ProgressFn | None = None
            ) -> tuple[np.ndarray, dict]:
    """Restore uint8 (H, W, 3) ``image`` with ``net``; output exactly ``out_scale`` × the input's size.

    A net whose own scale differs from ``out_scale`` (Real-ESRGAN x4 asked for ×2) is
    followed by a Lanczos resize to the exact size — what Real-ESRGAN's ``--outscale`` does.
    Returns (uint8 image, parameters used).
    """
    x = image.astype(np.float32) / 255.0
    tile, pad = int(options.get("tile", 192)), int(options.get("pad", 10))
    if net.size:
        y = run_fixed_size(net, x, progress)
    else:
        y = run_tiled(net, x, tile=tile, pad=pad, progress=progress)
    params = {"net_scale": net.scale, "tile": tile, "tile_pad": pad}
    h, w = image.shape[:2]
    target = (w * out_scale, h * out_scale)
    result = _to_uint8(y)
    if (result.shape[1], result.shape[0]) != target:
        result = np.asarray(Image.fromarray(result).resize(target, Image.Resampling.LANCZOS))
        params["outscale_resize"] = f"lanczos to ×{out_scale}"
    return result, params


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

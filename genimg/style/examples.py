"""The bundled style-transfer examples in ``assets/examples/style/`` and how they were made.

Content images come from scikit-image's bundled data (public domain or CC0; see
``assets/examples/style/SOURCES.md``). Two style images are scikit-image data too; two
are rendered here, deterministically, by :func:`render_mosaic` and :func:`render_swirls`,
so they carry no one else's rights. ``python -m genimg.style.examples`` rewrites them all.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from genimg.config import ASSETS_DIR

EXAMPLES_DIR = ASSETS_DIR / "examples" / "style"
CONTENT = ("cat.jpg", "coffee.jpg", "astronaut.jpg")
STYLES = ("swirls.jpg", "mosaic.jpg", "stain.jpg", "deep-field.jpg")
MAX_SIDE = 512


def content_images() -> list[Path]:
    """Paths of the bundled content images that exist."""
    return [EXAMPLES_DIR / n for n in CONTENT if (EXAMPLES_DIR / n).is_file()]


def style_images() -> list[Path]:
    """Paths of the bundled style images that exist."""
    return [EXAMPLES_DIR / n for n in STYLES if (EXAMPLES_DIR / n).is_file()]


def render_mosaic(size: int = 512, cells: int = 260, seed: int = 7) -> Image.Image:
    """A stained-glass mosaic: Voronoi cells in a bold palette with dark leading between them."""
    from scipy.spatial import cKDTree
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(seed)
    points = rng.random((cells, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size]
    _, labels = cKDTree(points).query(np.stack([yy.ravel(), xx.ravel()], axis=1))
    labels = labels.reshape(size, size)
    palette = np.array([[214, 40, 40], [247, 127, 0], [252, 191, 73], [234, 226, 183], [0, 48, 73],
                        [42, 157, 143], [38, 70, 83], [131, 56, 236], [58, 134, 255], [255, 0, 110]], float)
    colours = palette[rng.integers(0, len(palette), cells)] * rng.uniform(0.75, 1.05, (cells, 1))
    image = colours[labels]
    # Light falls off towards each cell's edge, like thick glass.
    dist = np.hypot(yy - points[labels, 0], xx - points[labels, 1])
    image *= (1.05 - 0.35 * np.clip(dist / 40.0, 0, 1))[..., None]
    lead = find_boundaries(labels, mode="thick")
    lead = np.asarray(Image.fromarray(lead.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    image[lead] = (20, 18, 16)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def render_swirls(size: int = 512, strokes: int = 5000, seed: int = 3) -> Image.Image:
    """Short curved brush strokes following a field of vortices, in night blues and yellows."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (18, 32, 84))
    draw = ImageDraw.Draw(image)
    centres = rng.random((6, 2)) * size
    spins = rng.choice([-1.0, 1.0], 6) * rng.uniform(0.6, 1.4, 6)

    def direction(x: float, y: float) -> tuple[float, float]:
        vx, vy = 0.25, 0.05  # a slow drift, so regions between vortices still flow
        for (cx, cy), s in zip(centres, spins):
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + 400.0
            vx += -s * dy / r2 * 120.0
            vy += s * dx / r2 * 120.0
        norm = math.hypot(vx, vy) or 1.0
        return vx / norm, vy / norm

    blues = [(30, 60, 140), (50, 100, 180), (90, 140, 210), (20, 40, 110), (120, 170, 220)]
    yellows = [(240, 200, 60), (250, 230, 120), (230, 170, 40), (255, 245, 190)]
    for _ in range(strokes):
        x, y = rng.random(2) * size
        near = min(math.hypot(x - cx, y - cy) for cx, cy in centres)
        pool = yellows if near < 45 or rng.random() < 0.12 else blues
        colour = pool[rng.integers(0, len(pool))]
        points = [(x, y)]
        for _step in range(int(rng.integers(6, 14))):
            dx, dy = direction(x, y)
            x, y = x + 3.0 * dx, y + 3.0 * dy
            points.append((x, y))
        draw.line(points, fill=colour, width=int(rng.integers(3, 6)), joint="curve")
    return image


def _fit(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def write_examples(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """(Re)write every bundled example into ``folder``; return the paths."""
    import skimage.data as data

    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "cat.jpg": Image.fromarray(data.chelsea()),
        "coffee.jpg": Image.fromarray(data.coffee()),
        "astronaut.jpg": Image.fromarray(data.astronaut()),
        "stain.jpg": Image.fromarray(data.immunohistochemistry()),
        "deep-field.jpg": Image.fromarray(data.hubble_deep_field()),
        "swirls.jpg": render_swirls(),
        "mosaic.jpg": render_mosaic(),
    }
    paths = []
    for name, image in images.items():
        path = folder / name
        _fit(image).save(path, quality=90, optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_examples():
        print(p, p.stat().st_size)
